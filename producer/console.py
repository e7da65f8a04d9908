"""The live line while a run goes, and the per-stream summary at its end."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from producer.stats import StreamStats


def _fmt_latency(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}ms"


class LiveView:
    """One status line a second. On a terminal it rewrites itself; elsewhere (containers, CI)
    it prints a line every ``log_every_s`` seconds."""

    def __init__(
        self,
        stats: Sequence[StreamStats],
        target_rate: float,
        out: TextIO = sys.stdout,
        interval_s: float = 1.0,
        log_every_s: float = 5.0,
    ) -> None:
        self.stats = stats
        self.target_rate = target_rate
        self.out = out
        self.interval_s = interval_s
        self.tty = out.isatty()
        self.log_every_s = log_every_s
        self._last_accepted = {s.name: 0 for s in stats}
        self._last_time = time.monotonic()
        self._started = self._last_time
        self._last_print = 0.0

    def line(self) -> str:
        now = time.monotonic()
        dt = max(now - self._last_time, 1e-6)
        parts = []
        for s in self.stats:
            rate = (s.accepted - self._last_accepted[s.name]) / dt
            self._last_accepted[s.name] = s.accepted
            parts.append(
                f"{s.name}: {rate:,.0f}/s of {self.target_rate:,.0f} accepted {s.accepted:,} "
                f"retried {s.retried_records:,} throttled {s.throttled_records:,} "
                f"dead {s.dead_lettered:,} p99 {_fmt_latency(s.latency_quantile(0.99))}"
            )
        self._last_time = now
        return f"[{now - self._started:4.0f}s] " + " | ".join(parts)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            text = self.line()
            if self.tty:
                self.out.write("\r\x1b[2K" + text)
                self.out.flush()
            elif time.monotonic() - self._last_print >= self.log_every_s:
                self._last_print = time.monotonic()
                self.out.write(text + "\n")
                self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def print_summary(summary: dict[str, Any], out: TextIO = sys.stdout) -> None:
    streams: dict[str, dict[str, Any]] = summary["streams"]
    width = max([len("stream"), *map(len, streams)])
    columns = [
        "sent",
        "accepted",
        "dead_lettered",
        "retried_records",
        "throttled_records",
        "failed_requests",
    ]
    out.write(
        f"run {summary['run_id']}: profile {summary['profile']}, {summary['events_generated']:,} "
        f"events in {summary['duration_s']:.1f}s to {summary['target']}\n"
    )
    header = f"{'stream':<{width}}  " + "  ".join(f"{c:>17}" for c in columns)
    out.write(header + "\n")
    for name, s in streams.items():
        out.write(f"{name:<{width}}  " + "  ".join(f"{s[c]:>17,}" for c in columns) + "\n")
        if s.get("stopped_reason"):
            out.write(f"  stopped: {s['stopped_reason']}\n")
        if s.get("dead_lettered_by_reason"):
            reasons = ", ".join(f"{k} {v:,}" for k, v in s["dead_lettered_by_reason"].items())
            out.write(f"  dead-lettered: {reasons}\n")
    if summary.get("output_dir"):
        out.write(f"delivered objects: {summary['output_dir']}\n")
    if summary.get("dead_letter_path"):
        out.write(f"dead-letter spool: {summary['dead_letter_path']}\n")
    out.flush()
