"""``bench soak-memory``: does a run's memory stay flat over hours? A steady ``run --duration
forever`` against a ``local serve --discard`` of its own (so the producer is measured alone),
its RSS read from /proc once a minute; the growth from the first minute to the last is the
figure (target: under 5%). SIGTERM ends the run, which must drain and exit 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producer.bench.trials import null_endpoint, status_mb

TARGET_GROWTH = 0.05
SAMPLE_EVERY_S = 60.0


@dataclass
class SoakMemory:
    rate: float
    minutes: int
    samples: list[tuple[float, float]] = field(default_factory=list)  # (minutes, RSS MiB)
    exit_code: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def result(self) -> dict[str, Any]:
        first = self.samples[0][1] if self.samples else 0
        last = self.samples[-1][1] if self.samples else 0
        growth = (last - first) / first if first else 0.0
        streams = self.summary.get("streams", {})
        return {
            "rate": self.rate,
            "minutes": self.minutes,
            "rss_mib_by_minute": {f"{m:g}": round(mib, 1) for m, mib in self.samples},
            "rss_first_minute_mib": round(first, 1),
            "rss_last_minute_mib": round(last, 1),
            "growth": round(growth, 4),
            "target_growth": TARGET_GROWTH,
            "ok": growth < TARGET_GROWTH and self.exit_code == 0,
            "run_exit_code": self.exit_code,
            "events_generated": self.summary.get("events_generated"),
            "balanced": all(s["sent"] == s["accepted"] + s["dead_lettered"] for s in streams.values()),
        }


def soak_memory(rate: float, minutes: int, progress: Any = None) -> dict[str, Any]:
    """Run it; ``progress(line)`` hears each sample."""
    soak = SoakMemory(rate, minutes)
    with tempfile.TemporaryDirectory(prefix="loadgen-soak-memory-") as scratch:
        root = Path(scratch)
        with null_endpoint(root) as url:
            run = subprocess.Popen(
                [
                    sys.executable, "-m", "producer", "run",
                    "--endpoint-url", url,
                    "--rate", f"{rate:g}",
                    "--duration", "forever",
                    "--quiet", "--no-metrics",
                    "--output-dir", str(root / "out"),
                    "--summary-json", str(root / "summary.json"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            started = time.monotonic()
            try:
                for minute in range(1, minutes + 1):
                    time.sleep(max(0.0, started + minute * SAMPLE_EVERY_S - time.monotonic()))
                    mib = status_mb(run.pid, "VmRSS")
                    if mib is None:
                        break  # the run ended: its exit code says why
                    soak.samples.append((minute, mib))
                    if progress is not None:
                        progress(f"minute {minute}: RSS {mib:.1f} MiB")
                run.send_signal(signal.SIGTERM)
                soak.exit_code = run.wait(120)
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait()
        summary_path = root / "summary.json"
        if summary_path.is_file():
            soak.summary = json.loads(summary_path.read_text())
    return soak.result()
