"""``firehose-loadgen merge``: one run's shards (pods, tasks, processes) into its one summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from producer.checks.expr import parse_checks
from producer.cli import options
from producer.errors import UsageError


def register(app: typer.Typer) -> None:
    @app.command()
    def merge(
        ctx: typer.Context,
        run_id: Annotated[
            str,
            typer.Option(help="The run to merge (the --run-id its shards shared).", envvar="LOADGEN_RUN_ID"),
        ],
        results_url: Annotated[
            str,
            typer.Option(
                help="file://DIR or s3://BUCKET/PREFIX the shards wrote to (their --results-url).",
                envvar="LOADGEN_RESULTS_URL",
            ),
        ],
        expect: Annotated[
            int | None,
            typer.Option(
                help="Shards the run should have; each missing one is named and the exit code is 4. "
                "Default: the --shard-count the shards were started with.",
                show_default=False,
            ),
        ] = None,
        check: Annotated[
            list[str] | None,
            typer.Option(
                help="A check judged on the merged run (repeatable; as run --check, without "
                "for/after/abort, which the shards judge on their own time line). The shards' "
                "own checks are judged too. LOADGEN_CHECK holds several separated by ';'.",
                envvar="LOADGEN_CHECK",
                show_default=False,
            ),
        ] = None,
        output_dir: Annotated[
            Path,
            typer.Option(
                help="The merged summary goes to OUTPUT_DIR/runs/RUN_ID.json, where `audit --run-id` "
                "reads it (for a local Firehose: the folder it delivered to).",
                envvar="LOADGEN_OUTPUT_DIR",
            ),
        ] = Path("loadgen-output"),
        summary_json: options.SummaryJson = None,
        region: options.Region = None,
        log_format: Annotated[
            str,
            typer.Option(help="text, or json: the summary as one JSON object.", envvar="LOADGEN_LOG_FORMAT"),
        ] = "text",
    ) -> None:
        """Merge the shards of one run (their --results-url) into its one summary; exit as a run
        does: 0 ok, 1 dead letters, 4 a shard missing or records unaccounted for, 5 a check failed."""
        from producer.console import print_summary
        from producer.results.combine import MergeRequest, merge_run
        from producer.runtime import run_async
        from producer.workers.plan import check_run_id

        check_run_id(run_id)
        url = options.results_url(results_url)
        if url is None:
            raise UsageError("--results-url must not be empty; use file://DIR or s3://BUCKET/PREFIX")
        if expect is not None:
            options.at_least("--expect", expect)
        if log_format not in ("text", "json"):
            raise UsageError(f"--log-format must be text or json, got {log_format!r}")
        checks = parse_checks(options.semicolon_list(ctx, "check", "LOADGEN_CHECK", check))
        for c in checks:
            if c.live or c.after_s:
                raise UsageError(
                    f"--check {c.text!r}: for/after/abort are judged during the run; pass it to "
                    "`run --check` (merge reports what the shards judged)"
                )
        request = MergeRequest(
            run_id=run_id,
            url=url,
            region=region or "us-east-1",
            output_dir=output_dir,
            expect=expect,
            checks=checks,
            summary_json=summary_json,
        )
        summary = run_async(merge_run(request))
        # sys.stdout as it is now (print_summary's default is bound when console.py is imported).
        print_summary(summary, sys.stdout, "json" if log_format == "json" else "text")
        if log_format == "text" and summary.shards is not None:
            s = summary.shards
            missing = f", missing: {', '.join(map(str, s['missing']))}" if s["missing"] else ""
            typer.echo(f"shards: {len(s['found'])} of {s['expected']}{missing}")
        raise typer.Exit(summary.exit_code())
