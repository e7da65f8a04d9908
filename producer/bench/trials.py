"""`firehose-loadgen bench`: the producer end to end against a null Firehose, measured from outside.

Each trial is a separate producer process sending to both reference streams of a discard-mode
local Firehose (its own process: `local serve --discard`). The benchmark reads the producer's
own /metrics once a second: records accepted, events generated and process CPU (user+sys, from
the process collector) over the window after the warm-up; RSS from /proc/PID/status at each
scrape (VmRSS, for its growth over the window) and at the end (VmHWM, the peak); PutRecordBatch
p99 from the latency histogram. Rates divide by the producer's own clock (loadgen_clock_seconds,
read with the counters), not by when the scrapes arrived: a busy producer answers /metrics late
by varying amounts, which made steady one-second windows look a few percent off.

Trials of firehose-loadgen and of the two reference producers alternate, and medians are
reported, because this is a noisy shared machine: a ratio measured side by side means more than
any single number. "reference" (bench_handwritten.py) is the hand-written Faker-pools producer
issue 10 sets its target against; "stock-client" (bench_reference.py) is firehose-loadgen's
generators on the same hand-written delivery loop, which isolates the delivery path.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from producer import pipeline
from producer.errors import UsageError
from producer.local.process import ready_url, serve_command
from producer.telemetry.aggregate import exposition_samples

STREAMS = list(pipeline.DEFAULT_STREAMS)
REFERENCES = ("reference", "stock-client")
MEDIANS = (
    "events_per_s",
    "records_per_s",
    "cpu_us_per_record",
    "peak_rss_mb",
    "rss_growth",
    "p99_put_s",
    "startup_s",
    "achieved_vs_target",
    "window_max_deviation",
)


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float  # the benchmark's monotonic clock when the answer arrived
    clock: float | None  # the producer's loadgen_clock_seconds; None if it does not export one
    accepted: float
    events: float
    cpu_s: float
    rss_mb: float | None  # VmRSS right after the scrape
    put_buckets: dict[float, float] = field(default_factory=dict)


@dataclass(slots=True)
class Trial:
    kind: str
    events_per_s: float
    records_per_s: float
    cpu_us_per_record: float
    peak_rss_mb: float
    p99_put_s: float | None
    startup_s: float
    target_rate: float
    achieved_vs_target: float
    window_max_deviation: float
    rss_growth: float
    window_clock: str  # "producer" (loadgen_clock_seconds) or "scraper" (arrival times)
    windows: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int, pid: int) -> Scrape | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    at = time.monotonic()
    rss = status_mb(pid, "VmRSS")
    clock: float | None = None
    accepted = events = cpu = 0.0
    buckets: dict[float, float] = {}
    for sample in exposition_samples(text):
        if sample.name == "loadgen_clock_seconds":
            clock = sample.value
        elif sample.name == "loadgen_records_total" and sample.labels.get("outcome") == "accepted":
            accepted += sample.value
        elif sample.name == "loadgen_events_generated_total":
            events += sample.value
        elif sample.name == "process_cpu_seconds_total":
            cpu = sample.value
        elif sample.name == "loadgen_put_record_batch_duration_seconds_bucket":
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + sample.value
    return Scrape(at, clock, accepted, events, cpu, rss, buckets)


def status_mb(pid: int, key: str) -> float | None:
    """A memory line of /proc/PID/status (VmRSS, VmHWM) in MB; None once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    return None


def elapsed(a: Scrape, b: Scrape) -> float:
    """Seconds from scrape ``a`` to ``b`` on the producer's clock, or on the benchmark's when
    the producer does not export one."""
    if a.clock is not None and b.clock is not None:
        return b.clock - a.clock
    return b.at - a.at


def window_rates(scrapes: Sequence[Scrape]) -> list[float]:
    """Events/s between consecutive scrapes."""
    return [
        (y.events - x.events) / span for x, y in itertools.pairwise(scrapes) if (span := elapsed(x, y)) > 0
    ]


