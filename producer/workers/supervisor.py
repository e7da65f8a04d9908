"""``run --workers N|auto``: one machine, all cores, one run.

One Python process generates and encodes up to roughly one core's worth of events, so the
parent starts N producer processes (``python -m producer run`` with ``--shard-index`` and
``--shard-count`` from ``Shard.split``) and does not generate itself. Each worker sends its
exact share of the rate and stamps its shard into event ids and seqs; the parent:

- starts one local Firehose (``local serve``, its own process, so it gets a core of its own
  rather than competing with the supervisor's loop) for the local target, so every worker
  delivers to one endpoint and one output folder; other targets are passed through;
- scrapes every worker's /metrics once a second, shows the sums in the usual live view and
  serves them on the run's own --metrics-port (producer/telemetry/aggregate.py);
- on SIGINT/SIGTERM sends SIGTERM to every worker and waits --shutdown-grace plus a margin,
  then SIGKILLs what is left;
- sums the workers' summaries into the one run summary. A worker that ends without a summary
  is reported on stderr and under ``workers.failed``, its last scraped counters are added and
  the summary says ``"complete": false``, and what it had taken but not settled by its last
  scrape is counted as ``lost`` (per stream, and per worker under ``workers.failed``); the
  exit code is then 4 (the run's books are incomplete), and 3 when no worker left anything
  to count.

Workers run in their own sessions, so a Ctrl-C reaches only the parent, which forwards it in
order: workers first, the local Firehose last, after they have stopped sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import orjson

from producer import pipeline
from producer.app import RunResult, local_buffer_hints, new_run_id
from producer.config import RunConfig, TargetKind
from producer.console import LiveView, print_summary
from producer.errors import EXIT_INCOMPLETE, EXIT_STREAM_UNUSABLE, EXIT_USAGE, UsageError
from producer.local.process import ready_url, serve_command
from producer.sharding import MAX_SHARDS, Shard
from producer.summary import RunSummary, run_summary_paths
from producer.telemetry import cost
from producer.telemetry.aggregate import (
    Family,
    Scrape,
    buckets,
    build_aggregate_registry,
    parse_scrape,
    sum_scrapes,
    value,
)
from producer.telemetry.histogram import Histogram, StreamHistograms
from producer.telemetry.metrics import MetricsServer, start_metrics
from producer.telemetry.stats import StreamStats

_RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # the audit's rule: it names files
SCRAPE_INTERVAL_S = 1.0
POLL_S = 0.2
# A worker keeps /metrics up this long after writing its summary, so the parent's last scrape
# has its final numbers (the summary is written before the linger starts).
WORKER_LINGER_S = 1.0
# Beyond --shutdown-grace after a stop: the workers' own start-up, summary and linger.
STOP_MARGIN_S = 10.0
LOCAL_READY_TIMEOUT_S = 30.0
# Options the parent sets itself for every worker instead of passing the user's value on.
_PARENT_OWNED = {
    "workers",
    "run_id",
    "shard_index",
    "shard_count",
    "quiet",
    "metrics_port",
    "metrics_host",
    "no_metrics",
    "metrics_linger",
    "summary_json",
    "dead_letter",
    "output_dir",
}


def parse_workers(text: str, shard: Shard) -> int:
    """``--workers``: a whole number >= 1, or ``auto`` for one per core."""
    text = text.strip().lower()
    if text == "auto":
        count = os.cpu_count() or 1
    else:
        try:
            count = int(text)
        except ValueError:
            raise UsageError(f"--workers must be a whole number >= 1 or auto, got {text!r}") from None
        if count < 1:
            raise UsageError(f"--workers must be a whole number >= 1 or auto, got {count}")
    if shard.count * count > MAX_SHARDS:
        raise UsageError(f"--workers {count} x --shard-count {shard.count} exceeds {MAX_SHARDS} producers")
    return count


def check_run_id(text: str | None) -> str | None:
    if text is not None and not _RUN_ID.fullmatch(text):
        raise UsageError(f"--run-id {text!r} must be 1-128 letters, digits, or _ . : -")
    return text


def option_args(given: Mapping[str, object]) -> dict[str, list[str]]:
    """``run``'s parameters as resolved (command line, then LOADGEN_* variables), as arguments a
    worker can be given: every option explicit, so the workers need none of the parent's
    LOADGEN_* environment and cannot read one (LOADGEN_WORKERS) that would make them recurse.
    ``run``'s options are all named after their parameter (``max_held`` is ``--max-held``) and
    its flags are on-only (``--quiet``), so the names follow from the parameters."""
    out: dict[str, list[str]] = {}
    for name, v in given.items():
        flag = "--" + name.replace("_", "-")
        if v is None or v is False:
            continue
        if v is True:
            out[name] = [flag]
        elif isinstance(v, list | tuple):
            out[name] = [part for item in v for part in (flag, _text(item))]
        else:
            out[name] = [flag, _text(v)]
    return out


def _text(v: object) -> str:
    if isinstance(v, enum.Enum):
        return str(v.value)
    return repr(v) if isinstance(v, float) else str(v)


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    config: RunConfig  # the parent's: its shard, total rate, targets and outputs
    count: int
    options: Mapping[str, list[str]]  # option_args of the parent's command line


@dataclass(slots=True)
class Worker:
    index: int
    shard: Shard
    port: int
    summary_path: Path
    dead_letter: Path
    log_dir: Path
    proc: asyncio.subprocess.Process | None = None
    scrape: Scrape | None = None
    scraped_at: float = 0.0  # time.time() of ``scrape``
    final: bool = False  # ``scrape`` was taken after the worker wrote its summary
    summary: dict[str, Any] | None = None
    returncode: int | None = None
    ended_at: float = 0.0  # time.time() when it exited

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


def worker_argv(plan: WorkerPlan, worker: Worker, run_id: str, endpoint_url: str | None) -> list[str]:
    drop = set(_PARENT_OWNED)
    if endpoint_url is not None:  # the parent's local Firehose replaces the embedded one
        # ... built from the template by the parent, so the workers name its streams themselves.
        drop |= {"target", "endpoint_url", "template", "param", "stream"}
    args = [part for name, parts in plan.options.items() if name not in drop for part in parts]
    if endpoint_url is not None:
        args += [part for name in plan.config.streams for part in ("--stream", name)]
    args += [
        "--workers", "1",
        "--run-id", run_id,
        "--shard-index", str(worker.shard.index),
        "--shard-count", str(worker.shard.count),
        "--quiet",
        "--metrics-host", "127.0.0.1",
        "--metrics-port", str(worker.port),
        "--metrics-linger", f"{WORKER_LINGER_S}s",
        "--summary-json", str(worker.summary_path),
        "--dead-letter", str(worker.dead_letter),
        # Its own runs/ folder: the run's OUTPUT_DIR/runs/RUN_ID.json is the parent's sum.
        "--output-dir", str(worker.log_dir),
    ]  # fmt: skip
    if endpoint_url is not None:
        args += ["--endpoint-url", endpoint_url]
    return [sys.executable, "-m", "producer", "run", *args]


def spool_path(config: RunConfig, run_id: str, index: int) -> Path:
    """Worker ``index``'s dead-letter spool: RUN_ID.wK.jsonl (or --dead-letter's name + .wK)."""
    if config.dead_letter is not None:
        base = config.dead_letter
        return base.with_name(f"{base.stem}.w{index}{base.suffix or '.jsonl'}")
    return config.output_dir / "dead-letter" / f"{run_id}.w{index}.jsonl"


# ---------------------------------------------------------------------------------------------
# Aggregation (pure; tests/unit/test_workers.py)


def merge(values: Sequence[Any]) -> Any:
    """Sum of summary parts: numbers add, mappings merge key by key, equal strings stay, different
    ones are joined, lists concatenate, None is "nothing to add". Generic on purpose, so a field
    the producer adds to its summary later is summed without a change here."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, bool) for v in present):
        return any(present)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return sum(present)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return round(sum(present), 6)
    if all(isinstance(v, Mapping) for v in present):
        keys: dict[str, None] = {}
        for v in present:
            keys.update(dict.fromkeys(v))
        return {k: merge([v.get(k) for v in present]) for k in keys}
    if all(isinstance(v, list) for v in present):
        return [item for v in present for item in v]
    texts = list(dict.fromkeys(str(v) for v in present))
    return texts[0] if len(texts) == 1 else "; ".join(texts)


