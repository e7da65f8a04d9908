"""Per-stream counters: the one source the live view, the summary and /metrics all read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from producer.schedule import integrate


class Reason(StrEnum):
    """Why records were given up: the dead-letter spool's ``reason``, the summary's
    ``dead_lettered_by_reason`` and the ``reason`` label of loadgen_dead_lettered_records_total."""

    RETRIES_EXHAUSTED = "RetriesExhausted"  # used --max-attempts
    RECORD_EXPIRED = "RecordExpired"  # older than --record-ttl
    RECORD_TOO_LARGE = "RecordTooLarge"  # over the API's record limit
    DROPPED = "Dropped"  # the stream was full under --on-full drop
    NON_RETRYABLE = "NonRetryable"  # an error no retry can fix
    STREAM_STOPPED = "StreamStopped"  # the stream could not be used any more
    DRAIN_TIMEOUT = "DrainTimeout"  # --drain-timeout ended first
    SHUTDOWN_DEADLINE = "ShutdownDeadline"  # --shutdown-grace ended first (a signal)
    OUTCOME_UNKNOWN = "OutcomeUnknown"  # a call cut off unanswered: it may have been accepted
    ABORTED = "Aborted"  # a second Ctrl-C
    PRODUCER_ERROR = "ProducerError"  # a bug of ours, reported rather than lost


# (current limit in records/s or None when unpaced, accepted records/s over a short window)
RateProbe = Callable[[], tuple[float | None, float]]


@dataclass(slots=True)
class StreamStats:
    """``sent`` counts records the producer took for this stream; at the end of a run
    ``sent == accepted + dead_lettered + lost``, and ``lost`` is 0 unless the dead-letter spool
    failed. The rest are events, not record states."""

    name: str
    target_rate: float = 0.0  # records/s the run asks of this stream (every event goes to it)
    sent: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    # Records given up on that the dead-letter spool could not take (a full disk): neither
    # accepted nor spooled. Any makes the run's books incomplete (exit 4).
    lost: int = 0
    retried_records: int = 0
    failed_record_attempts: int = 0  # record attempts that failed (per record, whole call or transport)
    throttled_records: int = 0
    failed_requests: int = 0
    possible_duplicates: int = 0
    requests: int = 0
    bytes_sent: int = 0  # the accepted records' own bytes
    # What Firehose bills for the accepted records: each rounded up to 5 KB
    # (producer/telemetry/cost.py). Refused records are not billed, so retries add nothing.
    billed_bytes: int = 0
    # Events carried by the records sent (--pack: several a record); 0 for a stream not packed.
    packed_events: int = 0
    in_flight: int = 0
    held: int = 0  # records inside the channel: accumulating, queued, in flight or waiting to retry
    blocked_s: float = 0.0  # time generation waited on this stream (--on-full block)
    not_taken_after_stop: int = 0  # records refused because the stream had stopped (not in sent)
    rate_cuts: int = 0
    failures_by_code: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    stopped_reason: str = ""
    rate_probe: RateProbe | None = None  # set by the stream's sender

    @property
    def current_limit(self) -> float | None:
        """The adaptive send limit (records/s); None while the stream has not been throttled."""
        return self.rate_probe()[0] if self.rate_probe else None

    @property
    def achieved_rate(self) -> float:
        """Records/s the stream accepted over the last couple of seconds."""
        return self.rate_probe()[1] if self.rate_probe else 0.0

    @property
    def balanced(self) -> bool:
        """Every record taken is accounted for: accepted or dead-lettered, none lost."""
        return self.lost == 0 and self.sent == self.accepted + self.dead_lettered

    def summary(self) -> dict[str, Any]:
        limit = self.current_limit
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "dead_lettered": self.dead_lettered,
            "lost": self.lost,
            "retried_records": self.retried_records,
            "failed_record_attempts": self.failed_record_attempts,
            "throttled_records": self.throttled_records,
            "failed_requests": self.failed_requests,
            "possible_duplicates": self.possible_duplicates,
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "billed_bytes": self.billed_bytes,
            "packed_events": self.packed_events,
            "failures_by_code": dict(self.failures_by_code),
            "dead_lettered_by_reason": dict(self.dead_by_reason),
            "target_rate": self.target_rate,
            "rate_limit": None if limit is None else round(limit, 1),
            "rate_cuts": self.rate_cuts,
            "blocked_s": round(self.blocked_s, 3),
            "not_taken_after_stop": self.not_taken_after_stop,
            "stopped_reason": self.stopped_reason or None,
        }


# Trapezoids per run at most: a week-long run is integrated in 3 s steps, not 60 million.
MAX_STEPS = 200_000


def expected_events(
    rate_at: Callable[[float], float], until_s: float, step_s: float = 0.01, edges: Sequence[float] = ()
) -> float:
    """Events a schedule asks for over ``[0, until_s]`` (trapezoid rule, as the pacer counts).
    No trapezoid crosses one of ``edges``, the times a steered rate jumps (a pause, a new rate):
    one across it would count half a step's worth of events that were never asked for.

    Example: ``expected_events(lambda t: 100.0, 2.0) == 200.0``.
    """
    if until_s <= 0:
        return 0.0
    return integrate(rate_at, 0.0, until_s, max(step_s, until_s / MAX_STEPS), edges)


@dataclass(slots=True)
class ScheduleCheck:
    """How far generation fell behind the schedule: under ``--on-full block`` a stream that
    cannot keep up slows generation, and the summary must say by how much.

    ``mark`` is called once, at the scheduled end of generation (or when it ends early, on a
    signal); ``on_time_events`` is how many events had been made by then.
    """

    rate_at: Callable[[float], float]
    duration_s: float
    edges: Callable[[], Sequence[float]] = tuple  # where a steered rate jumps (expected_events)
    # The pacer ticks every 10 ms and its last tick lands just after the deadline: events made
    # within this much of it count as on time.
    tolerance_s: float = 0.25
    on_time_events: int | None = None
    marked_at_s: float = 0.0

    def mark(self, events: int, elapsed_s: float) -> None:
        if self.on_time_events is None:
            self.on_time_events = events
            self.marked_at_s = min(elapsed_s, self.duration_s)

    def summary(self, generated: int) -> dict[str, Any]:
        # Whole events fall due (the pacer issues an event once all of it is due): a steered
        # run's fractional 0.6 of an event is not one it owed.
        target = int(expected_events(self.rate_at, self.marked_at_s, edges=self.edges()) + 1e-6)
        on_time = generated if self.on_time_events is None else self.on_time_events
        shortfall = max(0, target - on_time)
        return {
            "target_events": target,
            "on_time_events": on_time,
            "shortfall_events": shortfall,
            "shortfall_pct": round(100.0 * shortfall / target, 2) if target else 0.0,
            "late_events": max(0, generated - on_time),
        }