def rss_growth(samples_mb: Sequence[float]) -> float:
    """Median RSS over the last tenth of the samples against the first tenth, minus 1 (0.05:
    grew 5%). Medians, so one sample taken mid-collection does not decide it."""
    if not samples_mb:
        return math.nan
    k = max(1, len(samples_mb) // 10)
    first = statistics.median(samples_mb[:k])
    return statistics.median(samples_mb[-k:]) / first - 1 if first > 0 else math.nan


def _p99(first: Scrape, last: Scrape) -> float | None:
    bounds = sorted(last.put_buckets)
    counts = [last.put_buckets[b] - first.put_buckets.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = 0.99 * counts[-1]
    return next((b for b, c in zip(bounds, counts, strict=True) if c >= rank), None)


@contextlib.contextmanager
def null_endpoint(workdir: Path) -> Iterator[str]:
    """A discard-mode local Firehose in its own process, with both reference streams."""
    config = workdir / "streams.json"
    config.write_text(json.dumps([pipeline.stream_request(name) for name in STREAMS]))
    proc = subprocess.Popen(
        serve_command(config, workdir / "null-output", discard=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ready_url(proc.stdout.readline())
        if url is None:
            raise UsageError("the null Firehose endpoint did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _command(
    kind: str, url: str, rate: float, seconds: float, port: int, workdir: Path, sender: str
) -> list[str]:
    common = [
        "--endpoint-url",
        url,
        "--rate",
        f"{rate:g}",
        "--duration",
        f"{seconds:g}s",
        "--metrics-port",
        str(port),
        "--metrics-linger",
        "3s",
    ]
    if kind in REFERENCES:
        return [sys.executable, "-m", "producer", "bench", "reference", "--kind", kind, *common]
    return [
        sys.executable,
        "-m",
        "producer",
        "run",
        *common,
        "--quiet",
        "--sender",
        sender,
        "--output-dir",
        str(workdir / "producer"),
    ]


def run_trial(
    kind: str, url: str, rate: float, warmup_s: float, measure_s: float, workdir: Path, sender: str = "lean"
) -> Trial:
    port = _free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        _command(kind, url, rate, warmup_s + measure_s + 1, port, workdir, sender),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOADGEN_METRICS_HOST": "127.0.0.1"},
    )
    try:
        first_record = None
        while first_record is None:
            if proc.poll() is not None:
                tail = (proc.stderr.read() if proc.stderr else "")[-300:]
                raise UsageError(f"{kind} producer exited early: {tail}")
            scrape = _scrape(port, proc.pid)
            if scrape is not None and scrape.accepted > 0:
                first_record = scrape.at
            else:
                time.sleep(0.02)
        time.sleep(warmup_s)
        scrapes = [_scrape(port, proc.pid)]
        while time.monotonic() - first_record < warmup_s + measure_s:
            time.sleep(1.0)
            scrapes.append(_scrape(port, proc.pid))
        peak = status_mb(proc.pid, "VmHWM") or 0.0
        # Measured: stop it. Above its capacity a producer would otherwise keep catching up on
        # the schedule's backlog (the pacer is open loop) long after the window.
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    measured = [s for s in scrapes if s is not None]
    if len(measured) < 2:
        raise UsageError(f"{kind} producer: fewer than two scrapes in the measured window")
    a, b = measured[0], measured[-1]
    span = elapsed(a, b)
    records = b.accepted - a.accepted
    windows = window_rates(measured)
    rss = [s.rss_mb for s in measured if s.rss_mb is not None]
    events_per_s = (b.events - a.events) / span
    return Trial(
        kind=kind,
        events_per_s=events_per_s,
        records_per_s=records / span,
        cpu_us_per_record=(b.cpu_s - a.cpu_s) / records * 1e6 if records else float("inf"),
        peak_rss_mb=peak,
        p99_put_s=_p99(a, b),
        startup_s=first_record - started,
        target_rate=rate,
        achieved_vs_target=events_per_s / rate,
        window_max_deviation=max((abs(w / rate - 1) for w in windows), default=0.0),
        rss_growth=rss_growth(rss),
        window_clock="producer" if all(s.clock is not None for s in measured) else "scraper",
        windows=windows,
        rss_mb=rss,
    )


def _median(trials: list[Trial], name: str) -> float:
    values = [getattr(t, name) for t in trials if getattr(t, name) is not None]
    return statistics.median(values) if values else float("nan")


def benchmark(
    rate: float, warmup_s: float, measure_s: float, repeat: int, compare: bool, sender: str
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="loadgen-bench-") as tmp, null_endpoint(Path(tmp)) as url:
        trials: list[Trial] = []
        for _ in range(repeat):
            trials.append(run_trial("loadgen", url, rate, warmup_s, measure_s, Path(tmp), sender))
            if compare:
                for kind in REFERENCES:
                    trials.append(run_trial(kind, url, rate, warmup_s, measure_s, Path(tmp)))
    kinds = ["loadgen", *REFERENCES] if compare else ["loadgen"]
    medians = {
        kind: {name: _median([t for t in trials if t.kind == kind], name) for name in MEDIANS}
        for kind in kinds
    }
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "rate": rate,
            "warmup_s": warmup_s,
            "measure_s": measure_s,
            "repeat": repeat,
            "sender": sender,
            "streams": STREAMS,
        },
        "medians": medians,
        "trials": [asdict(t) for t in trials],
    }
    if compare:
        ours = medians["loadgen"]["events_per_s"]
        result["ratio_events_per_s"] = ours / medians["reference"]["events_per_s"]
        result["ratio_vs_stock_client_events_per_s"] = ours / medians["stock-client"]["events_per_s"]
    return result
