"""Steering a schedule live: a new peak scales the shape, a pause asks for nothing, and the
pacer and the schedule check count a steered run alike, to the event."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest

from producer.control.document import parse_document
from producer.control.state import ControlError, RunControl, parse_patch
from producer.schedule import Pacer, Steering, constant, integrate, next_change, peak_reached, spike
from producer.telemetry.stats import ScheduleCheck, expected_events
from producer.workers.steer import split_rate


def test_a_new_peak_scales_the_shape_from_then_on() -> None:
    s = Steering(spike(100, 1000, at_s=60, for_s=30), factor=0.5)
    assert (s.peak, s.rate_at(10)) == (500, 50)
    s.set_peak(2000, at_s=20)
    assert (s.rate_at(10), s.rate_at(30), s.rate_at(70)) == (50, 200, 2000)
    assert s.text.endswith(", x2")


def test_a_pause_asks_for_nothing_and_is_timed() -> None:
    s = Steering(constant(200))
    s.set_paused(True, at_s=10)
    s.set_peak(800, at_s=12)  # a new rate while paused applies on resume
    s.set_paused(False, at_s=15)
    assert [s.rate_at(t) for t in (9, 11, 14, 16)] == [200, 0, 0, 800]
    assert s.paused_s(100) == 5 and s.paused_s(12) == 2
    assert s.planned_at(11) == 800  # the shape at today's rate, paused or not: the shape ahead
    assert s.edges() == [10, 12, 15]


def test_changes_are_never_in_the_past() -> None:
    s = Steering(constant(200))
    s.set_peak(400, at_s=10)
    s.set_peak(600, at_s=5)  # a clock that went back still changes from the latest setting on
    assert s.rate_at(7) == 200 and s.rate_at(11) == 600


@pytest.mark.parametrize("peak", [0, -1, math.inf, math.nan])
def test_a_bad_peak_is_refused(peak: float) -> None:
    with pytest.raises(ValueError):
        Steering(constant(200)).set_peak(peak, 1)


class FakeClock:
    """Ticks pass instantly; ``changes`` (elapsed s: change) are made 3.7 ms into the tick they
    fall in, as a request arriving between two ticks would be."""

    def __init__(self, changes: dict[float, Callable[[float], None]]) -> None:
        self.now = 100.0
        self.changes = dict(changes)

    def __call__(self) -> float:
        return self.now

    async def wait(self, _stop: asyncio.Event, timeout_s: float) -> None:
        for at in [at for at in self.changes if at <= self.now - 100.0 + timeout_s]:
            self.changes.pop(at)(self.now - 100.0 + 0.0037)
        self.now += timeout_s


async def test_pacer_and_schedule_check_agree_to_the_event_across_changes() -> None:
    """Changes land between ticks (a 1 ms trapezoid across a pause would count up to half an
    event per edge that was never asked for, and the check would call it a shortfall)."""
    s = Steering(constant(200))
    clock = FakeClock(
        {
            3.0: lambda t: s.set_peak(833.3, t),
            7.0: lambda t: s.set_paused(True, t),
            11.0: lambda t: s.set_paused(False, t),
            15.0: lambda t: s.set_peak(123.4, t),
        }
    )
    pacer = Pacer(s, 20.0, clock=clock, wait=clock.wait, edges=s.edges)
    issued = 0
    async for n in pacer.ticks(asyncio.Event()):
        issued += n
    check = ScheduleCheck(s.rate_at, 20.0, s.edges)
    check.mark(issued, 20.0)
    assert check.summary(issued)["shortfall_events"] == 0
    assert issued == int(expected_events(s.rate_at, 20.0, edges=s.edges()) + 1e-6)
    assert issued == pytest.approx(200 * 3 + 833.3 * 4 + 833.3 * 4 + 123.4 * 5, abs=20)
    assert s.paused_s(20) == pytest.approx(4.0, abs=0.02)


def test_integrate_splits_at_edges() -> None:
    s = Steering(constant(1000))
    s.set_paused(True, at_s=0.0105)
    # One 10 ms trapezoid across the edge counts 5 events too many; split, it is exact.
    assert integrate(s.rate_at, 0, 0.02, 0.01) == pytest.approx(10.5 + 0.5 * 0.0 + 0.0 + 5.0 - 5.0, abs=5.1)
    assert integrate(s.rate_at, 0, 0.02, 0.01, s.edges()) == pytest.approx(10.5)


def test_next_change_and_the_peak_a_run_reaches() -> None:
    flash = spike(150, 1500, at_s=60, for_s=30)
    assert next_change(flash, 20, 3600) == (60, 1500)
    assert next_change(constant(5), 0, 3600) is None
    assert peak_reached(flash, 20) == (150, 60.0)
    assert peak_reached(flash, 120)[0] == 1500


@pytest.mark.parametrize(("rate", "workers"), [(800, 2), (801, 2), (1000.5, 3), (7, 4), (0.003, 2)])
def test_a_new_rate_is_split_exactly(rate: float, workers: int) -> None:
    shares = split_rate(rate, workers)
    assert len(shares) == workers and max(shares) - min(shares) <= 10 ** -len(str(rate).partition(".")[2])
    assert round(sum(shares), 9) == rate


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"rate": "fast"}, "rate must be a number"),
        ({"rate": True}, "rate must be a number"),
        ({"rate": 0}, "rate must be a number"),
        ({"paused": "yes"}, "paused must be true or false"),
        ({"duration": 5}, "unknown field 'duration'"),
        ({}, "nothing to change"),
    ],
)
def test_bad_patches_say_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        parse_patch(body)


class Target:
    def __init__(self) -> None:
        self.rate, self.paused, self.stopped = 200.0, False, ""

    async def set_rate(self, rate: float) -> None:
        self.rate = rate

    async def set_paused(self, paused: bool) -> None:
        self.paused = paused

    async def stop(self, reason: str) -> None:
        self.stopped = reason

    def status(self) -> dict[str, object]:
        return {"rate": self.rate}


async def test_run_control_logs_each_change_once_and_nothing_after_stop() -> None:
    lines: list[str] = []
    target = Target()
    control = RunControl(target, lines.append)
    await control.patch(800, None, "api 127.0.0.1")
    await control.patch(800, False, "api 127.0.0.1")  # no change: nothing logged
    await control.patch(None, True, "keys")
    await control.stop("ctl 127.0.0.1")
    await control.stop("ctl 127.0.0.1")
    with pytest.raises(ControlError, match="stopping"):
        await control.patch(100, None, "api")
    assert [c.change for c in control.changes] == ["rate 200 -> 800 events/s", "pause", "stop"]
    assert len(lines) == 3 and lines[0].startswith("control: rate 200 -> 800 events/s (api 127.0.0.1")
    assert target.stopped.endswith("(ctl 127.0.0.1)") and control.status()["state"] == "stopping"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"rate": -1}', "rate must be a number"),
        (b'{"stop": "now"}', "stop must be true or false"),
        (b'{"rate": 5, "speed": 2}', "unknown field 'speed'"),
    ],
)
def test_bad_control_documents_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        parse_document(data)


def test_a_control_document_says_rate_pause_and_stop() -> None:
    assert parse_document(b'{"rate": 801.5, "paused": false}') == (801.5, False, False)
    assert parse_document(b'{"stop": true}') == (None, None, True)
