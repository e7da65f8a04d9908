"""Cheap cumulative histograms for the hot path: one bisect and two adds per observation; and
the latencies' log-bucketed histograms, which merge exactly across processes.

They are plain Python, so the sender can record without touching prometheus_client; the
metrics module exports them as Prometheus histograms at scrape time.

Why two kinds: Prometheus needs fixed bucket bounds (``le``), a handful of them. A run's summary
needs percentiles a check can trust and that shards, workers and pods can add up: a
``LogHistogram`` keeps one count per bucket ``(g**(i-1), g**i]`` with ``g = (1+a)/(1-a)``, so
every percentile it gives is within ``a`` (``RELATIVE_ERROR``, 1%) of the true value of that
rank, and merging is summing counts bucket by bucket (the DDSketch scheme, Masson et al., VLDB
2019). Its buckets are sparse (a few hundred at most for latencies from 1 us to an hour), so
they go into the summary JSON as they are. Written here rather than taken from the ``ddsketch``
package: its serialisation is protobuf, and the summary wants plain JSON that any tool reads.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Seconds: PutRecordBatch round trips on loopback are ~1 ms, on AWS tens of ms, under
# throttling and backoff seconds. Steps of at most 1.5x between bounds, so a histogram_quantile
# p99 in Prometheus is within a bucket of half its value (the summary's own percentiles come
# from the LogHistogram, 1%).
LATENCY_BUCKETS_S = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
)  # fmt: skip
# Records per batch, up to the PutRecordBatch maximum of 500.
BATCH_RECORD_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 300, 400, 500)
# Bytes per batch, up to the 4 MiB PutRecordBatch maximum.
BATCH_BYTE_BUCKETS = (1024, 10_240, 65_536, 262_144, 524_288, 1_048_576, 2_097_152, 4_194_304)
# Event to acknowledgement: linger + queueing + round trips + retries.
ACK_BUCKETS_S = (
    0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip

# Every percentile a LogHistogram gives is within this fraction of the true value of its rank.
RELATIVE_ERROR = 0.01
# Values at or below this (seconds) share the lowest bucket: no latency we measure is shorter.
MIN_VALUE_S = 1e-6


class LogHistogram:
    """Counts per log-spaced bucket: percentiles within ``relative_error``, exact merges.

    Example: ``h = LogHistogram(); h.observe(0.2); h.quantile(0.99)`` is within 1% of 0.2.
    """

    __slots__ = ("_gamma", "_log_gamma", "buckets", "count", "max", "relative_error", "total")

    def __init__(self, relative_error: float = RELATIVE_ERROR) -> None:
        self.relative_error = relative_error
        self._gamma = (1 + relative_error) / (1 - relative_error)
        self._log_gamma = math.log(self._gamma)
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def index(self, value: float) -> int:
        return math.ceil(math.log(max(value, MIN_VALUE_S)) / self._log_gamma)

    def observe(self, value: float, times: int = 1) -> None:
        i = self.index(value)
        self.buckets[i] = self.buckets.get(i, 0) + times
        self.count += times
        self.total += value * times
        if value > self.max:
            self.max = value

    def quantile(self, q: float) -> float | None:
        """The value of rank ``ceil(q * count)`` (nearest rank) within ``relative_error``; None
        when empty. The bucket's midpoint in relative terms, capped at the largest value seen."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count - 1e-9))
        running = 0
        for i in sorted(self.buckets):
            running += self.buckets[i]
            if running >= rank:
                return min(2 * self._gamma**i / (self._gamma + 1), self.max)
        return self.max

    def merge(self, other: LogHistogram) -> None:
        """Add ``other``'s counts: exact (same relative error on both sides, or ValueError)."""
        if other.relative_error != self.relative_error:
            raise ValueError(
                f"histograms of relative error {self.relative_error} and {other.relative_error} do not merge"
            )
        for i, n in other.buckets.items():
            self.buckets[i] = self.buckets.get(i, 0) + n
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def minus(self, earlier: LogHistogram) -> LogHistogram:
        """What was observed since ``earlier`` (a copy of this histogram taken before): the counts
        of a time window."""
        out = LogHistogram(self.relative_error)
        out.buckets = {i: n - earlier.buckets.get(i, 0) for i, n in self.buckets.items()}
        out.buckets = {i: n for i, n in out.buckets.items() if n > 0}
        out.count = self.count - earlier.count
        out.total = self.total - earlier.total
        # The window's largest value lies in its top bucket: that bucket's upper bound (within
        # twice the relative error), or the whole's max when that is smaller.
        top = max(out.buckets, default=None)
        out.max = 0.0 if top is None else min(self._gamma**top, self.max)
        return out

    def copy(self) -> LogHistogram:
        out = LogHistogram(self.relative_error)
        out.merge(self)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The summary's form: counts by bucket index (as text: JSON keys) and the percentiles
        they give, for people; a merge reads only ``buckets``, ``count``, ``sum_s``, ``max_s``."""
        return {
            "count": self.count,
            "sum_s": round(self.total, 6),
            "max_s": round(self.max, 6),
            **{f"p{round(q * 100)}_s": _round(self.quantile(q)) for q in (0.5, 0.9, 0.99)},
            "relative_error": self.relative_error,
            "buckets": {str(i): self.buckets[i] for i in sorted(self.buckets)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogHistogram:
        """From ``to_dict``'s form; ValueError/TypeError/KeyError when it is not one."""
        out = cls(float(data.get("relative_error", RELATIVE_ERROR)))
        out.buckets = {int(i): int(n) for i, n in dict(data.get("buckets") or {}).items()}
        out.count = int(data.get("count", sum(out.buckets.values())))
        out.total = float(data.get("sum_s", 0.0))
        out.max = float(data.get("max_s", 0.0))
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(slots=True)
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; last is +Inf
    total: float = 0.0
    count: int = 0
    # The same observations log-bucketed, for the summary's percentiles (latencies only).
    fine: LogHistogram | None = None

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += times
        self.total += value * times
        self.count += times
        if self.fine is not None:
            self.fine.observe(value, times)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as Prometheus exposes them."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*map(_le, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding quantile ``q`` (what histogram_quantile would say)."""
        if not self.count:
            return None
        rank = q * self.count
        running = 0
        for i, n in enumerate(self.counts):
            running += n
            if running >= rank and n:
                return self.bounds[i] if i < len(self.bounds) else float("inf")
        return float("inf")


