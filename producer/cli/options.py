"""Options shared by several commands, declared once, and the one parser for each kind of value.

A command module declares its parameters with these Annotated types (Typer reads the metadata),
so ``run`` and ``replay`` cannot drift apart in names, environment variables or help; and turns
text into values with ``duration``/``endpoint_url``, which fail with one UsageError line (exit 2).
"""

from __future__ import annotations

import datetime
import math
import os
from pathlib import Path
from typing import Annotated

import typer

from producer.config import Target, TargetKind
from producer.durations import parse_duration
from producer.errors import UsageError
from producer.results.url import ResultsUrl, parse_results_url
from producer.schedule import RateShape, peak_reached


def duration(option: str, text: str, *, strict: bool = False) -> float:
    """Seconds in ``text`` (30s, 10m, 1h30m, 250ms; never negative); ``strict``: above 0."""
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if strict and value <= 0:
        raise UsageError(f"{option} must be longer than 0s")
    return value


def optional_duration(option: str, text: str | None, *, strict: bool = False) -> float | None:
    return None if text is None else duration(option, text, strict=strict)


FOREVER = "forever"


def run_duration(text: str | None) -> float | None:
    """``run --duration``: a duration above 0, or ``forever`` (math.inf: until stopped)."""
    if text is not None and text.strip().lower() == FOREVER:
        return math.inf
    return optional_duration("--duration", text, strict=True)


def shape_warning(shape: RateShape, factor: float, duration_s: float) -> str | None:
    """A line when the run ends before its shape reaches its peak (a flash sale cut off before
    the sale): the live view would show a modest rate and the reader take the run for failing."""
    if math.isinf(duration_s):
        return None
    within, peak_at = peak_reached(shape, duration_s)
    if within >= 0.99 * shape.peak:
        return None
    when = f" at {peak_at:g}s" if peak_at is not None else ""
    return (
        f"--duration {duration_s:g}s ends before the shape's peak "
        f"({shape.peak * factor:,.0f} events/s{when}); this run tops out at "
        f"{within * factor:,.0f} events/s. Lengthen --duration to reach it"
    )


def timestamp(option: str, text: str) -> float:
    """Seconds since the epoch from ISO 8601 (2026-11-30, 2026-11-30T08:00:00Z); UTC unless
    the text gives an offset."""
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a time; use ISO 8601 such as 2026-11-30T08:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def sim_window(start: str | None, end: str | None, now: float) -> tuple[float, float] | None:
    """``--sim-start``/``--sim-end``: a past window (start, seconds long), or None."""
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise UsageError("a backfill needs both --sim-start and --sim-end")
    begin, finish = timestamp("--sim-start", start), timestamp("--sim-end", end)
    if finish <= begin:
        raise UsageError(f"--sim-end {end} must be after --sim-start {start}")
    if finish > now:
        raise UsageError(
            f"--sim-end {end} is in the future: a backfill makes past events; run live for the rest"
        )
    return begin, finish - begin


def endpoint_url(text: str | None, option: str = "--endpoint-url") -> str | None:
    """A Firehose-compatible endpoint as given (trailing slash dropped), or None."""
    if not text:
        return None
    if not text.startswith(("http://", "https://")):
        raise UsageError(f"{option} {text!r} must start with http:// or https://")
    return text.rstrip("/")


def results_url(text: str | None) -> ResultsUrl | None:
    return None if not text else parse_results_url(text)


def semicolon_list(ctx: typer.Context, param: str, envvar: str, given: list[str] | None) -> list[str]:
    """A repeatable option whose variable holds values with spaces (checks): Typer splits a list
    variable on whitespace, so a value that came from the variable is read again, split on ';'."""
    source = ctx.get_parameter_source(param)  # Click's ParameterSource, as Typer vendors it
    if source is not None and source.name == "ENVIRONMENT":
        return [part.strip() for part in os.environ.get(envvar, "").split(";") if part.strip()]
    return list(given or [])