# Per-stream counters a scrape can give for a worker that left no summary.
_SCRAPED_OUTCOMES = {
    "sent": "sent",
    "accepted": "accepted",
    "dead_lettered": "dead_lettered",
    "retried_records": "retried",
    "failed_record_attempts": "failed_attempt",
}


def scraped_counts(scrape: Scrape, streams: Sequence[str]) -> dict[str, Any]:
    """A summary-shaped part from a worker's last scrape (for one that died without a summary)."""
    events = scrape.get("loadgen_events_generated")
    generated = int(sum(events.samples.values())) if events else 0
    out: dict[str, Any] = {}
    for name in streams:
        counts = {
            key: int(value(scrape, "loadgen_records", stream=name, outcome=outcome))
            for key, outcome in _SCRAPED_OUTCOMES.items()
        }
        ok = int(value(scrape, "loadgen_put_record_batch_requests", stream=name, result="ok"))
        failed = int(value(scrape, "loadgen_put_record_batch_requests", stream=name, result="error"))
        counts |= {
            "throttled_records": int(value(scrape, "loadgen_throttled_records", stream=name)),
            "possible_duplicates": int(value(scrape, "loadgen_possible_duplicate_records", stream=name)),
            "requests": ok + failed,
            "failed_requests": failed,
            "bytes_sent": int(value(scrape, "loadgen_sent_bytes", stream=name)),
            "billed_bytes": int(value(scrape, "loadgen_billed_bytes", stream=name)),
        }
        # What the worker had taken and not yet settled when it died is nobody's to count now:
        # lost, so that the merged books still add up (sent == accepted + dead_lettered + lost).
        counts["lost"] = counts["sent"] - counts["accepted"] - counts["dead_lettered"]
        out[name] = counts
    # Every event is offered to every stream it is routed to, so the busiest stream's sent is a
    # lower bound when the events counter says less (it is not fed on every path).
    generated = max([generated, *(c["sent"] for c in out.values())])
    return {"events_generated": generated, "streams": out}


