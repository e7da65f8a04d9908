"""Cheap cumulative histograms for the hot path: one bisect and two adds per observation.

They are plain Python, so the sender can record without touching prometheus_client; the
metrics module exports them as Prometheus histograms at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Seconds: PutRecordBatch round trips on loopback are ~1 ms, on AWS tens of ms, under
# throttling and backoff seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Records per batch, up to the PutRecordBatch maximum of 500.
BATCH_RECORD_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 300, 400, 500)
# Bytes per batch, up to the 4 MiB PutRecordBatch maximum.
BATCH_BYTE_BUCKETS = (1024, 10_240, 65_536, 262_144, 524_288, 1_048_576, 2_097_152, 4_194_304)
# Event to acknowledgement: linger + queueing + round trips + retries.
ACK_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass(slots=True)
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; last is +Inf
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += times
        self.total += value * times
        self.count += times

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
    request_seconds: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_S))
    batch_records: Histogram = field(default_factory=lambda: Histogram(BATCH_RECORD_BUCKETS))
    batch_bytes: Histogram = field(default_factory=lambda: Histogram(BATCH_BYTE_BUCKETS))
    ack_seconds: Histogram = field(default_factory=lambda: Histogram(ACK_BUCKETS_S))
