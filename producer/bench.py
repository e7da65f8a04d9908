"""`firehose-loadgen bench`: the producer end to end against a null Firehose, measured from outside.

Each trial is a separate producer process sending to both reference streams of a discard-mode
local Firehose (its own process: `local serve --discard`). The benchmark reads the producer's
own /metrics once a second: records accepted, events generated and process CPU (user+sys, from
the process collector) over the window after the warm-up; peak RSS from /proc/PID/status
(VmHWM); PutRecordBatch p99 from the latency histogram. Trials of firehose-loadgen and of the
reference producer (bench_reference.py) alternate, and medians are reported, because this is a
noisy shared machine: a ratio measured side by side means more than any single number.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from producer import pipeline
from producer.errors import UsageError
from producer.local.process import ready_url, serve_command

STREAMS = list(pipeline.DEFAULT_STREAMS)


@dataclass(frozen=True, slots=True)
class Scrape:
    at: float
    accepted: float
    events: float
    cpu_s: float
    put_buckets: dict[float, float]


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
    windows: list[float] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> Scrape | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    accepted = events = cpu = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "loadgen_records_total" and sample.labels.get("outcome") == "accepted":
                accepted += sample.value
            elif sample.name == "loadgen_events_generated_total":
                events += sample.value
            elif sample.name == "process_cpu_seconds_total":
                cpu = sample.value
            elif sample.name == "loadgen_put_record_batch_duration_seconds_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return Scrape(time.monotonic(), accepted, events, cpu, buckets)


def _peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


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
    if kind == "reference":
        return [sys.executable, "-m", "producer", "bench", "reference", *common]
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
            scrape = _scrape(port)
            if scrape is not None and scrape.accepted > 0:
                first_record = scrape.at
            else:
                time.sleep(0.02)
        time.sleep(warmup_s)
        first = _scrape(port)
        scrapes = [first]
        while time.monotonic() - first_record < warmup_s + measure_s:
            time.sleep(1.0)
            scrapes.append(_scrape(port))
        peak = _peak_rss_mb(proc.pid)
        # Measured: stop it. Above its capacity a producer would otherwise keep catching up on
        # the schedule's backlog (the pacer is open loop) long after the window.
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    measured = [s for s in scrapes if s is not None]
    a, b = measured[0], measured[-1]
    span = b.at - a.at
    records = b.accepted - a.accepted
    windows = [(y.events - x.events) / (y.at - x.at) for x, y in itertools.pairwise(measured)]
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
        windows=windows,
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
                trials.append(run_trial("reference", url, rate, warmup_s, measure_s, Path(tmp)))
    kinds = ["loadgen", "reference"] if compare else ["loadgen"]
    medians = {
        kind: {
            name: _median([t for t in trials if t.kind == kind], name)
            for name in (
                "events_per_s",
                "records_per_s",
                "cpu_us_per_record",
                "peak_rss_mb",
                "p99_put_s",
                "startup_s",
                "achieved_vs_target",
                "window_max_deviation",
            )
        }
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
        ours, theirs = medians["loadgen"]["events_per_s"], medians["reference"]["events_per_s"]
        result["ratio_events_per_s"] = ours / theirs
    return result
