"""A soak: run a profile, wait for the buffers to flush, audit, and (in AWS) pull CloudWatch.

Local target: the embedded Firehose runs on its own thread with the streams created at the
buffer hints asked for (one run per ``--compare`` setting), and the load is sent to its URL by
the run command's own code. AWS target: the streams must exist; their hints are read with
DescribeDeliveryStream. Either way the wait is the largest IntervalInSeconds plus a margin,
because a buffer opened by the last record is written only when its interval ends.
https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from producer import pipeline
from producer.audit import cloudwatch
from producer.audit.describe import describe_hints
from producer.audit.hints import BufferHints
from producer.audit.local_endpoint import BackgroundLocalFirehose
from producer.audit.runner import AuditReport, AuditRequest, is_opensearch, run_audit
from producer.aws import clients as aws
from producer.errors import EXIT_STREAM_UNUSABLE, StreamUnusable, UsageError
from producer.firehose.client import ClientSettings
from producer.local.server import LocalOptions
from producer.telemetry import cost

# The reference pipeline's hints, used locally when no --compare setting is given.
DEFAULT_HINTS = BufferHints(60.0, 5)
SUMMARY_NAME = "last-soak-summary.json"


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What the soak passes to the run command; the rest are the run command's defaults."""

    profile: str
    duration: str | None
    rate: float | None
    streams: tuple[str, ...]
    seed: int | None
    quiet: bool


# Runs the load once: (options, endpoint URL or None for AWS, region, output dir, summary path)
# -> the run's exit code. The default runs the run command in a process (see run_as_process).
LoadRunner = Callable[[LoadOptions, str | None, str | None, Path, Path], int]


@dataclass(frozen=True, slots=True)
class SoakPlan:
    load: LoadOptions
    output_dir: Path
    variants: tuple[BufferHints, ...] = ()
    aws_region: str | None = None  # None: the embedded local Firehose
    flush_margin_s: float = 10.0
    audit: AuditRequest | None = None  # S3/OpenSearch sources for AWS mode
    log: Callable[[str], None] = print
    run_load: LoadRunner | None = None


def run_as_process(
    load: LoadOptions, endpoint: str | None, region: str | None, out: Path, summary: Path
) -> int:
    """The run command in a process of its own (``python -m producer run``), so its options are
    checked and its RunConfig built in one place, the command line, which nothing outside it
    imports. Returns its exit code. LOADGEN_* variables are not passed on: the soak's options
    are the run's, whatever the environment says."""
    args = ["run", "--profile", load.profile, "--output-dir", str(out), "--summary-json", str(summary)]
    args += ["--no-metrics", *(["--quiet"] if load.quiet else [])]
    if load.rate is not None:
        args += ["--rate", repr(load.rate)]
    if load.duration is not None:
        args += ["--duration", load.duration]
    if load.seed is not None:
        args += ["--seed", str(load.seed)]
    for stream in load.streams:
        args += ["--stream", stream]
    if endpoint is None:
        args += ["--target", "aws"]
    else:
        args += ["--endpoint-url", endpoint]
    if region is not None:
        args += ["--region", region]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")}
    return subprocess.run([sys.executable, "-m", "producer", *args], env=env, check=False).returncode


def _stream_request(name: str, hints: BufferHints) -> dict[str, object]:
    interval = int(hints.interval_s)
    if is_opensearch(name):
        return pipeline.opensearch_stream_request(name, interval, hints.size_mib)
    return pipeline.s3_stream_request(name, interval, hints.size_mib)


def soak_cost(run_cost: dict[str, Any] | None, report: AuditReport) -> dict[str, Any] | None:
    """The run's cost block (producer/telemetry/cost.py) with the S3 objects this buffer
    setting made: shorter intervals and smaller sizes make more objects, and dynamic
    partitioning charges per object (S3 charges per PUT too; not modelled). None when the run
    summary had no cost block."""
    if run_cost is None:
        return None
    objects = {s.stream: int(s.objects.get("count") or 0) for s in report.streams}
    out = dict(run_cost) | {"objects": objects}
    per_object = cost.objects_usd(str(run_cost.get("region", "")), sum(objects.values()))
    if per_object is not None:
        # What these objects would add if the streams partitioned dynamically.
        out["dynamic_partitioning_objects_usd"] = per_object
    return out


