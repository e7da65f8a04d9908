"""`firehose-loadgen audit` and `firehose-loadgen soak`: options in, producer/audit/ does the work."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from producer import pipeline
from producer.audit import hints as buffer_hints
from producer.audit import output, report_text
from producer.audit.describe import local_run_hints
from producer.audit.runinfo import load_run
from producer.audit.runner import AuditReport, AuditRequest, run_audit
from producer.audit.soak import LoadOptions, SoakPlan, soak_aws, soak_local
from producer.aws.clients import AwsSettings
from producer.cli import options
from producer.errors import EXIT_DEAD_LETTERED, EXIT_OK, UsageError

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
        compare: Annotated[
            list[str] | None,
            typer.Option(
                help="Buffer hints INTERVAL/SIZE_MIB (like 2s/1); repeat to run the same load at each "
                "and compare. Local target only. Default: the reference 60s/5."
            ),
        ] = None,
        target: Annotated[str, typer.Option(help="local (embedded Firehose) or aws.")] = "local",
        region: Region = None,
        output_dir: OutputDir = Path("loadgen-output"),
        flush_margin: Annotated[
            str, typer.Option(help="Wait this much past the largest buffer interval.")
        ] = "10s",
        seed: Annotated[
            int | None, typer.Option(help="Seed, so every --compare run sends the same events.")
        ] = None,
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
        """Run a profile, wait for the buffers to flush, audit, and write the report."""
        if target not in ("local", "aws"):
            raise UsageError(f"--target must be local or aws, got {target!r}")
        margin_s = options.duration("--flush-margin", flush_margin)
        try:
            variants = tuple(buffer_hints.parse(text) for text in compare or [])
        except ValueError as exc:
            raise UsageError(f"soak: {exc}") from None
        load = LoadOptions(
            profile=profile,
            duration=duration,
            rate=rate,
            streams=tuple(stream) if stream else pipeline.DEFAULT_STREAMS,
            seed=seed if seed is not None else (0 if len(variants) > 1 else None),
            quiet=quiet,
        )

        def log(line: str) -> None:
            typer.echo(line, err=True)

        if target == "aws":
            if not region:
                raise UsageError("--target aws needs a region: pass --region or set AWS_REGION")
            plan = SoakPlan(
                load,
                output_dir,
                variants,
                region,
                margin_s,
                log=log,
                audit=AuditRequest(
                    run_id="",
                    output_dir=output_dir,
                    s3_bucket=s3_bucket,
                    s3_prefix=s3_prefix,
                    aws=AwsSettings(region),
                    opensearch_url=options.endpoint_url(opensearch_url, "--opensearch-url"),
                    opensearch_index=opensearch_index,
                ),
            )
            reports = soak_aws(plan)
        else:
            reports = soak_local(SoakPlan(load, output_dir, variants, None, margin_s, log=log))
        stem = report or output_dir / "reports" / f"soak-{reports[0].run_id}"
        output.write(stem.with_suffix(".json"), output.as_json(reports))
        output.write_html(stem.with_suffix(".html"), reports)
        code = _emit(reports, json_out, None)
        typer.echo(f"report: {stem.with_suffix('.html')} and .json", err=True)
        raise typer.Exit(code)
