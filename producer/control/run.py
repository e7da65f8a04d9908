"""One producer process as the control steers it: its schedule (a new peak, a pause), its
early end (Signals.finish: generation stops and delivery drains), and the status it reports."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from producer.runtime import Signals
from producer.schedule import Pacer, Steering, next_change
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.stats import StreamStats

# The page draws the shape this far ahead (or to the end of the run, when sooner).
AHEAD_S = 600.0
AHEAD_POINTS = 60


def shape_ahead(rate_at: Callable[[float], float], now_s: float, end_s: float) -> list[list[float]]:
    """``[[seconds from now, events/s], ...]`` over the next AHEAD_S seconds (or to ``end_s``)."""
    span = min(AHEAD_S, max(end_s - now_s, 0.0))
    if span <= 0:
        return []
    return [
        [round(span * i / AHEAD_POINTS, 1), round(rate_at(now_s + span * i / AHEAD_POINTS), 1)]
        for i in range(AHEAD_POINTS + 1)
    ]


def stream_figures(
    stats: Sequence[StreamStats], histograms: dict[str, StreamHistograms], target: float
) -> dict[str, dict[str, Any]]:
    """Per stream: achieved vs target records/s, the books so far, and acknowledgement latency."""
    out: dict[str, dict[str, Any]] = {}
    for s in stats:
        ack = histograms[s.name].ack_seconds
        out[s.name] = {
            "achieved": round(s.achieved_rate, 1),
            "target": round(target, 1),
            "accepted": s.accepted,
            "throttled": s.throttled_records,
            "dead_lettered": s.dead_lettered,
            "queued": s.held,
            "ack_p50_s": ack.quantile(0.5),
            "ack_p99_s": ack.quantile(0.99),
        }
    return out


def schedule_status(steering: Steering, elapsed_s: float, duration_s: float) -> dict[str, Any]:
    """Where the schedule is: target now and next, elapsed of total, pause time, shape ahead."""
    elapsed_s = min(elapsed_s, duration_s)
    nxt = next_change(steering.planned_at, elapsed_s, min(3600.0, duration_s - elapsed_s))
    return {
        "rate": steering.peak,
        "paused": steering.paused,
        "shape": steering.text,
        "target_now": round(steering.rate_at(elapsed_s), 1),
        "target_next": None
        if nxt is None
        else {"in_s": round(nxt[0] - elapsed_s, 1), "rate": round(nxt[1], 1)},
        "elapsed_s": round(elapsed_s, 1),
        "duration_s": None if math.isinf(duration_s) else duration_s,
        "paused_s": round(steering.paused_s(elapsed_s), 1),
        "ahead": shape_ahead(steering.planned_at, elapsed_s, duration_s),
    }


class SteeredRun:
    """The Steerable of a single process (producer/control/state.py)."""

    def __init__(
        self,
        steering: Steering,
        pacer: Pacer,
        signals: Signals,
        identity: dict[str, Any],
        stats: Sequence[StreamStats],
        histograms: dict[str, StreamHistograms],
        events: Callable[[], int],
    ) -> None:
        self.steering = steering
        self.pacer = pacer
        self.signals = signals
        self.identity = identity  # run_id, profile, target
        self.stats = stats
        self.histograms = histograms
        self.events = events

    @property
    def rate(self) -> float:
        return self.steering.peak

    @property
    def paused(self) -> bool:
        return self.steering.paused

    async def set_rate(self, rate: float) -> None:
        self.steering.set_peak(rate, self.pacer.elapsed_s())

    async def set_paused(self, paused: bool) -> None:
        self.steering.set_paused(paused, self.pacer.elapsed_s())

    async def stop(self, reason: str) -> None:
        self.signals.finish(reason)

    def status(self) -> dict[str, Any]:
        elapsed = self.pacer.elapsed_s()
        schedule = schedule_status(self.steering, elapsed, self.pacer.duration_s)
        return (
            self.identity
            | schedule
            | {
                "events_generated": self.events(),
                "streams": stream_figures(self.stats, self.histograms, schedule["target_now"]),
            }
        )