def _le(bound: float) -> str:
    return repr(float(bound))


@dataclass(slots=True)
class StreamHistograms:
    request_seconds: Histogram = field(
        default_factory=lambda: Histogram(LATENCY_BUCKETS_S, fine=LogHistogram())
    )
    batch_records: Histogram = field(default_factory=lambda: Histogram(BATCH_RECORD_BUCKETS))
    batch_bytes: Histogram = field(default_factory=lambda: Histogram(BATCH_BYTE_BUCKETS))
    # Offer to acceptance: a record's time from its batch's offer (midpoint) to Firehose's answer.
    ack_seconds: Histogram = field(default_factory=lambda: Histogram(ACK_BUCKETS_S, fine=LogHistogram()))

    def latency(self) -> dict[str, Any]:
        """The summary's ``latency`` block of a stream: both latencies, mergeable."""
        return {
            LATENCY_PUT: _fine(self.request_seconds).to_dict(),
            LATENCY_ACK: _fine(self.ack_seconds).to_dict(),
        }


# The summary's names of the two latencies (StreamSummary.latency).
LATENCY_PUT = "put_record_batch"
LATENCY_ACK = "offer_to_accept"


def _fine(h: Histogram) -> LogHistogram:
    return h.fine if h.fine is not None else LogHistogram()
