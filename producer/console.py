"""What a person sees: a live per-stream view while a run goes, and the summary at its end.

On a terminal the live view is a rich table redrawn about once a second. Elsewhere
(containers, CI, pipes) it prints one line every ``log_every_s`` seconds, as text or as JSON
(``--log-format json``) for log collectors.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from producer.config import RunConfig
from producer.durations import format_duration
from producer.summary import RunSummary
from producer.telemetry.cost import cost_line
from producer.telemetry.histogram import LATENCY_ACK, LATENCY_PUT, StreamHistograms
from producer.telemetry.stats import StreamStats

LogFormat = Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class StreamRow:
    name: str
    rate: float
    accepted: int
    retried: int
    throttled: int
    dead_lettered: int
    queued: int
    billed_bytes: int
    p50_s: float | None
    p99_s: float | None


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if value == float("inf") else f"{value * 1000:.0f}ms"


def _mb(n: int) -> str:
    """Billed bytes (each record rounded up to 5 KB: producer/telemetry/cost.py), in MB."""
    return f"{n / 1e6:,.1f}MB"


class LiveView:
    def __init__(
        self,
        stats: Sequence[StreamStats],
        histograms: dict[str, StreamHistograms],
        target_rate: float,
        out: TextIO = sys.stdout,
        log_format: LogFormat = "text",
        interval_s: float = 1.0,
        log_every_s: float = 10.0,
        tty: bool | None = None,
    ) -> None:
        self.stats = stats
        self.histograms = histograms
        self.target_rate = target_rate
        self.out = out
        self.log_format = log_format
        self.interval_s = interval_s
        self.log_every_s = log_every_s
        self.tty = out.isatty() if tty is None else tty
        self._previous = {s.name: (time.monotonic(), s.accepted) for s in stats}
        self._started = time.monotonic()
        # Where the schedule is (control/run.schedule_status plus "generating"), when the run
        # knows: elapsed of total, target now and next, paused; after generation, the drain.
        self.schedule: Callable[[], Mapping[str, Any]] | None = None
        self.keys_hint = ""  # the terminal keys, when they are on (control/keys.py)

    @classmethod
    def for_run(
        cls,
        config: RunConfig,
        stats: Sequence[StreamStats],
        histograms: dict[str, StreamHistograms],
        out: TextIO,
    ) -> LiveView:
        """The live view a run's settings ask for (one process or the workers' sum)."""
        return cls(
            stats,
            histograms,
            config.rate,
            out=out,
            log_format=config.log_format,
            interval_s=config.live_interval_s,
            log_every_s=config.log_every_s,
        )

    def rows(self) -> list[StreamRow]:
        now = time.monotonic()
        rows = []
        for s in self.stats:
            then, accepted = self._previous[s.name]
            rate = (s.accepted - accepted) / max(now - then, 1e-6)
            self._previous[s.name] = (now, s.accepted)
            h = self.histograms[s.name].request_seconds
            rows.append(
                StreamRow(
                    s.name,
                    rate,
                    s.accepted,
                    s.retried_records,
                    s.throttled_records,
                    s.dead_lettered,
                    s.held,
                    s.billed_bytes,
                    h.quantile(0.5),
                    h.quantile(0.99),
                )
            )
        return rows

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def target_now(self) -> float:
        """What the schedule asks for now (a flash sale's base before its spike, 0 paused); the
        run's nominal rate when the schedule is not known."""
        return self.target_rate if self.schedule is None else float(self.schedule()["target_now"])

    def headline(self, rows: Sequence[StreamRow]) -> str:
        """Elapsed of total and the target now and next; once generation is over, the drain's
        ETA (the records held over the rate they are being accepted at)."""
        if self.schedule is None:
            return f"{self.elapsed_s():.0f}s  target {self.target_rate:,.0f} events/s to every stream"
        s = self.schedule()
        when = f"{format_duration(s['elapsed_s'])} of {format_duration(s['duration_s'])}"
        if not s["generating"]:
            held = sum(r.queued for r in rows)
            eta = max((r.queued / r.rate for r in rows if r.queued and r.rate > 0), default=None)
            if not held:
                return f"{when}  generation done, delivering the last records"
            left = (
                "ETA unknown (nothing accepted lately)" if eta is None else f"ETA ~{format_duration(eta + 1)}"
            )
            return f"{when}  draining {held:,} records, {left}"
        if s["paused"]:
            return f"{when}  PAUSED (rate {s['rate']:,.0f} events/s on resume)"
        nxt = s["target_next"]
        ahead = f", next {nxt['rate']:,.0f} in {format_duration(nxt['in_s'])}" if nxt else ""
        return f"{when}  target now {s['target_now']:,.0f} events/s{ahead}"

    def table(self, rows: list[StreamRow]) -> Table:
        hint = f"\n{self.keys_hint}" if self.keys_hint else ""
        table = Table(
            title=f"firehose-loadgen  {self.headline(rows)}{hint}",
            title_justify="left",
        )
        for column in (
            "stream",
            "rate/s",
            "accepted",
            "retried",
            "throttled",
            "dead-lettered",
            "queued",
            "billed",
            "p50",
            "p99",
        ):
            table.add_column(column, justify="left" if column == "stream" else "right")
        for r in rows:
            table.add_row(
                r.name,
                f"{r.rate:,.0f}",
                f"{r.accepted:,}",
                f"{r.retried:,}",
                f"{r.throttled:,}",
                f"{r.dead_lettered:,}",
                f"{r.queued:,}",
                _mb(r.billed_bytes),
                _ms(r.p50_s),
                _ms(r.p99_s),
            )
        return table

    def line(self, rows: list[StreamRow]) -> str:
        if self.log_format == "json":
            return orjson.dumps(
                {
                    "event": "progress",
                    "elapsed_s": round(self.elapsed_s(), 1),
                    "target_rate": self.target_now(),
                    "schedule": None if self.schedule is None else self.headline(rows),
                    "streams": {
                        r.name: {
                            "rate": round(r.rate, 1),
                            "accepted": r.accepted,
                            "retried": r.retried,
                            "throttled": r.throttled,
                            "dead_lettered": r.dead_lettered,
                            "queued": r.queued,
                            "billed_bytes": r.billed_bytes,
                            "p50_s": r.p50_s,
                            "p99_s": r.p99_s,
                        }
                        for r in rows
                    },
                }
            ).decode()
        streams = " | ".join(
            f"{r.name}: {r.rate:,.0f}/s of {self.target_now():,.0f} accepted {r.accepted:,} "
            f"retried {r.retried:,} throttled {r.throttled:,} dead {r.dead_lettered:,} "
            f"billed {_mb(r.billed_bytes)} p99 {_ms(r.p99_s)}"
            for r in rows
        )
        if self.schedule is None:
            return f"[{self.elapsed_s():4.0f}s] {streams}"
        return f"[{self.headline(rows)}] {streams}"

    async def run(self) -> None:
        if self.tty and self.log_format == "text":
            console = Console(file=self.out)
            with Live(self.table(self.rows()), console=console, auto_refresh=False) as live:
                while True:
                    await asyncio.sleep(self.interval_s)
                    live.update(self.table(self.rows()), refresh=True)
        while True:
            await asyncio.sleep(self.log_every_s)
            self.out.write(self.line(self.rows()) + "\n")
            self.out.flush()


SUMMARY_COLUMNS = {  # summary key: column title
    "sent": "sent",
    "accepted": "accepted",
    "dead_lettered": "dead-lettered",
    "retried_records": "retried",
    "throttled_records": "throttled",
    "failed_requests": "failed calls",
}


def print_summary(summary: RunSummary, out: TextIO = sys.stdout, log_format: LogFormat = "text") -> None:
    if log_format == "json":
        out.write(orjson.dumps({"event": "summary", **summary.to_dict()}).decode() + "\n")
        out.flush()
        return
    # Wide enough for stream names and counts even when stdout is not a terminal.
    console = Console(file=out, width=max(140, Console(file=out).width))
    console.print(
        f"run {summary.run_id}: profile {summary.profile}, {summary.events_generated:,} "
        f"events in {summary.duration_s:.1f}s to {summary.target}",
        highlight=False,
    )
    table = Table(show_edge=False)
    table.add_column("stream", no_wrap=True)
    for title in SUMMARY_COLUMNS.values():
        table.add_column(title, justify="right")
    for name, s in summary.streams.items():
        table.add_row(name, *(f"{getattr(s, c):,}" for c in SUMMARY_COLUMNS))
    console.print(table)
    if summary.cost:
        console.print(cost_line(summary.cost), highlight=False, markup=False, soft_wrap=True)
    for name, s in summary.streams.items():
        if s.stopped_reason:
            console.print(f"{name} stopped: {s.stopped_reason}", highlight=False, markup=False)
        if s.dead_lettered_by_reason:
            reasons = ", ".join(f"{k} {v:,}" for k, v in s.dead_lettered_by_reason.items())
            console.print(f"{name} dead-lettered: {reasons}", highlight=False, markup=False)
        if s.lost:
            console.print(
                f"{name} lost: {s.lost:,} records neither accepted nor spooled (books incomplete)",
                highlight=False,
                markup=False,
            )
    for name, s in summary.streams.items():
        if s.latency:
            console.print(f"{name} latency: {latency_line(s.latency)}", highlight=False, markup=False)
    for line in check_lines(summary):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if summary.output_dir:
        console.print(f"delivered objects: {summary.output_dir}", highlight=False, markup=False)
    if summary.dead_letter_path:
        console.print(f"dead-letter spool: {summary.dead_letter_path}", highlight=False, markup=False)
    out.flush()


def check_lines(summary: RunSummary) -> list[str]:
    """The checks' outcomes (and an abort), one line each: ``check EXPR: VALUE ok|FAILED``."""
    lines = []
    if summary.aborted:
        a = summary.aborted
        who = f" in {a['by']}" if a.get("by") else ""
        lines.append(f"stopped early at {a.get('at_s')}s: check {a.get('check')!r} failed{who}")
    for c in summary.checks or []:
        value = c.get("value")
        shown = "no data" if value is None else f"{value:.6g}"
        at = f" at {c['failed_at_s']}s" if c.get("failed_at_s") is not None else ""
        lines.append(f"check {c['expression']}: {shown} {'ok' if c.get('ok') else 'FAILED' + at}")
    return lines


def latency_line(latency: Mapping[str, Any]) -> str:
    """``PutRecordBatch p50 4.1ms p99 10ms max 12ms; offer to acceptance p50 ...`` from a
    stream's latency block (percentiles within the histogram's relative error)."""
    parts = []
    for key, title in ((LATENCY_PUT, "PutRecordBatch"), (LATENCY_ACK, "offer to acceptance")):
        h = latency.get(key) or {}
        if not h.get("count"):
            continue
        shown = " ".join(
            f"{label} {_ms(h.get(field))}"
            for label, field in (("p50", "p50_s"), ("p99", "p99_s"), ("max", "max_s"))
        )
        parts.append(f"{title} {shown}")
    return "; ".join(parts) or "no calls"
