"""Per-stream counters: the one source the live view, the summary and /metrics all read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from producer.schedule import LATE_TOLERANCE_S, integrate


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


@dataclass(frozen=True, slots=True)
class Count:
    """How one counter of a stream's books is shown: its ``name`` is its field in ``Books`` and
    its key in the summary JSON; ``metric`` is its family on /metrics (None: summary only) and
    ``label`` its series there when a family holds several counters. ``less``: the series shows
    this counter minus that one (``requests`` counts every call, the ``ok`` series the answered)."""

    meaning: str
    metric: str | None = None
    label: tuple[str, str] | None = None
    less: str | None = None
    name: str = ""


def count(
    meaning: str, metric: str | None = None, label: tuple[str, str] | None = None, less: str | None = None
) -> int:
    """A counter of ``Books``: 0 to start with, and how it is shown (``Count``)."""
    shown = Count(meaning, metric, label, less)
    return field(default=0, metadata={"count": shown})


@dataclass(slots=True, kw_only=True)
class Books:
    """One stream's counters, each declared once, here: the live ``StreamStats`` and the
    summary's ``StreamSummary`` both are Books, and the summary, /metrics and the ``--workers``
    scrape all read ``COUNTS``, made from these lines. A new counter is one line.

    ``sent`` counts records the producer took for this stream; at the end of a run
    ``sent == accepted + dead_lettered + lost``, and ``lost`` is 0 unless the dead-letter spool
    failed. The rest count events, not record states."""

    sent: int = count("taken for the stream", "loadgen_records", ("outcome", "sent"))
    accepted: int = count("acknowledged by Firehose", "loadgen_records", ("outcome", "accepted"))
    dead_lettered: int = count(
        "given up and written to the spool (dropped ones included)",
        "loadgen_records",
        ("outcome", "dead_lettered"),
    )
    lost: int = count(
        "given up but the spool could not take them (the run's books are then incomplete, exit 4)",
        "loadgen_records",
        ("outcome", "lost"),
    )
    retried_records: int = count(
        "records scheduled for another attempt", "loadgen_records", ("outcome", "retried")
    )
    failed_record_attempts: int = count(
        "record attempts Firehose refused or that got no answer (per record, whole call or transport)",
        "loadgen_records",
        ("outcome", "failed_attempt"),
    )
    throttled_records: int = count(
        "Records refused with throttling (Slow down.).", "loadgen_throttled_records"
    )
    failed_requests: int = count(
        "calls that failed whole (an error, no answer, an unreadable one)",
        "loadgen_put_record_batch_requests",
        ("result", "error"),
    )
    possible_duplicates: int = count(
        "Records resent after a call whose outcome is unknown (timeout, dropped connection): "
        "Firehose may hold them twice.",
        "loadgen_possible_duplicate_records",
    )
    requests: int = count(
        "answered 200", "loadgen_put_record_batch_requests", ("result", "ok"), less="failed_requests"
    )
    bytes_sent: int = count("Bytes of record data Firehose accepted.", "loadgen_sent_bytes")
    billed_bytes: int = count(
        "Bytes Firehose bills for the records it accepted: each record rounded up to 5 KB "
        "(5,120 bytes), https://aws.amazon.com/firehose/pricing/ (producer/telemetry/cost.py).",
        "loadgen_billed_bytes",
    )
    packed_events: int = count(
        "Events carried in the records sent to a --pack stream (several a record).", "loadgen_packed_events"
    )
    rate_cuts: int = count("times the adaptive send limit was cut")
    not_taken_after_stop: int = count("records refused because the stream had stopped (not in sent)")

    @property
    def balanced(self) -> bool:
        """Every record taken is accounted for: accepted or dead-lettered, none lost."""
        return self.lost == 0 and self.sent == self.accepted + self.dead_lettered


# Every counter of Books, in order, named.
COUNTS: tuple[Count, ...] = tuple(replace(f.metadata["count"], name=f.name) for f in fields(Books))


@dataclass(slots=True)
class StreamStats(Books):
    """A stream's books as the run goes (the counters are ``Books``'), and what the live view,
    the summary and /metrics read besides."""

    name: str
    target_rate: float = 0.0  # records/s the run asks of this stream (every event goes to it)
    in_flight: int = 0
    held: int = 0  # records inside the channel: accumulating, queued, in flight or waiting to retry
    blocked_s: float = 0.0  # time generation waited on this stream (--on-full block)
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

    def summary(self) -> dict[str, Any]:
        """The stream's part of the summary JSON (``StreamSummary`` reads it)."""
        limit = self.current_limit
        return {c.name: getattr(self, c.name) for c in COUNTS} | {
            "failures_by_code": dict(self.failures_by_code),
            "dead_lettered_by_reason": dict(self.dead_by_reason),
            "target_rate": self.target_rate,
            "rate_limit": None if limit is None else round(limit, 1),
            "blocked_s": round(self.blocked_s, 3),
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
    # within this much of it count as on time (the pacer's own tolerance, where generation stops).
    tolerance_s: float = LATE_TOLERANCE_S
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