def apply_scrape(
    scrape: Scrape, stats: Sequence[StreamStats], histograms: Mapping[str, StreamHistograms]
) -> None:
    """Copy summed scrapes into the StreamStats/histograms the live view reads, so the parent
    reuses LiveView as is."""
    for s in stats:
        part = scraped_counts(scrape, [s.name])["streams"][s.name]
        s.sent, s.accepted, s.dead_lettered = part["sent"], part["accepted"], part["dead_lettered"]
        s.retried_records, s.throttled_records = part["retried_records"], part["throttled_records"]
        s.billed_bytes = part["billed_bytes"]
        s.held = int(value(scrape, "loadgen_stream_queue_records", stream=s.name))
        s.in_flight = int(value(scrape, "loadgen_stream_in_flight_requests", stream=s.name))
        _fill(histograms[s.name].request_seconds, scrape, "loadgen_put_record_batch_duration_seconds", s.name)
        _fill(histograms[s.name].ack_seconds, scrape, "loadgen_ack_latency_seconds", s.name)


def _fill(h: Histogram, scrape: Scrape, family: str, stream: str) -> None:
    counts, total = buckets(scrape, family, stream=stream)
    if len(counts) == len(h.counts):
        h.counts, h.total, h.count = counts, total, sum(counts)


def combine(
    config: RunConfig,
    run_id: str,
    workers: Sequence[Worker],
    elapsed_s: float,
) -> RunSummary:
    """The run summary: the workers' summaries summed, plus the last scrape of any that died."""
    parts: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    spaces: list[dict[str, int]] = []
    for w in workers:
        if w.summary is not None:
            parts.append(w.summary)
            spaces.append(_space(w.shard, int(w.summary.get("events_generated") or 0)))
            continue
        entry: dict[str, Any] = {"index": w.index, "shard": [w.shard.index, w.shard.count]}
        code = w.returncode
        if code is not None and code < 0:
            entry["signal"] = signal.Signals(-code).name
        else:
            entry["exit_code"] = code
        seen = scraped_counts(w.scrape, config.streams) if w.scrape is not None else None
        age = max(0.0, (w.ended_at or time.time()) - w.scraped_at)
        entry["last_seen"] = None if seen is None else seen | {"age_s": round(age, 1)}
        if seen is not None:
            entry["lost"] = {name: c["lost"] for name, c in seen["streams"].items()}
            parts.append({k: seen[k] for k in ("events_generated", "streams")})
            # Lower bound: events after the last scrape may have been delivered as well.
            spaces.append(_space(w.shard, seen["events_generated"]))
        failed.append(entry)
    summary: dict[str, Any] = merge(parts) or {"events_generated": 0, "streams": {}}
    schedule = summary.get("schedule")
    if isinstance(schedule, dict) and schedule.get("target_events"):
        schedule["shortfall_pct"] = round(100.0 * schedule["shortfall_events"] / schedule["target_events"], 2)
    summary["cost"] = _cost(config, summary, [w.summary for w in workers if w.summary is not None], elapsed_s)
    spools = [str(w.dead_letter) for w in workers if w.dead_letter.is_file()]
    head = {
        "run_id": run_id,
        "profile": config.profile.name,
        "target": config.target.describe(),
        "rate": config.rate,
        "duration_s": round(elapsed_s, 3),
    }
    return RunSummary.from_dict(
        head
        | {k: v for k, v in summary.items() if k not in head}
        | {
            "output_dir": str(config.output_dir) if config.target.kind is TargetKind.LOCAL else None,
            "buffer_hints": local_buffer_hints(config),
            "dead_letter_path": spools[0] if len(spools) == 1 else None,
            "dead_letter_paths": spools,
            # Which seqs the run made (generation.py interleaves shards), for the audit.
            "seq_spaces": spaces,
            "complete": not failed,
            "workers": {"count": len(workers), "failed": failed},
        }
    )


