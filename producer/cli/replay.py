"""``firehose-loadgen replay PATH``: the command line of producer/replay.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from producer.delivery.channel import ChannelSettings
from producer.delivery.retry import RetryPolicy
from producer.durations import parse_duration
from producer.errors import UsageError


def _seconds(option: str, text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if value < 0:
        raise UsageError(f"{option} must be 0s or more")
    return value


def replay(
    path: Annotated[Path, typer.Argument(help="A dead-letter spool (JSONL) written by `run` or `replay`.")],
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            help="Any Firehose-compatible endpoint. Without it: real AWS (credentials and region "
            "from the standard AWS chain).",
            envvar=["LOADGEN_ENDPOINT_URL", "AWS_ENDPOINT_URL_FIREHOSE", "AWS_ENDPOINT_URL"],
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="AWS region (default us-east-1 with --endpoint-url).",
            envvar=["LOADGEN_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"],
        ),
    ] = None,
    stream: Annotated[
        list[str] | None,
        typer.Option(help="Replay only this stream's records; repeat for several. Default: all."),
    ] = None,
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            help="Where records that still fail go. Default: next to PATH, as NAME.replay-TIME.jsonl.",
            envvar="LOADGEN_DEAD_LETTER",
        ),
    ] = None,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the replay summary here.", envvar="LOADGEN_SUMMARY_JSON")
    ] = None,
    max_in_flight: Annotated[
        int, typer.Option(help="Concurrent PutRecordBatch calls per stream.", envvar="LOADGEN_MAX_IN_FLIGHT")
    ] = 8,
    max_attempts: Annotated[
        int, typer.Option(help="Attempts per record before it is spooled.", envvar="LOADGEN_MAX_ATTEMPTS")
    ] = 10,
    record_ttl: Annotated[
        str, typer.Option(help="Age after which a record is no longer retried.", envvar="LOADGEN_RECORD_TTL")
    ] = "2m",
    shutdown_grace: Annotated[
        str,
        typer.Option(
            help="On Ctrl-C or SIGTERM, how long sends may finish before the rest is spooled.",
            envvar="LOADGEN_SHUTDOWN_GRACE",
        ),
    ] = "10s",
) -> None:
    """Resend a dead-letter spool; records that fail again go to a new spool."""
    if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint-url {endpoint_url!r} must start with http:// or https://")
    if endpoint_url is None and not region:
        raise UsageError("replay to AWS needs a region: pass --region or set AWS_REGION (or --endpoint-url)")
    for name, value in (("--max-in-flight", max_in_flight), ("--max-attempts", max_attempts)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    from producer.loop import run_async
    from producer.replay import ReplaySettings, replay_spool

    settings = ReplaySettings(
        path=path,
        region=region or "us-east-1",
        endpoint_url=endpoint_url.rstrip("/") if endpoint_url else None,
        dead_letter=dead_letter,
        summary_json=summary_json,
        streams=tuple(stream or ()),
        channel=ChannelSettings(max_in_flight=max_in_flight),
        retry=RetryPolicy(max_attempts=max_attempts, record_ttl_s=_seconds("--record-ttl", record_ttl)),
        shutdown_grace_s=_seconds("--shutdown-grace", shutdown_grace),
    )
    result = run_async(replay_spool(settings))
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the ``replay`` command to ``app``."""
    app.command("replay")(replay)
