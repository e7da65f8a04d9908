"""`firehose-loadgen local serve`: the embedded local Firehose as its own process.

Options become LocalOptions/FaultSettings/QuotaOverrides; the server itself lives in
producer/local/. Binds 127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from producer.cli.options import duration, endpoint_url
from producer.errors import UsageError
from producer.local.faults import FaultSettings
from producer.local.process import READY_PREFIX
from producer.local.quotas import QuotaOverrides
from producer.local.server import LocalFirehose, LocalOptions

DEFAULT_PORT = 4573


async def _serve(options: LocalOptions, ready_line: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = LocalFirehose(options)
    try:
        await server.start()
    except ValueError as exc:  # a bad stream config file
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from None
    if ready_line:
        streams = ", ".join(sorted(server.streams)) or "none yet"
        print(
            f"{READY_PREFIX}{server.url} (region {options.region}); "
            f"output in {options.output_dir}; streams: {streams}",
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        # Deliver everything buffered before exiting: a stop loses nothing that was accepted.
        await server.stop()
        print("local Firehose stopped; buffers delivered", file=sys.stderr, flush=True)


def register(app: typer.Typer) -> None:
    """Add the `local` command group (`local serve`) to the main CLI."""
    local = typer.Typer(help="The embedded local Firehose.", no_args_is_help=True)

    @local.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 unless you mean it.")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = DEFAULT_PORT,
        output: Annotated[
            Path, typer.Option("--output", help="Folder objects are delivered to (DIR/<bucket>/...).")
        ] = Path("firehose-output"),
        config: Annotated[
            Path | None,
            typer.Option(help="Streams to create at start-up: CreateDeliveryStream JSON (one or a list)."),
        ] = None,
        region: Annotated[str, typer.Option(help="Region whose default quotas apply.")] = "us-east-1",
        transform: Annotated[
            Path | None,
            typer.Option(help="Lambda transform file (default: deploy/lambda/transform.py if present)."),
        ] = None,
        records_per_s: Annotated[
            int | None, typer.Option(help="Per-stream records/s quota (default: the region's).")
        ] = None,
        requests_per_s: Annotated[
            int | None, typer.Option(help="Per-stream requests/s quota (default: the region's).")
        ] = None,
        bytes_per_s: Annotated[
            int | None, typer.Option(help="Per-stream bytes/s quota (default: the region's).")
        ] = None,
        record_failure_rate: Annotated[
            float, typer.Option(help="Share of records answered ServiceUnavailableException.")
        ] = 0.0,
        call_error_rate: Annotated[float, typer.Option(help="Share of calls answered with a 5xx.")] = 0.0,
        call_error_type: Annotated[
            str, typer.Option(help="ServiceUnavailableException or InternalFailure.")
        ] = "ServiceUnavailableException",
        latency: Annotated[float, typer.Option(help="Seconds added to every data-plane answer.")] = 0.0,
        latency_jitter: Annotated[float, typer.Option(help="Plus uniform(0, this) seconds.")] = 0.0,
        drop_connection_rate: Annotated[
            float, typer.Option(help="Share of calls whose connection is closed unanswered.")
        ] = 0.0,
        outage_start: Annotated[
            float | None, typer.Option(help="Seconds after start when an outage (all 503) begins.")
        ] = None,
        outage_duration: Annotated[float, typer.Option(help="Length of the outage in seconds.")] = 0.0,
        fault_seed: Annotated[int | None, typer.Option(help="Seed for the fault draws.")] = None,
        discard: Annotated[
            bool,
            typer.Option("--discard", help="Benchmark mode: answer as usual, keep nothing, no quotas."),
        ] = False,
        template: Annotated[
            Path | None,
            typer.Option(help="Build the streams and transform from this CloudFormation template."),
        ] = None,
        param: Annotated[
            list[str] | None, typer.Option("--param", help="Template parameter override KEY=VALUE.")
        ] = None,
        update_delay: Annotated[
            str,
            typer.Option(
                "--update-delay",
                help="How long an UpdateDestination takes to govern buffering (e.g. 30s; AWS: minutes).",
            ),
        ] = "0s",
        cloudwatch_endpoint_url: Annotated[
            str | None,
            typer.Option(
                "--cloudwatch-endpoint-url",
                help="Publish the AWS/Firehose metrics to this CloudWatch-compatible endpoint.",
            ),
        ] = None,
        cloudwatch_period: Annotated[
            str,
            typer.Option("--cloudwatch-period", help="Period of the published data points (AWS: 1m)."),
        ] = "60s",
    ) -> None:
        """Serve the local Firehose until Ctrl-C; buffered records are delivered on exit."""
        faults = FaultSettings(
            record_failure_rate=record_failure_rate,
            call_error_rate=call_error_rate,
            call_error_type=call_error_type,
            latency_s=latency,
            latency_jitter_s=latency_jitter,
            drop_connection_rate=drop_connection_rate,
            outage_start_s=outage_start,
            outage_duration_s=outage_duration,
            seed=fault_seed,
        )
        try:
            faults.validate()
        except ValueError as exc:
            raise UsageError(f"fault options: {exc}") from None
        for name, value in (
            ("--records-per-s", records_per_s),
            ("--requests-per-s", requests_per_s),
            ("--bytes-per-s", bytes_per_s),
        ):
            if value is not None and value < 1:
                raise UsageError(f"{name} must be at least 1, got {value}")
        if config is not None and not config.is_file():
            raise UsageError(f"--config {config}: no such file")
        if template is not None:
            config, inline = _template_config(template, param or [], region, output, config)
            transform = transform or inline
        elif param:
            raise UsageError("--param needs --template")
        options = LocalOptions(
            output_dir=output,
            host=host,
            port=port,
            region=region,
            faults=faults,
            quotas=QuotaOverrides(records_per_s, requests_per_s, bytes_per_s),
            stream_config=config,
            transform_path=transform,
            discard=discard,
            update_apply_delay_s=duration("--update-delay", update_delay),
            cloudwatch_endpoint_url=endpoint_url(cloudwatch_endpoint_url, "--cloudwatch-endpoint-url"),
            cloudwatch_period_s=duration("--cloudwatch-period", cloudwatch_period, strict=True),
        )
        from producer.runtime import run_async

        run_async(_serve(options, ready_line=True))

    app.add_typer(local, name="local")


def _template_config(
    template: Path, params: list[str], region: str, output: Path, config: Path | None
) -> tuple[Path, Path | None]:
    """Streams and inline transform from a CloudFormation template, written under the output's
    state folder for the server to read."""
    from producer.local.delivery import STATE_DIR
    from producer.local.template import prepare

    if config is not None:
        raise UsageError("--template and --config both define the streams; pass one")
    stream_config, transform, _ = prepare(template, params, region, output / STATE_DIR)
    return stream_config, transform
