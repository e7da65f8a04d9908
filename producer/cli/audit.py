"""`firehose-loadgen audit` and `firehose-loadgen soak`: options in, producer/audit/ does the work."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from producer.audit import output, report_text
from producer.audit import settings as vocabulary
from producer.audit.describe import local_run_hints
from producer.audit.runinfo import load_run
from producer.audit.runner import AuditReport, AuditRequest, run_audit
from producer.audit.soak import LoadOptions, SoakPlan, SoakResult
from producer.audit.soak import soak as run_soak
from producer.audit.verdict import Targets
from producer.aws.clients import AwsSettings
from producer.cli import options
from producer.config import TargetKind
from producer.errors import EXIT_CHECK_FAILED, EXIT_DEAD_LETTERED, EXIT_OK, EXIT_STREAM_UNUSABLE, UsageError

# Exit codes: 0 every accepted event delivered exactly once; 1 something missing or duplicated
# (the report says what); 2 bad input (one line, no traceback).
EXIT_FINDINGS = EXIT_DEAD_LETTERED

OutputDir = Annotated[
    Path,
    typer.Option(
        help="The run's output folder (summaries, spools, local deliveries).", envvar="LOADGEN_OUTPUT_DIR"
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")]
HtmlPath = Annotated[Path | None, typer.Option(help="Also write a self-contained HTML report here.")]
S3Bucket = Annotated[str | None, typer.Option(help="Read delivered objects from this S3 bucket.")]
S3Prefix = Annotated[str, typer.Option(help="Only objects under this key prefix.")]
S3Endpoint = Annotated[
    str | None, typer.Option(help="An S3-compatible endpoint instead of AWS (MinIO, moto).")
]
OpenSearchUrl = Annotated[
    str | None,
    typer.Option(help="OpenSearch base URL (basic auth in the URL if needed) for *-opensearch streams."),
]
OpenSearchIndex = Annotated[str, typer.Option(help="Index or pattern holding the documents.")]
Region = Annotated[
    str | None,
    typer.Option(help="AWS region.", envvar=["LOADGEN_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"]),
]


def _emit(reports: list[AuditReport], as_json: bool, html: Path | None) -> int:
    if html is not None:
        output.write_html(html, reports)
    if as_json:
        sys.stdout.buffer.write(output.as_json(reports))
        sys.stdout.flush()
    else:
        typer.echo(report_text.render(reports), nl=False)
        if html is not None:
            typer.echo(f"HTML report: {html}")
    return EXIT_OK if all(r.clean for r in reports) else EXIT_FINDINGS


def register(app: typer.Typer) -> None:
    """Add `audit` and `soak` to the main CLI."""

    @app.command()
    def audit(
        run_id: Annotated[str, typer.Option(help="The run to audit (its summary's run_id).")],
        output_dir: OutputDir = Path("loadgen-output"),
        json_out: JsonFlag = False,
        html: HtmlPath = None,
        s3_bucket: S3Bucket = None,
        s3_prefix: S3Prefix = "",
        s3_endpoint_url: S3Endpoint = None,
        opensearch_url: OpenSearchUrl = None,
        opensearch_index: OpenSearchIndex = "realtime-events*",
        region: Region = None,
    ) -> None:
        """Reconcile what a run sent with what the pipeline delivered: missing, duplicates, error
        output, latency, objects. Exit 0 clean, 1 findings, 2 bad input."""
        run = load_run(output_dir, run_id)
        local_run = run.summary.target.startswith("local")
        request = AuditRequest(
            run_id=run_id,
            output_dir=output_dir,
            s3_bucket=s3_bucket,
            s3_prefix=s3_prefix,
            aws=AwsSettings(
                region or "us-east-1", options.endpoint_url(s3_endpoint_url, "--s3-endpoint-url")
            ),
            opensearch_url=options.endpoint_url(opensearch_url, "--opensearch-url"),
            opensearch_index=opensearch_index,
            # A local run recorded the hints it created its streams with: no need to ask.
            hints=local_run_hints(run.summary, run.streams) if local_run else {},
        )
        report = asyncio.run(run_audit(request, run))
        raise typer.Exit(_emit([report], json_out, html))

    @app.command()
    def soak(
        profile: Annotated[str, typer.Option(help="Shipped profile name or a profile .yaml file.")] = "soak",
        duration: Annotated[str | None, typer.Option(help="How long to generate: 30s, 10m, 2h.")] = None,
        rate: Annotated[float | None, typer.Option(help="Events per second (scales the profile).")] = None,
        stream: Annotated[
            list[str] | None, typer.Option(help="Delivery stream (repeatable). Default: the reference two.")
        ] = None,
        stack: Annotated[
            str | None,
            typer.Option(help="Soak both streams of this deployed pipeline stack (read from its outputs)."),
        ] = None,
        compare: Annotated[
            list[str] | None,
            typer.Option(
                help="A setting: PARAM=VALUE[,PARAM=VALUE...] in deploy/pipeline.yaml's parameter names "
                "(S3BufferIntervalSeconds, S3BufferSizeMiB, OpenSearchBufferIntervalSeconds, "
                "OpenSearchBufferSizeMiB, OpenSearchBackupBufferIntervalSeconds, "
                "OpenSearchBackupBufferSizeMiB, ProcessorBufferIntervalSeconds, ProcessorBufferSizeMB), "
                "or INTERVAL/SIZE for both streams' destination hints. Repeat to compare; each is "
                "applied with UpdateDestination and every stream is restored at the end. "
                "Default: the streams as they are.",
            ),
        ] = None,
        target: Annotated[str, typer.Option(help="local (embedded Firehose) or aws.")] = "local",
        endpoint_url: options.EndpointUrl = None,
        region: Region = None,
        output_dir: OutputDir = Path("loadgen-output"),
        flush_margin: Annotated[
            str, typer.Option(help="Wait this much past the processor + destination buffer intervals.")
        ] = "10s",
        seed: Annotated[
            int | None, typer.Option(help="Seed, so every --compare run sends the same events.")
        ] = None,
        max_freshness: Annotated[
            str | None, typer.Option(help="Target: p99 end-to-end latency of every stream at most this.")
        ] = None,
        min_object_size: Annotated[
            float | None, typer.Option(help="Target: median S3 object at least this many MiB.")
        ] = None,
        max_cost_per_hour: Annotated[
            float | None,
            typer.Option(help="Target: USD per hour at this load (Firehose, S3 PUTs, Lambda requests)."),
        ] = None,
        apply_timeout: Annotated[
            str, typer.Option(help="How long DescribeDeliveryStream may take to show an update.")
        ] = "5m",
        cloudwatch_wait: Annotated[
            str,
            typer.Option(
                help="How long to poll CloudWatch for the run's last minute (then: figures missing)."
            ),
        ] = "5m",
        report: Annotated[
            Path | None,
            typer.Option(help="Report path stem (.json and .html). Default: OUTPUT_DIR/reports/soak-RUN_ID."),
        ] = None,
        json_out: JsonFlag = False,
        s3_bucket: S3Bucket = None,
        s3_prefix: S3Prefix = "",
        opensearch_url: OpenSearchUrl = None,
        opensearch_index: OpenSearchIndex = "realtime-events*",
        quiet: Annotated[bool, typer.Option("--quiet", help="No live line while the load runs.")] = False,
    ) -> None:
        """Soak buffer settings: apply each, run the load, wait for the flush, audit, read
        CloudWatch, compare against the targets and recommend; restore the streams at the end."""
        if target not in ("local", "aws"):
            raise UsageError(f"--target must be local or aws, got {target!r}")
        where = options.target(target == "aws", endpoint_url, region)
        margin_s = options.duration("--flush-margin", flush_margin)
        targets = Targets(
            options.optional_duration("--max-freshness", max_freshness, strict=True),
            _positive("--min-object-size", min_object_size),
            _positive("--max-cost-per-hour", max_cost_per_hour),
        )
        from producer.local.template import SHIPPED_TEMPLATE
        from producer.shipped import shipped_path

        ranges = vocabulary.template_ranges(shipped_path(SHIPPED_TEMPLATE))
        settings = tuple(vocabulary.parse(text, ranges) for text in compare or [])
        from producer.streams.resolution import stream_names

        streams = stream_names(stream or (), stack, where.kind is TargetKind.LOCAL, where.region)
        load = LoadOptions(
            profile=profile,
            duration=duration,
            rate=rate,
            streams=streams,
            seed=seed if seed is not None else (0 if len(settings) > 1 else None),
            quiet=quiet,
        )

        def log(line: str) -> None:
            typer.echo(line, err=True)

        sources = None
        if s3_bucket or opensearch_url:
            sources = AuditRequest(
                run_id="",
                output_dir=output_dir,
                s3_bucket=s3_bucket,
                s3_prefix=s3_prefix,
                aws=AwsSettings(where.region),
                opensearch_url=options.endpoint_url(opensearch_url, "--opensearch-url"),
                opensearch_index=opensearch_index,
            )
        wait_s = options.duration("--cloudwatch-wait", cloudwatch_wait)
        plan = SoakPlan(
            load,
            output_dir,
            settings,
            region=where.region,
            endpoint_url=where.endpoint_url,
            aws=where.kind is TargetKind.AWS,
            flush_margin_s=margin_s,
            targets=targets,
            audit=sources,
            apply_timeout_s=options.duration("--apply-timeout", apply_timeout, strict=True),
            cloudwatch_wait_s=wait_s,
            # A few polls within the wait; AWS publishes a minute a few minutes late.
            cloudwatch_poll_s=min(15.0, max(1.0, wait_s / 10)),
            log=log,
        )
        result = run_soak(plan)
        stem = report or output_dir / "reports" / f"soak-{result.reports[0].run_id}"
        output.write(stem.with_suffix(".json"), output.soak_json(result))
        output.write_soak_html(stem.with_suffix(".html"), result)
        if json_out:
            sys.stdout.buffer.write(output.soak_json(result))
            sys.stdout.flush()
        else:
            typer.echo(report_text.render_soak(result), nl=False)
        typer.echo(f"report: {stem.with_suffix('.html')} and .json", err=True)
        raise typer.Exit(soak_exit(result))


def _positive(option: str, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise UsageError(f"{option} must be above 0, got {value:g}")
    return value


def soak_exit(result: SoakResult) -> int:
    """3 a stream could not be restored; 1 loss or duplicates; 5 no setting met the targets."""
    if result.restore_problems:
        return EXIT_STREAM_UNUSABLE
    if not all(r.clean for r in result.reports):
        return EXIT_FINDINGS
    return EXIT_OK if result.recommendation.get("setting") else EXIT_CHECK_FAILED
