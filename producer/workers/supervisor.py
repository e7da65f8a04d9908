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
import functools
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import orjson

from producer import pipeline
from producer.app import RunResult, new_run_id
from producer.config import RunConfig, TargetKind
from producer.console import LiveView, print_summary
from producer.control import document
from producer.control.server import add_routes
from producer.control.state import RunControl
from producer.errors import EXIT_USAGE, LoadgenError, UsageError
from producer.local.process import ready_url, serve_command
from producer.local.prune import OutputPruner
from producer.results.store import ABORT_KEY, MARKER_POLL_S, ResultsStore, open_store, publish_shard
from producer.results.url import parse_results_url, shard_name
from producer.schedule import Steering
from producer.summary import RunSummary, run_summary_paths
from producer.telemetry.aggregate import (
    Family,
    Scrape,
    build_aggregate_registry,
    parse_scrape,
    sum_scrapes,
)
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.metrics import MetricsServer, start_metrics
from producer.telemetry.stats import StreamStats
from producer.workers.merge import apply_scrape, combine, exit_code
from producer.workers.plan import WORKERS_RESULTS, Worker, WorkerPlan, spool_path, worker_argv
from producer.workers.steer import SteeredWorkers

SCRAPE_INTERVAL_S = 1.0
POLL_S = 0.2
# Beyond --shutdown-grace after a stop: the workers' own start-up, summary and linger.
STOP_MARGIN_S = 10.0
LOCAL_READY_TIMEOUT_S = 30.0


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
    if config.results_url is None:
        return await _run_workers(plan, run_id, out, None)
    async with open_store(config.results_url, run_id, config.target.region) as store:
        await store.check()
        return await _run_workers(plan, run_id, out, store)


async def _relay_abort(run_store: ResultsStore, workers_store: ResultsStore, shard: str) -> None:
    """An abort marker from a worker goes up to the run's --results-url (so other machines'
    shards stop), and one from there comes down to the workers (so they stop, draining)."""
    try:
        while True:
            await asyncio.sleep(MARKER_POLL_S[run_store.url.scheme])
            here = await workers_store.get(ABORT_KEY)
            if here is not None:
                if not await run_store.exists(ABORT_KEY):
                    marker = orjson.loads(here)
                    # The run's shards are the machines': name this one, the worker is ours.
                    marker = (marker if isinstance(marker, dict) else {}) | {"shard": shard}
                    await run_store.put(ABORT_KEY, orjson.dumps(marker))
                return
            there = await run_store.get(ABORT_KEY)
            if there is not None:
                await workers_store.put(ABORT_KEY, there)
                return
    except (LoadgenError, orjson.JSONDecodeError) as exc:
        print(f"warning: the run-wide abort marker is not relayed: {exc}", file=sys.stderr)


async def _run_workers(plan: WorkerPlan, run_id: str, out: TextIO, store: ResultsStore | None) -> RunResult:
    config = plan.config
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
    relay: asyncio.Task[None] | None = None
    control: RunControl | None = None
    pruner: OutputPruner | None = None
    pruning: asyncio.Task[None] | None = None
    following: asyncio.Task[None] | None = None
    note = ""
    try:
        endpoint = None
        if config.target.kind is TargetKind.LOCAL:
            local, endpoint = await _start_local(config, scratch)
        routes = None
        # The whole run's schedule, for the live view, and what the control steers.
        steered = SteeredWorkers(
            Steering(config.profile.rate_shape, config.rate / config.profile.rate),
            config.duration_s,
            lambda: sup.workers,
            lambda: sup.total,
            config.streams,
            {"run_id": run_id, "profile": config.profile.name, "target": config.target.describe()},
        )
        if config.control or config.control_from:
            control = RunControl(steered, lambda line: print(line, file=sys.stderr, flush=True))
            if config.control:
                routes = functools.partial(add_routes, control=control, token=config.control_token)
        if config.metrics_port is not None:
            metrics, note = await start_metrics(
                build_aggregate_registry(sup.metrics_source),
                config.metrics_host,
                config.metrics_port,
                config.metrics_port_fallback,
                routes,
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
        shard = shard_name(config.shard.index, config.shard.count)
        if store is not None:
            workers_url = parse_results_url(f"file://{scratch / WORKERS_RESULTS}")
            relay = asyncio.create_task(_relay_abort(store, ResultsStore(workers_url, run_id), shard))
        for w in sup.workers:
            await sup.start_worker(w, endpoint)
        if sup.stop.is_set():  # a signal while starting up: the new workers must hear it too
            sup.stop_count = 0
            sup.on_signal(signal.SIGTERM)
        stats = [StreamStats(name, target_rate=config.rate) for name in config.streams]
        histograms = {name: StreamHistograms() for name in config.streams}
        live = LiveView.for_run(config, stats, histograms, out)
        live.schedule = steered.schedule
        deadline = asyncio.create_task(sup.deadline())
        if control is not None and config.control_from:
            following = asyncio.create_task(
                document.follow(
                    config.control_from,
                    control,
                    config.shard.rate_share,
                    config.target.region,
                    config.control_every_s,
                )
            )
        if local is not None and config.keep_output_s is not None:
            pruner = OutputPruner(config.output_dir, config.keep_output_s)
            pruning = asyncio.create_task(pruner.run())
        live_task = None
        if not config.quiet:
            live_task = asyncio.create_task(_live(live, sup, stats, histograms))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            await asyncio.gather(*(sup.watch(w, session) for w in sup.workers))
        for task in (deadline, live_task, pruning, following):
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
        if pruner is not None:
            summary.output_pruned = pruner.summary()
        if control is not None:
            summary.control = control.summary(steered.steering.paused_s(steered.elapsed_s()))
        # The workers' own codes (a usage error, nothing to count) and the merged books.
        code = max(exit_code(sup.workers), summary.exit_code())
        summary.write(run_summary_paths(config.output_dir, run_id, config.summary_json))
        if store is not None:
            summary.shard = {"index": config.shard.index, "count": config.shard.count}
            await publish_shard(
                store, shard, summary.to_dict(), code, [Path(p) for p in summary.dead_letter_paths or []]
            )
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
        return RunResult(summary, code)
    finally:
        if relay is not None:
            relay.cancel()
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
