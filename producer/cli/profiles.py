"""`profiles list|show|validate` and `sample`: look at profiles and the events they make."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
import yaml

from producer.encoding import Encoder, RecordEncoder, encode_json_line
from producer.errors import UsageError
from producer.events.registry import build_generator
from producer.generation import with_text_records
from producer.profile.loading import ProfileError, resolve_profile, shipped_profiles
from producer.templates.fakerpools import TemplateError

EXIT_INVALID = 2


def list_profiles() -> None:
    """Shipped profiles: name, rate shape and what each is for."""
    rows: list[tuple[str, str, str]] = []
    for name, path in shipped_profiles().items():
        try:
            profile = resolve_profile(str(path))
            rows.append((name, profile.rate_shape.text, profile.description))
        except ProfileError as exc:  # list the rest; `validate` tells what is wrong
            rows.append((name, "INVALID", str(exc)))
    name_w = max((len(r[0]) for r in rows), default=4)
    shape_w = max((len(r[1]) for r in rows), default=5)
    typer.echo(f"{'NAME':<{name_w}}  {'SHAPE':<{shape_w}}  DESCRIPTION")
    for name, shape, description in rows:
        typer.echo(f"{name:<{name_w}}  {shape:<{shape_w}}  {description}")


def show_profile(
    name: Annotated[str, typer.Argument(help="Shipped profile name or a profile .yaml file.")],
) -> None:
    """The resolved profile: every setting, with defaults filled in, as YAML."""
    profile = resolve_profile(name)
    typer.echo(yaml.safe_dump(profile.resolved(), sort_keys=False, allow_unicode=True).rstrip())


def validate_profiles(
    files: Annotated[list[Path], typer.Argument(help="Profile files to check.")],
) -> None:
    """Check profile files; exit 0 when all are valid, else 2 with every problem listed."""
    failed = False
    for path in files:
        if not path.is_file():
            typer.echo(f"error: {path}: no such file", err=True)
            failed = True
            continue
        try:
            profile = resolve_profile(str(path))
        except ProfileError as exc:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
            failed = True
            continue
        typer.echo(f"{path}: ok ({profile.name}: {profile.rate_shape.text}, {profile.duration_s:g}s)")
    if failed:
        raise typer.Exit(EXIT_INVALID)


def schema(
    profile: Annotated[str, typer.Argument(help="Shipped profile name or a profile .yaml file.")],
    schema_format: Annotated[
        str, typer.Option("--format", help="glue (CloudFormation Columns: YAML) or json-schema.")
    ] = "glue",
    no_trace_fields: Annotated[
        bool,
        typer.Option(
            "--no-trace-fields", help="Leave out run_id and seq (runs made with --no-trace-fields)."
        ),
    ] = False,
) -> None:
    """The profile's own events (its `kind: template`/`kind: kdg` generators in the mix) as
    Glue table columns or a JSON Schema."""
    import orjson

    from producer.templates import schema as event_schema
    from producer.templates.user import UserGenerator, field_types

    if schema_format not in ("glue", "json-schema"):
        raise UsageError(f"--format must be glue or json-schema, got {schema_format!r}")
    loaded = resolve_profile(profile)
    builtin = [name for name in loaded.mix if name not in loaded.generator_params.templates]
    if builtin:
        raise UsageError(
            f"profile {loaded.name!r} mixes in built-in generator {builtin[0]!r}: its columns are the "
            "shipped table's (deploy/pipeline.yaml); `profiles schema` describes kind: template and "
            "kind: kdg generators"
        )
    try:
        users = loaded.generator_params.templates
        parts = {name: field_types(u) for name in loaded.mix if isinstance(u := users[name], UserGenerator)}
        fields = event_schema.merge(parts, trace_fields=not no_trace_fields)
    except TemplateError as exc:
        raise UsageError(f"{loaded.path}: {exc}") from None
    if schema_format == "glue":
        typer.echo(event_schema.glue_columns(fields))
    else:
        typer.echo(
            orjson.dumps(event_schema.json_schema(loaded.name, fields), option=orjson.OPT_INDENT_2).decode()
        )


def sample(
    profile: Annotated[
        str, typer.Option(help="Shipped profile name or a profile .yaml file.", envvar="LOADGEN_PROFILE")
    ] = "mixed",
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many events.")] = 10,
    seed: Annotated[
        int | None, typer.Option(help="Seed for a reproducible sequence.", envvar="LOADGEN_SEED")
    ] = None,
    records: Annotated[
        bool,
        typer.Option(
            "--records",
            help="Print records as the run would send them: the profile's format and its "
            "malformed share (not always valid JSON).",
        ),
    ] = False,
) -> None:
    """Events from a profile as JSON lines on stdout (pipe them to jq)."""
    loaded = resolve_profile(profile)
    generator = build_generator(loaded.mix, seed, loaded.generator_params)
    encode: Encoder = encode_json_line
    if records:
        import random

        rng = random.Random(None if seed is None else f"malformed-{seed}")
        encode = RecordEncoder(loaded.record_format, loaded.malformed, rng).encode
    if loaded.generator_params.templates:
        encode = with_text_records(encode)  # a KDG text record prints as it is sent
    out = sys.stdout.buffer
    for _ in range(count):
        out.write(encode(generator.next_event(time.time())))
    out.flush()


def register(app: typer.Typer) -> None:
    profiles = typer.Typer(
        help="Load profiles: list the shipped ones, show one resolved, validate files.",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
    )
    profiles.command("list")(list_profiles)
    profiles.command("show")(show_profile)
    profiles.command("validate")(validate_profiles)
    profiles.command("schema")(schema)
    app.add_typer(profiles, name="profiles")
    app.command("sample")(sample)


__all__ = ["register"]