def at_least(option: str, value: int, low: int = 1) -> int:
    if value < low:
        raise UsageError(f"{option} must be at least {low}, got {value}")
    return value


# --- Where records go -------------------------------------------------------------------------


def target(aws: bool, endpoint_url_text: str | None, region: str | None) -> Target:
    """--endpoint-url, else --target aws (which needs a region), else the embedded local Firehose."""
    url = endpoint_url(endpoint_url_text)
    if url is not None:
        return Target(TargetKind.ENDPOINT, region or "us-east-1", url)
    if aws:
        if not region:
            raise UsageError("--target aws needs a region: pass --region or set AWS_REGION")
        return Target(TargetKind.AWS, region)
    return Target(TargetKind.LOCAL, region or "us-east-1")


EndpointUrl = Annotated[
    str | None,
    typer.Option(
        help="Any Firehose-compatible endpoint (the embedded local Firehose is then not started).",
        envvar=["LOADGEN_ENDPOINT_URL", "AWS_ENDPOINT_URL_FIREHOSE", "AWS_ENDPOINT_URL"],
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        help="AWS region (default us-east-1 for local and endpoint targets).",
        envvar=["LOADGEN_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"],
    ),
]
SummaryJson = Annotated[
    Path | None, typer.Option(help="Also write the summary here.", envvar="LOADGEN_SUMMARY_JSON")
]

# --- One run over several processes, pods and tasks ------------------------------------------

RunId = Annotated[
    str | None,
    typer.Option(
        help="The run's id; every shard, pod or task of one run passes the same one (the K8s Job "
        "sets it from its own uid). Default: a new one (time and random suffix).",
        envvar="LOADGEN_RUN_ID",
        show_default=False,
    ),
]
ResultsUrlOption = Annotated[
    str | None,
    typer.Option(
        "--results-url",
        help="file://DIR or s3://BUCKET/PREFIX: this shard's summary and spool go under RUN_ID/ "
        "there when it ends, for `firehose-loadgen merge`; an abort check stops every shard.",
        envvar="LOADGEN_RESULTS_URL",
        show_default=False,
    ),
]

# --- Delivery: one StreamChannel per stream, for run and replay alike -------------------------

MaxInFlight = Annotated[
    int, typer.Option(help="Concurrent PutRecordBatch calls per stream.", envvar="LOADGEN_MAX_IN_FLIGHT")
]
MaxAttempts = Annotated[
    int, typer.Option(help="Attempts per record before it is spooled.", envvar="LOADGEN_MAX_ATTEMPTS")
]
RecordTtl = Annotated[
    str, typer.Option(help="Age after which a record is no longer retried.", envvar="LOADGEN_RECORD_TTL")
]
CallTimeout = Annotated[
    str,
    typer.Option(
        help="Total deadline of one PutRecordBatch call; its records are then retried as "
        "outcome unknown (possible duplicates).",
        envvar="LOADGEN_CALL_TIMEOUT",
    ),
]
ShutdownGrace = Annotated[
    str,
    typer.Option(
        help="On SIGINT/SIGTERM, how long in-flight sends and retries may finish before the rest is spooled.",
        envvar="LOADGEN_SHUTDOWN_GRACE",
    ),
]
DrainTimeout = Annotated[
    str | None,
    typer.Option(
        help="At the end (of --duration, or of the spool), how long sends and retries may go on "
        "until every record is accepted or has used its attempts/TTL. Default: --record-ttl plus "
        "--call-timeout, so the drain never cuts a record still within its time-to-live.",
        envvar="LOADGEN_DRAIN_TIMEOUT",
        show_default=False,
    ),
]


def drain_timeout(text: str | None, record_ttl_s: float, call_timeout_s: float) -> float:
    """--drain-timeout, or by default the longest a record can still be retried plus one call."""
    given = optional_duration("--drain-timeout", text)
    return record_ttl_s + call_timeout_s if given is None else given
