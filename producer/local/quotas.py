"""Per-stream Direct PUT quotas as token buckets: records/s, requests/s and bytes/s.

PutRecord and PutRecordBatch share one quota per stream; defaults come from the region's
row of the quota table (``limits.direct_put_quota``).
https://docs.aws.amazon.com/firehose/latest/dev/limits.html
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from producer.firehose.limits import DirectPutQuota


@dataclass(frozen=True, slots=True)
class QuotaOverrides:
    """Quota values a user sets (``local serve --records-per-s ...``); None keeps the region default."""

    records_per_s: int | None = None
    requests_per_s: int | None = None
    bytes_per_s: int | None = None

    def apply(self, default: DirectPutQuota) -> DirectPutQuota:
        return DirectPutQuota(
            records_per_s=self.records_per_s or default.records_per_s,
            requests_per_s=self.requests_per_s or default.requests_per_s,
            bytes_per_s=self.bytes_per_s or default.bytes_per_s,
        )


class TokenBucket:
    """``rate`` tokens per second, holding at most one second's worth (the burst)."""

    __slots__ = ("_clock", "_stamp", "capacity", "rate", "tokens")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"quota rate must be > 0, got {rate}")
        self.rate = float(rate)
        self.capacity = float(rate)
        self.tokens = float(rate)
        self._clock = clock
        self._stamp = clock()

    def refill(self) -> float:
        now = self._clock()
        elapsed = now - self._stamp
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self._stamp = now
        return self.tokens


class StreamQuota:
    """Decides, per call, whether it is throttled as a whole or how many of its records fit."""

    def __init__(self, quota: DirectPutQuota, clock: Callable[[], float] = time.monotonic) -> None:
        self.quota = quota
        self.records = TokenBucket(quota.records_per_s, clock)
        self.requests = TokenBucket(quota.requests_per_s, clock)
        self.bytes = TokenBucket(quota.bytes_per_s, clock)
        self.throttled_records = 0
        self.throttled_calls = 0

    def admit_call(self) -> bool:
        """Take one request token; False means the whole call is answered 503."""
        if self.requests.refill() < 1.0:
            self.throttled_calls += 1
            return False
        self.requests.tokens -= 1.0
        return True

    def admit_records(self, sizes: Sequence[int], total: int) -> int:
        """How many records, from the start of the call, fit in the records and bytes buckets.
        Those are charged; the rest are answered "Slow down." per record."""
        rec_tokens = self.records.refill()
        byte_tokens = self.bytes.refill()
        count = len(sizes)
        if count <= rec_tokens and total <= byte_tokens:  # the common case: no per-record work
            self.records.tokens -= count
            self.bytes.tokens -= total
            return count
        fit = min(count, int(rec_tokens))
        used = 0
        for i in range(fit):
            if used + sizes[i] > byte_tokens:
                fit = i
                break
            used += sizes[i]
        self.records.tokens -= fit
        self.bytes.tokens -= used
        self.throttled_records += count - fit
        return fit
