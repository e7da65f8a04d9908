"""``firehose-loadgen stack deploy|outputs|delete``: the reference pipeline as a CloudFormation stack.

Only option parsing and printing live here; producer/aws/cloudformation.py does the work.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from producer.aws.clients import SDK_ERRORS
from producer.aws.cloudformation import (
    DEFAULT_STACK,
    DEFAULT_TEMPLATE,
    StackClient,
    StackFailed,
    StackSettings,
    load_template,
    open_stacks,
    parse_params,
)
from producer.cli import options
from producer.errors import UsageError

T = TypeVar("T")

stack_app = typer.Typer(
    name="stack",
    help="Deploy, inspect and delete the reference pipeline (deploy/pipeline.yaml) in AWS.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameOption = Annotated[str, typer.Option("--name", help="Stack name.", envvar="LOADGEN_STACK")]
RegionOption = Annotated[
    str | None,
    typer.Option(help="AWS region.", envvar=["LOADGEN_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"]),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        help="CloudFormation- and S3-compatible endpoint (LocalStack, moto); default: AWS.",
        envvar="LOADGEN_STACK_ENDPOINT_URL",
    ),
]


def _settings(region: str | None, endpoint_url: str | None) -> StackSettings:
    url = options.endpoint_url(endpoint_url)
    if not region:
        raise UsageError("stack commands need a region: pass --region or set AWS_REGION")
    return StackSettings(region=region, endpoint_url=url)


def _progress(line: str) -> None:
    typer.echo(line)


def _with_stacks(settings: StackSettings, action: Callable[[StackClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_stacks(settings, progress=_progress) as stacks:
            return await action(stacks)

    try:
        return asyncio.run(go())
    except SDK_ERRORS as exc:
        # A call outside StackClient's own translation (event polling, pagination): still one line.
        raise StackFailed(f"{type(exc).__name__}: {exc}".splitlines()[0]) from None


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--template {path}: {exc.strerror or exc}") from None


@stack_app.command()
def deploy(
    name: NameOption = DEFAULT_STACK,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Template parameter KEY=VALUE; repeat for several. On update, unset ones keep their value.",
        ),
    ] = None,
    template: Annotated[Path, typer.Option(help="Template file.")] = DEFAULT_TEMPLATE,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Create or update the stack through a change set and wait until it is done."""
    body = _read_template(template)
    declared = load_template(body).get("Parameters", {}) or {}
    params = parse_params(param or [], declared)
    settings = _settings(region, endpoint_url)
    _with_stacks(settings, lambda stacks: stacks.deploy(name, body, params))


@stack_app.command()
def outputs(
    name: NameOption = DEFAULT_STACK,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object instead of KEY=VALUE lines.")
    ] = False,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Print the stack's outputs (stream names and ARNs, bucket, OpenSearch endpoint, policy ARN)."""
    settings = _settings(region, endpoint_url)
    values = _with_stacks(settings, lambda stacks: stacks.outputs(name))
    if as_json:
        typer.echo(json.dumps(values, indent=2, sort_keys=True))
    else:
        for key in sorted(values):
            typer.echo(f"{key}={values[key]}")


@stack_app.command()
def delete(
    name: NameOption = DEFAULT_STACK,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Empty the stack's bucket (all versions), then delete the stack and wait until it is gone."""
    settings = _settings(region, endpoint_url)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("stack delete asks for confirmation: pass --yes when not running in a terminal")
        typer.confirm(
            f"Delete stack {name!r} in {settings.region}, with every object in its bucket?", abort=True
        )
    _with_stacks(settings, lambda stacks: stacks.delete(name))


def register(app: typer.Typer) -> None:
    """Add the ``stack`` command group to the main CLI."""
    app.add_typer(stack_app, name="stack")