def _cost(
    config: RunConfig, summary: dict[str, Any], parts: Sequence[dict[str, Any]], elapsed_s: float
) -> dict[str, Any]:
    """The cost block priced again on the merged counters (summed projections and lists of
    features would not mean anything): the workers generate side by side for the run's
    duration, so their summed bytes over that window is the run's rate."""
    streams: dict[str, Any] = summary.get("streams") or {}
    features: dict[str, cost.Features] = {}
    for part in parts:  # every worker described the same streams: the first to say wins
        for name, s in ((part.get("cost") or {}).get("streams") or {}).items():
            named = set(s.get("features") or ())
            features.setdefault(
                name, cost.Features("format_conversion" in named, "dynamic_partitioning" in named)
            )
    return cost.run_cost(
        config.target.region,
        {name: int(s.get("billed_bytes") or 0) for name, s in streams.items()},
        min(config.duration_s, elapsed_s),
        features,
        sum(int(s.get("bytes_sent") or 0) for s in streams.values()),
    )


def _space(shard: Shard, events: int) -> dict[str, int]:
    return {"offset": shard.index, "stride": shard.count, "events": events}


def exit_code(workers: Sequence[Worker]) -> int:
    """The workers' worst code; a dead worker makes it at least 1, nothing to count makes it 3,
    and all of them refusing their options (exit 2, no summary) is a usage error."""
    if workers and all(w.summary is None and w.returncode == EXIT_USAGE for w in workers):
        return EXIT_USAGE
    if not any(w.summary is not None or w.scrape is not None for w in workers):
        return EXIT_STREAM_UNUSABLE
    codes = [w.returncode or 0 for w in workers if w.summary is not None]
    code = max(codes, default=0)
    if any(w.summary is None for w in workers):
        code = EXIT_INCOMPLETE  # the run's books are incomplete: a worker's records are lost
    return code


