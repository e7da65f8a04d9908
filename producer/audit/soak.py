"""A soak: for each setting, apply it to the live streams, let the old buffers drain, run the
load, wait for the buffers to flush, audit, read CloudWatch; at the end (and on Ctrl-C, SIGTERM
or any failure) put every stream's original configuration back.

One path for every target. AWS (``--target aws``/``--stack``) and any Firehose endpoint
(``--endpoint-url``) are changed with UpdateDestination (audit/apply.py); the local target starts
the embedded Firehose built from the shipped template, exactly as ``run`` does (Lambda, Parquet,
AllDocuments backup), and changes it the same way.

Waits. A record's buffer is written when its interval ends: a record waits up to the Lambda
processor's BufferIntervalInSeconds, then up to the destination's IntervalInSeconds after the
transform (https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html,
https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html). So before a
load the soak waits the old setting's processor + destination interval plus the margin (what an
earlier producer left buffered under the old hints), less the time since its own last load; after
the load, the new setting's processor + destination interval plus the margin.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from producer.audit import apply, cloudwatch, verdict
from producer.audit import settings as vocabulary
from producer.audit.hints import from_description
from producer.audit.local_endpoint import BackgroundLocalFirehose
from producer.audit.local_source import DELIVERY_LOG
from producer.audit.runner import AuditReport, AuditRequest, run_audit
from producer.aws import clients as aws
from producer.errors import EXIT_STREAM_UNUSABLE, LoadgenError, StreamUnusable, UsageError
from producer.firehose.client import ClientSettings, open_client
from producer.local.server import LocalOptions
from producer.telemetry import cost

SUMMARY_NAME = "last-soak-summary.json"
# How long the load's process may take to stop after the soak is interrupted (the run's own
# --shutdown-grace is 10 s by default), before it is killed.
LOAD_STOP_S = 30.0


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
    settings: tuple[vocabulary.Setting, ...] = ()
    region: str = "us-east-1"
    # Where the streams are: an endpoint URL, AWS (aws=True), or neither: the embedded local
    # Firehose built from ``template``.
    endpoint_url: str | None = None
    aws: bool = False
    template: Path | None = None
    flush_margin_s: float = 10.0
    targets: verdict.Targets = field(default_factory=verdict.Targets)
    audit: AuditRequest | None = None  # S3/OpenSearch sources, when not the local output folder
    apply_timeout_s: float = 300.0
    cloudwatch_wait_s: float = 300.0
    cloudwatch_poll_s: float = 15.0
    log: Callable[[str], None] = print
    run_load: LoadRunner | None = None


@dataclass(slots=True)
class SoakResult:
    reports: list[AuditReport]
    settings: list[dict[str, Any]]
    recommendation: dict[str, Any]
    restore_problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "recommendation": self.recommendation,
            "restored": not self.restore_problems,
            "restore_problems": self.restore_problems,
        }


class SoakInterrupted(LoadgenError):
    """Ctrl-C or SIGTERM: the streams were restored; exit 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


