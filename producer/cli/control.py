"""``firehose-loadgen ctl status|rate N|pause|resume|stop``: steer a run started with --control."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import orjson
import typer

from producer.control.client import DEFAULT_URL, call, status_lines
from producer.control.server import TOKEN_VARIABLE
from producer.errors import UsageError


class Action(StrEnum):
    status = "status"
    rate = "rate"
    pause = "pause"
    resume = "resume"
    stop = "stop"


def ctl(
    action: Annotated[Action, typer.Argument(help="status, rate N, pause, resume or stop.")],
    value: Annotated[float | None, typer.Argument(help="rate: the new peak rate in events/s.")] = None,
    url: Annotated[
        str, typer.Option(help="The run's metrics server (run --control).", envvar="LOADGEN_CONTROL_URL")
    ] = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's status as JSON.")] = False,
) -> None:
    """Steer a run started with --control: status, rate N, pause, resume, stop (the normal drain).
    The token, when the run needs one, is read from LOADGEN_CONTROL_TOKEN."""
    if (action is Action.rate) != (value is not None):
        raise UsageError("ctl rate needs the new rate (ctl rate 800); the other actions take none")
    token = os.environ.get(TOKEN_VARIABLE) or None
    if action is Action.status:
        status = call(url, "GET", "/v1/status", None, token)
    elif action is Action.stop:
        status = call(url, "POST", "/v1/stop", None, token)
    elif action is Action.rate:
        status = call(url, "PATCH", "/v1/status", {"rate": value}, token)
    else:
        status = call(url, "PATCH", "/v1/status", {"paused": action is Action.pause}, token)
    if as_json:
        typer.echo(orjson.dumps(status).decode())
    else:
        typer.echo("\n".join(status_lines(status)))


def register(app: typer.Typer) -> None:
    app.command("ctl")(ctl)
