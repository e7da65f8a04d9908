"""Per-stream counters: the one source the live view, the summary and /metrics all read."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class StreamStats:
    """``sent`` counts records the producer took for this stream; at the end of a run
    ``sent == accepted + dead_lettered``. The rest are events, not record states."""

    name: str
    sent: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    retried_records: int = 0
    throttled_records: int = 0
    failed_requests: int = 0
    possible_duplicates: int = 0
    requests: int = 0
    bytes_sent: int = 0
    in_flight: int = 0
    held: int = 0  # records inside the channel: accumulating, queued, in flight or waiting to retry
    failures_by_code: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    stopped_reason: str = ""

    def latency_quantile(self, q: float) -> float | None:
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "dead_lettered": self.dead_lettered,
            "retried_records": self.retried_records,
            "throttled_records": self.throttled_records,
            "failed_requests": self.failed_requests,
            "possible_duplicates": self.possible_duplicates,
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "failures_by_code": dict(self.failures_by_code),
            "dead_lettered_by_reason": dict(self.dead_by_reason),
            "stopped_reason": self.stopped_reason or None,
        }