# ---------------------------------------------------------------------------------------------
# The supervisor


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies, so a killed supervisor cannot
    leave workers sending load to a real stream (Linux PR_SET_PDEATHSIG; a no-op elsewhere)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _child_env() -> dict[str, str]:
    # Every option is passed explicitly; LOADGEN_* (LOADGEN_WORKERS above all) must not leak in.
    return {
        k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_") and k != "JOB_COMPLETION_INDEX"
    }


@dataclass(slots=True)
class _Supervisor:
    plan: WorkerPlan
    run_id: str
    scratch: Path
    out: TextIO
    workers: list[Worker] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_count: int = 0
    total: Scrape = field(default_factory=dict)

    def on_signal(self, sig: signal.Signals) -> None:
        self.stop_count += 1
        self.stop.set()
        # First signal: a graceful stop (SIGTERM). Another Ctrl-C: the workers' abort (SIGINT twice).
        forward = signal.SIGTERM if self.stop_count == 1 else signal.SIGINT
        if sig is signal.SIGTERM and self.stop_count > 1:
            return
        for w in self.workers:
            if w.proc is not None and w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(forward)

    def metrics_source(self) -> Scrape:
        return self.total | self._worker_states()

    def _worker_states(self) -> Scrape:
        family = Family("loadgen_workers", "Worker processes of this run by state.", "gauge")
        states = dict.fromkeys(("running", "finished", "failed"), 0)
        for w in self.workers:
            if w.returncode is None:
                states["running"] += 1
            else:
                states["finished" if w.summary is not None else "failed"] += 1
        for state, n in states.items():
            family.samples[("loadgen_workers", (("state", state),))] = float(n)
        return {family.name: family}

    def refresh_total(self) -> None:
        self.total = sum_scrapes(w.scrape for w in self.workers if w.scrape is not None)

    async def start_worker(self, w: Worker, endpoint: str | None) -> None:
        w.log_dir.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copies of the log files; the parent's close after the spawn.
        with (w.log_dir / "stdout.log").open("wb") as stdout, (w.log_dir / "stderr.log").open("wb") as stderr:
            w.proc = await asyncio.create_subprocess_exec(
                *worker_argv(self.plan, w, self.run_id, endpoint),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=_child_env(),
                start_new_session=True,  # a terminal's Ctrl-C reaches the parent only; it forwards
                preexec_fn=_die_with_parent,
            )

    async def watch(self, w: Worker, session: aiohttp.ClientSession) -> None:
        """Scrape once a second, once more right after the summary appears, until it exits."""
        assert w.proc is not None
        next_scrape = 0.0
        while True:
            exited = await _wait(w.proc, POLL_S)
            if w.summary is None:
                w.summary = _read_summary(w.summary_path)
            due = time.monotonic() >= next_scrape or (w.summary is not None and not w.final)
            if not exited and not w.final and due:
                was_final = w.summary is not None
                if await self.scrape(w, session):
                    w.final = was_final
                next_scrape = time.monotonic() + SCRAPE_INTERVAL_S
            if exited:
                w.returncode, w.ended_at = w.proc.returncode, time.time()
                return

    async def scrape(self, w: Worker, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(w.url) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return False  # not up yet, or gone: the last good scrape stays
        w.scrape, w.scraped_at = parse_scrape(text), time.time()
        self.refresh_total()
        return True

    async def deadline(self) -> None:
        """After a stop, --shutdown-grace plus a margin; then whoever is left is killed."""
        await self.stop.wait()
        await asyncio.sleep(self.plan.config.shutdown_grace_s + STOP_MARGIN_S)
        for w in self.workers:
            if w.proc is not None and w.proc.returncode is None:
                print(f"error: worker {w.index} did not stop in time; killing it", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()


async def _wait(proc: asyncio.subprocess.Process, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await proc.wait()
    return proc.returncode is not None


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        loaded = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None  # not written yet, or being written
    return loaded if isinstance(loaded, dict) else None


async def _start_local(config: RunConfig, scratch: Path) -> tuple[asyncio.subprocess.Process, str]:
    """``local serve`` with the run's streams, on a free port; its URL from its ready line."""
    # The run's streams as the embedded Firehose would create them: from the template (the
    # shipped one by default), plus the reference request for any other --stream.
    requests: list[dict[str, Any]] = []
    if config.local_stream_config is not None:
        loaded = orjson.loads(config.local_stream_config.read_bytes())
        requests = loaded if isinstance(loaded, list) else [loaded]
    known = {str(r.get("DeliveryStreamName")) for r in requests}
    requests += [pipeline.stream_request(n) for n in config.streams if n not in known]
    streams = scratch / "streams.json"
    streams.write_bytes(orjson.dumps(requests))
    with (scratch / "local-serve.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *serve_command(
                streams, config.output_dir, config.target.region, transform=config.local_transform
            ),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=_child_env(),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), LOCAL_READY_TIMEOUT_S)
    except TimeoutError:
        line = b""
    url = ready_url(line)
    if url is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        detail = (scratch / "local-serve.log").read_text(errors="replace").strip().splitlines()
        raise UsageError(
            f"the local Firehose for the workers did not start: {detail[-1] if detail else line!r}"
        )
    return proc, url


async def _stop_local(proc: asyncio.subprocess.Process) -> None:
    # SIGTERM: it delivers everything it buffered before exiting (local_commands._serve).
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    if proc.stdout is not None:
        with contextlib.suppress(Exception):
            await proc.stdout.read()
    await proc.wait()


def _forward_worker_errors(workers: Sequence[Worker]) -> None:
    """The workers' stderr lines, each distinct line once with the workers that said it."""
    said: dict[str, list[int]] = {}
    for w in workers:
        path = w.log_dir / "stderr.log"
        text = path.read_text(errors="replace") if path.is_file() else ""
        for line in text.splitlines():
            if line.strip():
                said.setdefault(line, []).append(w.index)
    for line, who in said.items():
        print(f"[worker {','.join(map(str, who))}] {line}", file=sys.stderr)


def _usage_line(workers: Sequence[Worker]) -> str:
    for w in workers:
        path = w.log_dir / "stderr.log"
        for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
            if line.startswith("error: "):
                return line.removeprefix("error: ")
    return "the workers refused their options (exit 2)"


def _report_failures(summary: RunSummary) -> None:
    for f in (summary.workers or {}).get("failed", []):
        how = f"signal {f['signal']}" if "signal" in f else f"exit code {f['exit_code']}"
        seen = f["last_seen"]
        counted = (
            f"its last counters ({seen['events_generated']:,} events, {seen['age_s']}s old) are counted"
            if seen
            else "nothing of it could be counted"
        )
        print(
            f"error: worker {f['index']} (shard {f['shard'][0]}/{f['shard'][1]}) ended with {how} "
            f"and no summary; {counted}; the run's totals are incomplete",
            file=sys.stderr,
        )


async def run_workers(plan: WorkerPlan, out: TextIO = sys.stdout) -> RunResult:
    config = plan.config
    run_id = config.run_id or new_run_id()
    scratch = Path(tempfile.mkdtemp(prefix=f"loadgen-{run_id}-"))
    sup = _Supervisor(plan, run_id, scratch, out)
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, sup.on_signal, sig)
            installed.append(sig)
    local: asyncio.subprocess.Process | None = None
    metrics: MetricsServer | None = None
    note = ""
    try:
        endpoint = None
        if config.target.kind is TargetKind.LOCAL:
            local, endpoint = await _start_local(config, scratch)
        if config.metrics_port is not None:
            metrics, note = await start_metrics(
                build_aggregate_registry(sup.metrics_source),
                config.metrics_host,
                config.metrics_port,
                config.metrics_port_fallback,
            )
        sup.workers = [
            Worker(
                index=k,
                shard=shard,
                port=_free_port(),
                summary_path=scratch / f"w{k}" / "summary.json",
                dead_letter=spool_path(config, run_id, k),
                log_dir=scratch / f"w{k}",
            )
            for k, shard in enumerate(config.shard.split(plan.count))
        ]
        if note and config.quiet and metrics is not None:
            out.write(f"metrics: {metrics.url}{note}\n")
        if not config.quiet:
            url = metrics.url if metrics is not None else None
            if config.log_format == "json":
                head = {"event": "workers", "run_id": run_id, "workers": plan.count, "metrics": url}
                out.write(orjson.dumps(head | {"rate": config.rate}).decode() + "\n")
            else:
                where = f"; metrics: {url}{note}" if url else ""
                out.write(f"run {run_id}: {plan.count} workers, {config.rate:g} events/s in all{where}\n")
            out.flush()
        started = time.monotonic()
        for w in sup.workers:
            await sup.start_worker(w, endpoint)
        if sup.stop.is_set():  # a signal while starting up: the new workers must hear it too
            sup.stop_count = 0
            sup.on_signal(signal.SIGTERM)
        stats = [StreamStats(name, target_rate=config.rate) for name in config.streams]
        histograms = {name: StreamHistograms() for name in config.streams}
        live = LiveView.for_run(config, stats, histograms, out)
        deadline = asyncio.create_task(sup.deadline())
        live_task = None
        if not config.quiet:
            live_task = asyncio.create_task(_live(live, sup, stats, histograms))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            await asyncio.gather(*(sup.watch(w, session) for w in sup.workers))
        for task in (deadline, live_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if local is not None:
            await _stop_local(local)
            local = None
        if exit_code(sup.workers) == EXIT_USAGE:
            # Every worker refused the same options or endpoint: that one line, not a summary.
            raise UsageError(_usage_line(sup.workers))
        summary = combine(config, run_id, sup.workers, time.monotonic() - started)
        summary.write(run_summary_paths(config.output_dir, run_id, config.summary_json))
        print_summary(summary, out, config.log_format)
        if config.log_format == "text":
            failed = len(summary.workers["failed"]) if summary.workers else 0
            out.write(
                f"workers: {plan.count}" + (f", {failed} failed (totals incomplete)" if failed else "") + "\n"
            )
            spools = summary.dead_letter_paths or []
            for path in spools if len(spools) > 1 else []:
                out.write(f"dead-letter spool: {path}\n")
            out.flush()
        _forward_worker_errors(sup.workers)
        _report_failures(summary)
        if metrics is not None and config.metrics_linger_s > 0:
            await asyncio.sleep(config.metrics_linger_s)
        # The workers' own codes (a usage error, nothing to count) and the merged books.
        return RunResult(summary, max(exit_code(sup.workers), summary.exit_code()))
    finally:
        for w in sup.workers:
            if w.proc is not None and w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()
        if local is not None:
            await _stop_local(local)
        if metrics is not None:
            await metrics.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
        shutil.rmtree(scratch, ignore_errors=True)


async def _live(
    live: LiveView, sup: _Supervisor, stats: list[StreamStats], histograms: dict[str, StreamHistograms]
) -> None:
    """The usual live view over the summed scrapes: copy them in just before each redraw."""

    async def copy() -> None:
        while True:
            apply_scrape(sup.total, stats, histograms)
            await asyncio.sleep(SCRAPE_INTERVAL_S / 2)

    copier = asyncio.create_task(copy())
    try:
        await live.run()
    finally:
        copier.cancel()