def _run_once(plan: SoakPlan, endpoint: str | None, out: Path) -> tuple[str, float, float, int]:
    summary_path = out / "_soak" / SUMMARY_NAME
    summary_path.unlink(missing_ok=True)
    runner = plan.run_load or run_as_process
    started = time.time()
    code = runner(plan.load, endpoint, plan.aws_region, out, summary_path)
    ended = time.time()
    if code == EXIT_STREAM_UNUSABLE or not summary_path.is_file():
        raise StreamUnusable(f"the load run failed (exit {code}); nothing to audit")
    run_id = str(orjson.loads(summary_path.read_bytes())["run_id"])
    return run_id, started, ended, code


def _run_cost(out: Path) -> dict[str, Any] | None:
    """The cost block of the run summary ``_run_once`` left (None if it has none)."""
    found = orjson.loads((out / "_soak" / SUMMARY_NAME).read_bytes()).get("cost")
    return found if isinstance(found, dict) else None


def _wait(plan: SoakPlan, hints: dict[str, BufferHints]) -> None:
    wait_s = max((h.interval_s for h in hints.values()), default=0.0) + plan.flush_margin_s
    plan.log(f"waiting {wait_s:g}s for the buffers to flush (largest interval + {plan.flush_margin_s:g}s)")
    time.sleep(wait_s)


def soak_local(plan: SoakPlan) -> list[AuditReport]:
    reports = []
    variants = plan.variants or (DEFAULT_HINTS,)
    for hints in variants:
        out = (
            plan.output_dir
            if len(variants) == 1
            else plan.output_dir / f"compare-{hints.label().replace('/', '-')}"
        )
        config = out / "_soak" / "streams.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_bytes(orjson.dumps([_stream_request(n, hints) for n in plan.load.streams]))
        options = LocalOptions(output_dir=out, stream_config=config)
        with BackgroundLocalFirehose(options) as local:
            settings = ClientSettings("us-east-1", local.url, allow_local_credentials=True)
            described = asyncio.run(describe_hints(settings, plan.load.streams))
            plan.log(f"local Firehose {local.url}: hints {hints.label()}, output in {out}")
            run_id, _started, _ended, _code = _run_once(plan, local.url, out)
            _wait(plan, described)
            # Audited before the endpoint stops: a stop would flush what a too-short wait left
            # buffered, and hide it.
            request = AuditRequest(run_id=run_id, output_dir=out, hints=described)
            report = asyncio.run(run_audit(request))
        report.label = hints.label()
        report.cost = soak_cost(_run_cost(out), report)
        reports.append(report)
    return reports


def soak_aws(plan: SoakPlan) -> list[AuditReport]:
    if plan.variants:
        raise UsageError(
            "--compare on AWS needs stack parameter updates, which soak does not do yet; "
            "update the stack's buffer parameters and soak once per setting"
        )
    region = plan.aws_region or "us-east-1"
    described = asyncio.run(describe_hints(ClientSettings(region), plan.load.streams))
    run_id, started, _ended, _code = _run_once(plan, None, plan.output_dir)
    _wait(plan, described)
    base = plan.audit or AuditRequest(run_id=run_id, output_dir=plan.output_dir)
    request = replace(base, run_id=run_id, output_dir=plan.output_dir, hints=described)
    report = asyncio.run(run_audit(request))
    report.cost = soak_cost(_run_cost(plan.output_dir), report)
    try:
        report.cloudwatch = asyncio.run(_metrics(region, plan.load.streams, started, time.time()))
    except UsageError as exc:  # metrics are extra: the audit stands without them
        plan.log(f"warning: {exc}")
    return [report]


async def _metrics(
    region: str, streams: Sequence[str], start: float, end: float
) -> dict[str, dict[str, list[list[float]]]]:
    kinds = {name: "opensearch" if is_opensearch(name) else "s3" for name in streams}
    try:
        async with aws.client("cloudwatch", aws.AwsSettings(region)) as cw:
            return await cloudwatch.pull(cw, kinds, start, end)
    except Exception as exc:
        raise aws.explain(exc, "reading CloudWatch metrics") from None
