"""Fault injection for the local Firehose, so the producer's error handling meets real failures.

Every knob defaults to off. Whole-call errors use the service's own error types
(ServiceUnavailableException 503, InternalFailure 500); per-record failures use the
ErrorCodes PutRecordBatch documents:
https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FaultSettings:
    record_failure_rate: float = 0.0  # share of records answered with ServiceUnavailableException
    call_error_rate: float = 0.0  # share of PutRecordBatch calls answered with a whole-call 5xx
    call_error_type: str = "ServiceUnavailableException"  # or InternalFailure
    latency_s: float = 0.0  # added to every data-plane answer
    latency_jitter_s: float = 0.0  # plus uniform(0, jitter)
    drop_connection_rate: float = 0.0  # share of calls whose connection is closed unanswered
    outage_start_s: float | None = None  # seconds after the faults were set
    outage_duration_s: float = 0.0  # during the outage every data-plane call gets a 503
    seed: int | None = None

    def validate(self) -> None:
        for name in ("record_failure_rate", "call_error_rate", "drop_connection_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.call_error_type not in ("ServiceUnavailableException", "InternalFailure"):
            raise ValueError("call_error_type must be ServiceUnavailableException or InternalFailure")
        if self.latency_s < 0 or self.latency_jitter_s < 0 or self.outage_duration_s < 0:
            raise ValueError("latencies and durations must be >= 0")


@dataclass(slots=True)
class FaultInjector:
    """Draws the faults for each call from ``settings``; the server asks, then acts."""

    settings: FaultSettings = field(default_factory=FaultSettings)
    _rng: random.Random = field(default_factory=random.Random)
    _since: float = field(default_factory=time.monotonic)

    def set(self, settings: FaultSettings) -> None:
        settings.validate()
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._since = time.monotonic()

    def delay_s(self) -> float:
        s = self.settings
        return s.latency_s + (self._rng.uniform(0, s.latency_jitter_s) if s.latency_jitter_s else 0.0)

    def in_outage(self) -> bool:
        s = self.settings
        if s.outage_start_s is None:
            return False
        elapsed = time.monotonic() - self._since
        return s.outage_start_s <= elapsed < s.outage_start_s + s.outage_duration_s

    def drop_connection(self) -> bool:
        rate = self.settings.drop_connection_rate
        return rate > 0 and self._rng.random() < rate

    def call_error(self) -> str | None:
        rate = self.settings.call_error_rate
        if rate > 0 and self._rng.random() < rate:
            return self.settings.call_error_type
        return None

    def failed_records(self, count: int) -> list[bool]:
        """For each record of a call: True when it is to be answered as failed."""
        rate = self.settings.record_failure_rate
        if rate <= 0:
            return [False] * count
        rnd = self._rng.random
        return [rnd() < rate for _ in range(count)]
