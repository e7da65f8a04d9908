"""Command line: turns options into settings and calls the app. No pipeline logic here."""

from __future__ import annotations

import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from producer import __version__
from producer.bench import events as bench_events
from producer.checks.expr import Check, parse_checks
from producer.cli import audit as audit_commands
from producer.cli import bench as bench_commands
from producer.cli import control as control_commands
from producer.cli import local as local_commands
from producer.cli import merge as merge_command
from producer.cli import options
from producer.cli import profiles as profile_commands
from producer.cli import replay as replay_command
from producer.cli import stack as stack_commands
from producer.config import RunConfig, TargetKind
from producer.control.server import TOKEN_VARIABLE, check_bind
from producer.delivery.channel import ChannelSettings
from producer.delivery.packing import DEFAULT_TARGET_BYTES
from producer.delivery.retry import RetryPolicy
from producer.errors import LoadgenError, UsageError
from producer.profile.loading import Profile, resolve_profile
from producer.sharding import resolve_shard
from producer.telemetry.metrics import DEFAULT_METRICS_PORT

app = typer.Typer(
    name="firehose-loadgen",
    help="Realistic load for Amazon Data Firehose, with an embedded local Firehose.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class TargetChoice(StrEnum):
    local = "local"
    aws = "aws"


class SenderChoice(StrEnum):
    lean = "lean"
    botocore = "botocore"


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


class OnFull(StrEnum):
    block = "block"
    drop = "drop"


def _checks(profile: Profile, given: list[str] | None, run: tuple[str, ...]) -> tuple[Check, ...]:
    """The profile's checks:, then --check's (or LOADGEN_CHECK's); each once."""
    from_profile = parse_checks(profile.checks, f"{profile.path} checks:")
    checks = from_profile + tuple(c for c in parse_checks(given or []) if c.text not in profile.checks)
    for c in checks:
        if c.stream is not None and c.stream not in run:
            raise UsageError(
                f"--check {c.text!r}: {c.stream!r} is not a stream of this run ({', '.join(run)})"
            )
    return checks


@app.command()
def run(
    ctx: typer.Context,
    profile: Annotated[
        str,
        typer.Option(help="Shipped profile name or a profile .yaml file.", envvar="LOADGEN_PROFILE"),
    ] = "mixed",
    rate: Annotated[
        float | None,
        typer.Option(
            help="Events per second (every event goes to every stream); scales the profile's shape.",
            envvar="LOADGEN_RATE",
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            help="How long to generate: 30s, 10m, 1h, 7d, or forever (until stopped).",
            envvar="LOADGEN_DURATION",
        ),
    ] = None,
    stream: Annotated[
        list[str] | None,
        typer.Option(
            help="Delivery stream to send every event to; repeat for several. "
            "Default: the reference pipeline's two streams.",
            envvar="LOADGEN_STREAM",
        ),
    ] = None,
    target: Annotated[
        TargetChoice,
        typer.Option(
            help="local: start the embedded local Firehose. aws: real AWS (credentials and region "
            "from the standard AWS chain).",
            envvar="LOADGEN_TARGET",
        ),
    ] = TargetChoice.local,
    endpoint_url: options.EndpointUrl = None,
    region: options.Region = None,
    output_dir: Annotated[
        Path,
        typer.Option(
            help="Where the local Firehose delivers, and where run summaries and spools go.",
            envvar="LOADGEN_OUTPUT_DIR",
        ),
    ] = Path("loadgen-output"),
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            help="Dead-letter spool (JSONL). Default: OUTPUT_DIR/dead-letter/RUN_ID.jsonl.",
            envvar="LOADGEN_DEAD_LETTER",
        ),
    ] = None,
    summary_json: options.SummaryJson = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for a reproducible event sequence.", envvar="LOADGEN_SEED"),
    ] = None,
    linger: Annotated[
        str,
        typer.Option(help="Longest wait before a partial batch is sent.", envvar="LOADGEN_LINGER"),
    ] = "200ms",
    max_in_flight: options.MaxInFlight = 8,
    max_held: Annotated[
        int,
        typer.Option(
            help="Records a stream may hold unsent before backpressure applies.",
            envvar="LOADGEN_MAX_HELD",
        ),
    ] = 50_000,
    on_full: Annotated[
        OnFull,
        typer.Option(
            help="When a stream cannot keep up: block (generation slows) or drop (spooled as Dropped).",
            envvar="LOADGEN_ON_FULL",
        ),
    ] = OnFull.block,
    max_attempts: options.MaxAttempts = 10,
    record_ttl: options.RecordTtl = "2m",
    shutdown_grace: options.ShutdownGrace = "10s",
    drain_timeout: options.DrainTimeout = None,
    call_timeout: options.CallTimeout = "30s",
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No live line; summary only.", envvar="LOADGEN_QUIET")
    ] = False,
    log_format: Annotated[
        LogFormatChoice,
        typer.Option(
            help="text, or json: one JSON object per progress line and for the summary.",
            envvar="LOADGEN_LOG_FORMAT",
        ),
    ] = LogFormatChoice.text,
    log_every: Annotated[
        str,
        typer.Option(
            help="Progress line interval when stdout is not a terminal.", envvar="LOADGEN_LOG_EVERY"
        ),
    ] = "10s",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help=f"Serve Prometheus /metrics on this port (0: any free port). Default "
            f"{DEFAULT_METRICS_PORT}, or any free port when that one is taken; a port given here "
            "is used or the run stops.",
            envvar="LOADGEN_METRICS_PORT",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(help="Address for /metrics; 0.0.0.0 inside containers.", envvar="LOADGEN_METRICS_HOST"),
    ] = "127.0.0.1",
    no_metrics: Annotated[
        bool, typer.Option("--no-metrics", help="Do not serve /metrics.", envvar="LOADGEN_NO_METRICS")
    ] = False,
    stack: Annotated[
        str | None,
        typer.Option(
            help="Send to both streams of this deployed pipeline stack (firehose-loadgen "
            "stack deploy), read from its outputs.",
            envvar="LOADGEN_STACK",
        ),
    ] = None,
    shard_index: Annotated[
        int | None,
        typer.Option(
            help="This producer's shard (0-based) when several share --rate; an Indexed "
            "Job's JOB_COMPLETION_INDEX by default.",
            envvar=["LOADGEN_SHARD_INDEX", "JOB_COMPLETION_INDEX"],
        ),
    ] = None,
    shard_count: Annotated[
        int | None,
        typer.Option(
            help="How many producers share --rate; each sends its exact share.", envvar="LOADGEN_SHARD_COUNT"
        ),
    ] = None,
    sender: Annotated[
        SenderChoice,
        typer.Option(
            help="PutRecordBatch path: lean (default: botocore's signing and credentials, "
            "a faster request path) or botocore (the stock client).",
            envvar="LOADGEN_SENDER",
        ),
    ] = SenderChoice.lean,
    template: Annotated[
        Path | None,
        typer.Option(
            help="local target: build the embedded Firehose's streams and transform from this "
            "CloudFormation template [default: the shipped deploy/pipeline.yaml].",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="local target: template parameter override KEY=VALUE (repeatable)."),
    ] = None,
    no_trace_fields: Annotated[
        bool,
        typer.Option(
            "--no-trace-fields",
            help="Leave run_id and seq out of events (pure demo data).",
            envvar="LOADGEN_NO_TRACE_FIELDS",
        ),
    ] = False,
    metrics_linger: Annotated[
        str,
        typer.Option(
            help="Keep serving /metrics this long after the run, for a last scrape.",
            envvar="LOADGEN_METRICS_LINGER",
        ),
    ] = "0s",
    workers: Annotated[
        str,
        typer.Option(
            help="Producer processes on this machine (N or auto: one per core); they split --rate "
            "exactly and report as one run.",
            envvar="LOADGEN_WORKERS",
        ),
    ] = "1",
    pack: Annotated[
        list[str] | None,
        typer.Option(
            help="Pack this stream's events several to a record (newline-delimited, up to "
            "--pack-bytes), so Firehose's 5 KB billing rounds up once per record instead of once "
            "per event; repeat for several. S3 streams only: the pipeline's transform splits the "
            "lines again. Profiles can set it per stream (pack:).",
            envvar="LOADGEN_PACK",
        ),
    ] = None,
    pack_bytes: Annotated[
        int,
        typer.Option(
            help="Target size of a packed record. 5000 bills one 5 KB increment whichever way "
            "the pricing page's KB is read.",
            envvar="LOADGEN_PACK_BYTES",
        ),
    ] = DEFAULT_TARGET_BYTES,
    keep_output: Annotated[
        str | None,
        typer.Option(
            help="Local target: delete delivered objects once they are this old (1h, 2d), so a long "
            "demo does not fill the disk; the audit then says what it could no longer check.",
            envvar="LOADGEN_KEEP_OUTPUT",
        ),
    ] = None,
    control_from: Annotated[
        str | None,
        typer.Option(
            help="Follow a control document (a file or s3://BUCKET/KEY, JSON: rate, paused, stop), "
            "read every --control-every: the shards of a distributed run each take their share of "
            "its rate.",
            envvar="LOADGEN_CONTROL_FROM",
        ),
    ] = None,
    control_every: Annotated[
        str,
        typer.Option(help="How often --control-from is read.", envvar="LOADGEN_CONTROL_EVERY"),
    ] = "5s",
    sim_start: Annotated[
        str | None,
        typer.Option(
            help="Backfill: make the events of the window from here to --sim-end (ISO 8601, UTC) "
            "in simulated time, as fast as the streams take them.",
            envvar="LOADGEN_SIM_START",
        ),
    ] = None,
    sim_end: Annotated[
        str | None,
        typer.Option(help="Backfill: the end of the simulated window.", envvar="LOADGEN_SIM_END"),
    ] = None,
    control: Annotated[
        bool,
        typer.Option(
            "--control",
            help="Steer the run live on the metrics server: a web page at /, GET/PATCH /v1/status "
            "(rate, paused), POST /v1/stop; `firehose-loadgen ctl`. Off 127.0.0.1 it needs "
            "LOADGEN_CONTROL_TOKEN.",
            envvar="LOADGEN_CONTROL",
        ),
    ] = False,
    run_id: options.RunId = None,
    check: Annotated[
        list[str] | None,
        typer.Option(
            help="Pass/fail check, repeatable: METRIC[{stream=NAME}] OP VALUE [for D] [after D] "
            "[abort], e.g. 'throttled_ratio<1%' or 'accepted_ratio>0.9 for 30s abort'. A failed "
            "check is exit 5. LOADGEN_CHECK holds several separated by ';'. Profiles: checks:.",
            envvar="LOADGEN_CHECK",
            show_default=False,
        ),
    ] = None,
    results_url: options.ResultsUrlOption = None,
) -> None:
    """Generate a load profile and send every event to every stream."""
    check = options.semicolon_list(ctx, "check", "LOADGEN_CHECK", check)
    # Every option as resolved (flags, then LOADGEN_*), for --workers children.
    given = {k: v for k, v in locals().items() if k != "ctx"}
    loaded = resolve_profile(profile)
    if rate is not None and not rate > 0:
        raise UsageError(f"--rate must be a number of events per second > 0, got {rate:g}")
    duration_s = options.run_duration(duration)
    backfill = options.sim_window(sim_start, sim_end, time.time())
    if backfill is not None:
        if duration is not None:
            raise UsageError("--duration and --sim-start/--sim-end both say how long: pass one of them")
        duration_s = backfill[1]
    for name, value in (
        ("--max-in-flight", max_in_flight),
        ("--max-held", max_held),
        ("--max-attempts", max_attempts),
    ):
        options.at_least(name, value)
    call_timeout_s = options.duration("--call-timeout", call_timeout, strict=True)
    record_ttl_s = options.duration("--record-ttl", record_ttl)
    drain_timeout_s = options.drain_timeout(drain_timeout, record_ttl_s, call_timeout_s)
    try:
        shard = resolve_shard(shard_index, shard_count, {})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    metrics_port_fallback = metrics_port is None
    if metrics_port is None:
        metrics_port = DEFAULT_METRICS_PORT
    if not 0 <= metrics_port <= 65535:
        raise UsageError(f"--metrics-port must be 0..65535, got {metrics_port}")
    control_token = os.environ.get(TOKEN_VARIABLE) or None
    if control:
        if no_metrics:
            raise UsageError("--control is served by the metrics server: drop --no-metrics")
        check_bind(metrics_host, control_token)
    from producer.workers import plan as worker_plan

    worker_count = worker_plan.parse_workers(workers, shard)
    run_target = options.target(target is TargetChoice.aws, endpoint_url, region)
    from producer.local.delivery import STATE_DIR
    from producer.streams.resolution import Asked, resolve

    asked = Asked(
        streams=stream or (),
        stack=stack,
        template=template,
        params=param or (),
        pack=pack or (),
        pack_bytes=pack_bytes,
        profile_pack=loaded.pack,
        record_format=loaded.record_format,
        text_sources=loaded.text_sources,
        profile_name=loaded.name,
    )
    streams = resolve(asked, run_target.kind is TargetKind.LOCAL, run_target.region, output_dir / STATE_DIR)
    config = RunConfig(
        profile=loaded,
        # Sharded: this producer's exact share; all shards' shares add up to the total.
        rate=shard.rate_share(rate if rate is not None else loaded.rate),
        duration_s=duration_s if duration_s is not None else loaded.duration_s,
        streams=streams.names,
        target=run_target,
        output_dir=output_dir,
        dead_letter=dead_letter,
        summary_json=summary_json,
        seed=shard.seed(seed),
        channel=ChannelSettings(
            linger_s=options.duration("--linger", linger),
            max_in_flight=max_in_flight,
            max_held_records=max_held,
            on_full=on_full.value,
            call_timeout_s=call_timeout_s,
        ),
        retry=RetryPolicy(max_attempts=max_attempts, record_ttl_s=record_ttl_s),
        shutdown_grace_s=options.duration("--shutdown-grace", shutdown_grace),
        drain_timeout_s=drain_timeout_s,
        live_interval_s=1.0,
        quiet=quiet,
        log_format=log_format.value,
        log_every_s=options.duration("--log-every", log_every, strict=True),
        metrics_host=metrics_host,
        metrics_port=None if no_metrics else metrics_port,
        metrics_port_fallback=metrics_port_fallback,
        metrics_linger_s=options.duration("--metrics-linger", metrics_linger),
        sender=sender.value,
        trace_fields=not no_trace_fields,
        shard=shard,
        run_id=worker_plan.check_run_id(run_id),
        pack=streams.pack,
        local_stream_config=streams.config,
        local_transform=streams.transform,
        checks=_checks(loaded, check, streams.names),
        results_url=options.results_url(results_url),
        control=control,
        control_token=control_token,
        keep_output_s=options.optional_duration("--keep-output", keep_output, strict=True),
        control_from=control_from,
        control_every_s=options.duration("--control-every", control_every, strict=True),
        sim_start=None if backfill is None else backfill[0],
    )
    if keep_output is not None and run_target.kind is not TargetKind.LOCAL:
        raise UsageError(
            "--keep-output prunes the embedded local Firehose's output: it needs the local target"
        )
    warning = options.shape_warning(config.profile.rate_shape, config.rate / loaded.rate, config.duration_s)
    if warning and not quiet:  # --quiet: the summary only (a --workers parent warns for its workers)
        print(f"warning: {warning}", file=sys.stderr)
    from producer.app import run_load
    from producer.runtime import run_async

    if worker_count > 1:  # the parent supervises; the workers generate (producer/workers/supervisor.py)
        plan = worker_plan.WorkerPlan(config, worker_count, worker_plan.option_args(given))
        from producer.workers.supervisor import run_workers

        raise typer.Exit(run_async(run_workers(plan)).exit_code)
    result = run_async(run_load(config))
    raise typer.Exit(result.exit_code)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


replay_command.register(app)
profile_commands.register(app)
bench_commands.register(app)  # before bench_events, which joins its `bench` group
bench_events.register(app)
local_commands.register(app)
audit_commands.register(app)  # audit, soak
merge_command.register(app)
stack_commands.register(app)
control_commands.register(app)  # ctl


def main() -> None:
    """Console entry point: one clear line and exit code 2 for bad usage, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except TyperException as exc:  # bad flags and values, as Typer reports them
        print(f"error: {exc.format_message()} (see --help)", file=sys.stderr)
        sys.exit(2)
    except LoadgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
