"""The figures a check reads, at one moment of a run (live) or at its end (the summary), and
every metric of expr.METRICS computed from them.

Figures subtract: ``now.minus(then)`` holds what happened between the two (counters and
latency buckets), which is how a ``for`` window and an ``after`` ramp are judged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from producer.checks.expr import Check
from producer.telemetry.histogram import LATENCY_ACK, LATENCY_PUT, LogHistogram, StreamHistograms
from producer.telemetry.stats import COUNTS, StreamStats

# Every counter of a stream's books (telemetry/stats.Books, declared once there): the summary
# keys and StreamStats fields the metrics read.
COUNTERS = tuple(c.name for c in COUNTS)


@dataclass(frozen=True, slots=True)
class StreamFigures:
    counts: dict[str, int]
    put: LogHistogram
    ack: LogHistogram

    @classmethod
    def of_summary(cls, stream: Mapping[str, Any]) -> StreamFigures:
        """From a StreamSummary's dict (its ``latency`` block included)."""
        latency = stream.get("latency") or {}
        return cls(
            {k: int(stream.get(k) or 0) for k in COUNTERS},
            LogHistogram.from_dict(latency.get(LATENCY_PUT) or {}),
            LogHistogram.from_dict(latency.get(LATENCY_ACK) or {}),
        )

    @classmethod
    def of_stats(cls, stats: StreamStats, histograms: StreamHistograms) -> StreamFigures:
        """A copy of the live counters and latency buckets."""
        put, ack = histograms.request_seconds.fine, histograms.ack_seconds.fine
        return cls(
            {k: int(getattr(stats, k)) for k in COUNTERS},
            put.copy() if put is not None else LogHistogram(),
            ack.copy() if ack is not None else LogHistogram(),
        )

    def minus(self, earlier: StreamFigures) -> StreamFigures:
        return StreamFigures(
            {k: v - earlier.counts.get(k, 0) for k, v in self.counts.items()},
            self.put.minus(earlier.put),
            self.ack.minus(earlier.ack),
        )


@dataclass(frozen=True, slots=True)
class Figures:
    at_s: float  # seconds since generation started
    asked: float  # events the schedule asked for by then (each stream's records, unpacked)
    streams: dict[str, StreamFigures]
    shortfall: float | None = None  # at the end only
    cost_per_hour: float | None = None  # at the end only

    @classmethod
    def of_summary(cls, summary: Mapping[str, Any]) -> Figures:
        """From a run summary's JSON form (RunSummary.to_dict)."""
        schedule = summary.get("schedule") or {}
        target = float(schedule.get("target_events") or 0)
        shortfall = float(schedule.get("shortfall_events") or 0) / target if target else None
        cost = (summary.get("cost") or {}).get("per_hour_usd")
        return cls(
            at_s=float(summary.get("duration_s") or 0.0),
            asked=target,
            streams={name: StreamFigures.of_summary(s) for name, s in (summary.get("streams") or {}).items()},
            shortfall=shortfall,
            cost_per_hour=None if cost is None else float(cost),
        )

    def minus(self, earlier: Figures) -> Figures:
        return dataclasses.replace(
            self,
            at_s=self.at_s - earlier.at_s,
            asked=self.asked - earlier.asked,
            streams={
                name: s.minus(earlier.streams[name]) if name in earlier.streams else s
                for name, s in self.streams.items()
            },
        )

    def value(self, check: Check) -> float | None:
        """The check's metric over these figures; None when there is nothing to judge (no records
        sent, no call made yet)."""
        chosen = [self.streams[check.stream]] if check.stream else list(self.streams.values())
        return metric_value(check.metric, chosen, self)


def metric_value(name: str, streams: Iterable[StreamFigures], figures: Figures) -> float | None:
    chosen = list(streams)
    c = {k: sum(s.counts[k] for s in chosen) for k in COUNTERS}
    match name:
        case "accepted_ratio":
            return _ratio(c["accepted"], c["sent"])
        case "dead_lettered_ratio":
            return _ratio(c["dead_lettered"], c["sent"])
        case "dead_lettered" | "possible_duplicates" | "rate_cuts":
            return float(c[name])
        case "throttled_ratio":
            return _ratio(c["throttled_records"], c["accepted"] + c["failed_record_attempts"])
        case "failed_call_ratio":
            return _ratio(c["failed_requests"], c["requests"])
        case "achieved_rate_ratio":
            return _ratio(c["accepted"], figures.asked * len(chosen))
        case "shortfall":
            return figures.shortfall
        case "cost_per_hour":
            return figures.cost_per_hour
    kind, _, stat = name.rpartition("_")
    merged = LogHistogram()
    for s in chosen:
        merged.merge(s.put if kind == "put_latency" else s.ack)
    if stat == "max":
        return merged.max if merged.count else None
    return merged.quantile(int(stat[1:]) / 100)


def _ratio(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole > 0 else None
