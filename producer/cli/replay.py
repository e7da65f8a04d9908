"""``firehose-loadgen replay PATH``: the command line of producer/replay.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from producer.cli import options
from producer.delivery.channel import ChannelSettings
from producer.delivery.retry import RetryPolicy
from producer.errors import UsageError


def replay(
    path: Annotated[Path, typer.Argument(help="A dead-letter spool (JSONL) written by `run` or `replay`.")],
    endpoint_url: options.EndpointUrl = None,
    region: options.Region = None,
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
    summary_json: options.SummaryJson = None,
    max_in_flight: options.MaxInFlight = 8,
    max_attempts: options.MaxAttempts = 10,
    record_ttl: options.RecordTtl = "2m",
    call_timeout: options.CallTimeout = "30s",
    shutdown_grace: options.ShutdownGrace = "10s",
    drain_timeout: options.DrainTimeout = None,
) -> None:
    """Resend a dead-letter spool (to AWS unless --endpoint-url); records that fail again go to a
    new spool."""
    url = options.endpoint_url(endpoint_url)
    if url is None and not region:
        raise UsageError("replay to AWS needs a region: pass --region or set AWS_REGION (or --endpoint-url)")
    for name, value in (("--max-in-flight", max_in_flight), ("--max-attempts", max_attempts)):
        options.at_least(name, value)
    record_ttl_s = options.duration("--record-ttl", record_ttl)
    call_timeout_s = options.duration("--call-timeout", call_timeout, strict=True)
    from producer.replay import ReplaySettings, replay_spool
    from producer.runtime import run_async

    settings = ReplaySettings(
        path=path,
        region=region or "us-east-1",
        endpoint_url=url,
        dead_letter=dead_letter,
        summary_json=summary_json,
        streams=tuple(stream or ()),
        channel=ChannelSettings(max_in_flight=max_in_flight, call_timeout_s=call_timeout_s),
        retry=RetryPolicy(max_attempts=max_attempts, record_ttl_s=record_ttl_s),
        shutdown_grace_s=options.duration("--shutdown-grace", shutdown_grace),
        drain_timeout_s=options.drain_timeout(drain_timeout, record_ttl_s, call_timeout_s),
    )
    result = run_async(replay_spool(settings))
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the ``replay`` command to ``app``."""
    app.command("replay")(replay)