def run_as_process(
    load: LoadOptions, endpoint: str | None, region: str | None, out: Path, summary: Path
) -> int:
    """The run command in a process of its own (``python -m producer run``), so its options are
    checked and its RunConfig built in one place, the command line, which nothing outside it
    imports. Returns its exit code. LOADGEN_* variables are not passed on: the soak's options
    are the run's, whatever the environment says. Interrupted, the soak passes SIGINT on (the
    run spools what it cannot send) and waits for it."""
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
    # The run's own summary goes to stderr with the soak's progress: stdout is the soak's report
    # (JSON with --json).
    child = subprocess.Popen([sys.executable, "-m", "producer", *args], env=env, stdout=_stderr())
    try:
        return child.wait()
    except BaseException:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(LOAD_STOP_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise


def _stderr() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by something without a descriptor
        return None


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM raises like Ctrl-C does, so that both reach the restore."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SoakInterrupted(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except KeyboardInterrupt:
        raise SoakInterrupted(signal.SIGINT) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """While restoring: a second Ctrl-C must not leave the streams half restored."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _local_options(plan: SoakPlan) -> LocalOptions:
    """The embedded Firehose ``run`` starts: the shipped template's streams and transform."""
    from producer.local.delivery import STATE_DIR
    from producer.local.template import SHIPPED_TEMPLATE, prepare
    from producer.shipped import shipped_path

    template = plan.template or shipped_path(SHIPPED_TEMPLATE)
    if not template.is_file():
        raise UsageError(f"the pipeline template {template} is missing; pass --template FILE")
    config, transform, _ = prepare(template, [], plan.region, plan.output_dir / STATE_DIR)
    return LocalOptions(
        output_dir=plan.output_dir, region=plan.region, stream_config=config, transform_path=transform
    )


def soak(plan: SoakPlan) -> SoakResult:
    """Every setting in turn (or the streams as they are, without settings); restores always."""
    if plan.aws or plan.endpoint_url:
        return _soak(plan, plan.endpoint_url, fresh=False)
    with BackgroundLocalFirehose(_local_options(plan)) as local:
        plan.log(f"local Firehose {local.url} (the shipped pipeline), output in {plan.output_dir}")
        return _soak(plan, local.url, fresh=True)


def _client_settings(plan: SoakPlan, url: str | None) -> ClientSettings:
    return ClientSettings(plan.region, url, allow_local_credentials=url is not None)


def _describe(plan: SoakPlan, url: str | None) -> dict[str, dict[str, Any]]:
    async def go() -> dict[str, dict[str, Any]]:
        async with open_client(_client_settings(plan, url)) as client:
            return await apply.describe_all(client, plan.load.streams)

    return asyncio.run(go())


def _soak(plan: SoakPlan, url: str | None, fresh: bool) -> SoakResult:
    originals = _describe(plan, url)
    for each in plan.settings:  # every check before the first change
        vocabulary.applies(each, originals)
    if plan.audit is None and not (plan.output_dir / DELIVERY_LOG.parent).is_dir() and not fresh:
        raise UsageError(
            f"nothing to audit the soak with: {plan.output_dir} is not a local Firehose's output folder "
            f"(no {DELIVERY_LOG.parent}); pass the endpoint's output folder as --output-dir, or "
            "--s3-bucket/--opensearch-url"
        )
    touched = sorted({name for each in plan.settings for name in each.params})
    cloudwatch_down: list[str] = []
    reports: list[AuditReport] = []
    entries: list[dict[str, Any]] = []
    last_load_end = None if fresh else -1.0
    restore_problems: list[str] = []
    try:
        with _interruptible():
            todo: tuple[vocabulary.Setting | None, ...] = plan.settings or (None,)
            for number, setting in enumerate(todo, 1):
                before = _describe(plan, url)
                if setting is not None:
                    plan.log(f"setting #{number}: {setting.label}")
                    _apply(plan, url, apply.effective(setting, originals, touched), setting.label)
                last_load_end = _drain(plan, before, last_load_end)
                report, entry, last_load_end = _one(plan, url, setting, f"#{number}", cloudwatch_down)
                reports.append(report)
                entries.append(entry)
    finally:
        if plan.settings:
            with _uninterrupted():
                plan.log("restoring every stream's original configuration")
                restore_problems = _restore(plan, url, originals)
                for line in restore_problems:
                    plan.log(f"error: {line}")
                if not restore_problems:
                    plan.log(f"restored: {', '.join(originals)} are as the soak found them")
    return SoakResult(reports, entries, verdict.recommend(entries), restore_problems)


def _apply(plan: SoakPlan, url: str | None, params: Mapping[str, Mapping[str, float]], label: str) -> None:
    async def go() -> None:
        async with open_client(_client_settings(plan, url)) as client:
            await apply.apply(client, params, label, plan.log, plan.apply_timeout_s)

    asyncio.run(go())


def _restore(plan: SoakPlan, url: str | None, originals: Mapping[str, Mapping[str, Any]]) -> list[str]:
    async def go() -> list[str]:
        async with open_client(_client_settings(plan, url)) as client:
            return await apply.restore(client, originals, plan.log, plan.apply_timeout_s)

    try:
        return asyncio.run(go())
    except LoadgenError as exc:
        return [str(exc)]


def _flush_s(descriptions: Mapping[str, Mapping[str, Any]]) -> float:
    """The longest a record can stay buffered: processor interval + destination interval."""
    longest = 0.0
    for description in descriptions.values():
        values = vocabulary.current(description)
        kind = vocabulary.kind_of(description)
        destination = values["S3BufferIntervalSeconds" if kind == "s3" else "OpenSearchBufferIntervalSeconds"]
        longest = max(longest, destination + values.get("ProcessorBufferIntervalSeconds", 0.0))
    return longest


def _drain(plan: SoakPlan, old: Mapping[str, Mapping[str, Any]], last_load_end: float | None) -> float | None:
    """Wait out what the old setting may still hold: nothing after a fresh start; else its flush
    time plus the margin, less the time since the soak's own last load (already waited)."""
    if last_load_end is None:
        return None
    since = time.monotonic() - last_load_end if last_load_end >= 0 else 0.0
    wait = _flush_s(old) + plan.flush_margin_s - since
    if wait > 0:
        plan.log(f"waiting {wait:g}s for buffers opened under the old setting to drain")
        time.sleep(wait)
    return last_load_end


def _one(
    plan: SoakPlan,
    url: str | None,
    setting: vocabulary.Setting | None,
    label: str,
    cloudwatch_down: list[str],
) -> tuple[AuditReport, dict[str, Any], float]:
    """One load, flush wait, audit and CloudWatch read: the report, its verdict entry, and when
    (time.monotonic) the load ended."""
    summary = plan.output_dir / "_soak" / SUMMARY_NAME
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.unlink(missing_ok=True)
    runner = plan.run_load or run_as_process
    started = time.time()
    code = runner(plan.load, url, plan.region, plan.output_dir, summary)
    ended = time.time()
    load_end = time.monotonic()
    if code == EXIT_STREAM_UNUSABLE or not summary.is_file():
        raise StreamUnusable(f"the load run failed (exit {code}); nothing to audit")
    data = orjson.loads(summary.read_bytes())
    run_id = str(data["run_id"])
    now = _describe(plan, url)
    wait_s = _flush_s(now) + plan.flush_margin_s
    margin = plan.flush_margin_s
    plan.log(f"waiting {wait_s:g}s for the buffers to flush (processor + destination interval + {margin:g}s)")
    time.sleep(wait_s)
    hints = {name: h for name, d in now.items() if (h := from_description(d)) is not None}
    base = plan.audit or AuditRequest(run_id=run_id, output_dir=plan.output_dir)
    request = replace(base, run_id=run_id, output_dir=plan.output_dir, hints=hints)
    # Audited before a local endpoint stops: a stop would flush what a too-short wait left
    # buffered, and hide it.
    report = asyncio.run(run_audit(request))
    report.label = label
    run_cost = data.get("cost") if isinstance(data.get("cost"), dict) else None
    report.cost = soak_cost(run_cost, report)
    figures, note = _cloudwatch(plan, report, now, (started, ended), cloudwatch_down)
    configs = {name: vocabulary.current(d) for name, d in now.items()}
    params = setting.params if setting else {}
    entry = verdict.entry(report, params, configs, plan.region, figures, plan.targets)
    entry["setting"] = setting.label if setting else "as found"
    entry["cloudwatch_note"] = note
    return report, entry, load_end


def soak_cost(run_cost: dict[str, Any] | None, report: AuditReport) -> dict[str, Any] | None:
    """The run's cost block (producer/telemetry/cost.py) with the S3 objects this setting made."""
    if run_cost is None:
        return None
    objects = {s.stream: int(s.objects.get("count") or 0) for s in report.streams}
    out = dict(run_cost) | {"objects": objects}
    per_object = cost.objects_usd(str(run_cost.get("region", "")), sum(objects.values()))
    if per_object is not None:
        # What these objects would add if the streams partitioned dynamically.
        out["dynamic_partitioning_objects_usd"] = per_object
    return out


def _cloudwatch(
    plan: SoakPlan,
    report: AuditReport,
    described: Mapping[str, Mapping[str, Any]],
    window: tuple[float, float],
    down: list[str],
) -> tuple[dict[str, dict[str, float | None]] | None, str | None]:
    """CloudWatch where botocore would read it: AWS, or AWS_ENDPOINT_URL_CLOUDWATCH. Polled until
    the run's last minute is published, at most ``cloudwatch_wait_s``; unreachable or empty is
    one warning line and figures marked missing, never a failed or stalled soak. An unreachable
    CloudWatch is not asked again for the soak's later settings (``down``). Returns each
    stream's figures, and why they are missing."""
    if not plan.aws and not os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH"):
        return None, "not read: no CloudWatch for this target (AWS, or AWS_ENDPOINT_URL_CLOUDWATCH)"
    if down:
        return None, down[0]
    kinds = {name: vocabulary.kind_of(d) for name, d in described.items()}
    series, problem = asyncio.run(
        poll_cloudwatch(plan.region, kinds, *window, plan.cloudwatch_wait_s, plan.cloudwatch_poll_s)
    )
    if series:
        report.cloudwatch = series
    if problem and problem.startswith("unreachable"):
        down.append(f"CloudWatch {problem}")
        plan.log(
            f"warning: CloudWatch {problem}; its figures are marked missing (not asked again in this soak)"
        )
    elif problem:
        plan.log(f"warning: CloudWatch: {problem}; figures missing for {report.label}")
    if not series:
        return None, problem
    return {name: cloudwatch.figures(metrics) for name, metrics in series.items()}, problem


async def poll_cloudwatch(
    region: str, kinds: Mapping[str, str], start: float, end: float, wait_s: float, poll_s: float
) -> tuple[dict[str, dict[str, list[list[float]]]] | None, str | None]:
    """(series, None) once the last minute is in; else what there is and why, by ``wait_s``."""
    deadline = time.monotonic() + wait_s
    series: dict[str, dict[str, list[list[float]]]] | None = None
    problem = "no data"
    while True:
        left = deadline - time.monotonic()
        try:
            settings, call_s = aws.AwsSettings(region), max(1.0, min(10.0, left))
            async with aws.client("cloudwatch", settings, timeout_s=call_s) as cw:
                series = await asyncio.wait_for(cloudwatch.pull(cw, kinds, start, end), max(1.0, left))
            if cloudwatch.published(series, end):
                return series, None
            problem = "the run's last minute was not published"
        except TimeoutError:
            problem = "unreachable (no answer in time)"
        except aws.SDK_ERRORS as exc:
            problem = f"unreachable ({aws.explain(exc, 'GetMetricData')})"
        if time.monotonic() + poll_s > deadline:
            has_data = series and any(any(m.values()) for m in series.values())
            return (series if has_data else None), f"{problem} within {wait_s:g}s"
        await asyncio.sleep(poll_s)
