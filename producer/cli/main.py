"""Command line: turns options into settings and calls the app. No pipeline logic here."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from producer import __version__, pipeline
from producer.bench import events as bench_events
from producer.cli import audit as audit_commands
from producer.cli import bench as bench_commands
from producer.cli import local as local_commands
from producer.cli import options
from producer.cli import profiles as profile_commands
from producer.cli import replay as replay_command
from producer.cli import stack as stack_commands
from producer.config import RunConfig, Target, TargetKind
from producer.delivery.channel import ChannelSettings
from producer.delivery.packing import DEFAULT_TARGET_BYTES
from producer.delivery.retry import RetryPolicy
from producer.errors import LoadgenError, UsageError
from producer.firehose import limits
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


def _streams(given: list[str] | None, stack: str | None, target: Target) -> tuple[str, ...]:
    """--stream names, else both streams of --stack's outputs, else the reference pipeline's."""
    if given and stack:
        raise UsageError("--stream and --stack both name the streams; pass one of them")
    if given:
        return tuple(given)
    if stack:
        if target.kind is TargetKind.LOCAL:
            raise UsageError("--stack reads a CloudFormation stack in AWS: add --target aws --region R")
        from producer.aws.cloudformation import stack_stream_names

        return stack_stream_names(stack, target.region)
    return pipeline.DEFAULT_STREAMS


def _template(
    template: Path | None, params: list[str], target: Target, output_dir: Path
) -> tuple[Path | None, Path | None, tuple[str, ...]]:
    """--template/--param: the embedded Firehose's stream config, transform and stream names.

    Without --template the embedded Firehose is built from the shipped deploy/pipeline.yaml, so
    the sandbox runs the pipeline that deploys (one source of truth); another target takes none."""
    if template is None and target.kind is not TargetKind.LOCAL:
        if params:
            raise UsageError("--param needs --template (the embedded local Firehose)")
        return None, None, ()
    if target.kind is not TargetKind.LOCAL:
        raise UsageError("--template builds the embedded local Firehose: drop --target aws / --endpoint-url")
    from producer.local.delivery import STATE_DIR
    from producer.local.template import SHIPPED_TEMPLATE, prepare
    from producer.shipped import shipped_path

    if template is None:
        template = shipped_path(SHIPPED_TEMPLATE)
        if not template.is_file():
            raise UsageError(
                f"the shipped pipeline template {SHIPPED_TEMPLATE} is missing from this installation "
                f"(looked in {template.parent}); pass --template FILE"
            )
    return prepare(template, params, target.region, output_dir / STATE_DIR)


def _target(target: TargetChoice, endpoint_url: str | None, region: str | None) -> Target:
    url = options.endpoint_url(endpoint_url)
    if url is not None:
        return Target(TargetKind.ENDPOINT, region or "us-east-1", url)
    if target is TargetChoice.aws:
        if not region:
            raise UsageError("--target aws needs a region: pass --region or set AWS_REGION")
        return Target(TargetKind.AWS, region)
    return Target(TargetKind.LOCAL, region or "us-east-1")


def _pack(
    profile: Profile, streams: list[str] | None, target_bytes: int, run: tuple[str, ...]
) -> dict[str, int]:
    """Streams to pack and their target record size: the profile's, then --pack's."""
    if not 0 < target_bytes <= limits.MAX_RECORD_BYTES:
        raise UsageError(f"--pack-bytes must be 1..{limits.MAX_RECORD_BYTES}, got {target_bytes}")
    pack = {name: size for name, size in profile.pack.items() if name in run}
    pack |= dict.fromkeys(streams or (), target_bytes)
    unknown = sorted(set(pack) - set(run))
    if unknown:
        raise UsageError(f"--pack {unknown[0]}: not a stream of this run ({', '.join(run)})")
    if pack and profile.record_format != "json":
        raise UsageError(
            f"--pack needs JSON events (the transform splits JSON lines); profile {profile.name!r} "
            f"makes {profile.record_format}"
        )
    if pack and profile.text_sources:
        raise UsageError(
            f"--pack needs JSON events (the transform splits JSON lines); generator "
            f"{profile.text_sources[0]!r} of profile {profile.name!r} makes text records"
        )
    return pack


@app.command()
def run(
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
        typer.Option(help="How long to generate: 30s, 10m, 1h.", envvar="LOADGEN_DURATION"),
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
    run_id: Annotated[
        str | None,
        typer.Option(
            hidden=True,
            help="Use this run id (workers and shards of one run share it).",
            envvar="LOADGEN_RUN_ID",
        ),
    ] = None,
) -> None:
    """Generate a load profile and send every event to every stream."""
    given = dict(locals())  # every option as resolved (flags, then LOADGEN_*), for --workers children
    loaded = resolve_profile(profile)
    if rate is not None and not rate > 0:
        raise UsageError(f"--rate must be a number of events per second > 0, got {rate:g}")
    duration_s = options.optional_duration("--duration", duration, strict=True)
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
    from producer.workers import plan as worker_plan

    worker_count = worker_plan.parse_workers(workers, shard)
    run_target = _target(target, endpoint_url, region)
    run_streams = _streams(stream, stack, run_target)
    local_config, local_transform, template_streams = _template(template, param or [], run_target, output_dir)
    config = RunConfig(
        profile=loaded,
        # Sharded: this producer's exact share; all shards' shares add up to the total.
        rate=shard.rate_share(rate if rate is not None else loaded.rate),
        duration_s=duration_s if duration_s is not None else loaded.duration_s,
        streams=_streams(stream, stack, run_target) if not template_streams or stream else template_streams,
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
        pack=_pack(loaded, pack, pack_bytes, run_streams),
        local_stream_config=local_config,
        local_transform=local_transform,
    )
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
stack_commands.register(app)


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
