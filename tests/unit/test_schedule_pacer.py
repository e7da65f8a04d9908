"""The pacer with a fake clock: events per window follow rate_at(t); open loop under slow sends."""

from __future__ import annotations

import asyncio
import math

import pytest

from producer.schedule import DueCounter, Pacer, RateShape, constant, diurnal, ramp, sine, spike, stages, step


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def wait(self, stop: asyncio.Event, timeout_s: float) -> None:
        self.now += timeout_s  # a tick passes instantly


def integral(shape: RateShape, start: float, end: float, steps: int = 20_000) -> float:
    width = (end - start) / steps
    return sum(shape(start + (i + 0.5) * width) for i in range(steps)) * width


async def windows(shape: RateShape, duration_s: float, tick_s: float = 0.01) -> list[int]:
    """Events the pacer issued in each 1 s window of elapsed (fake) time."""
    clock = FakeClock()
    start = clock.now
    pacer = Pacer(shape, duration_s, tick_s=tick_s, clock=clock, wait=clock.wait)
    counts = [0] * math.ceil(duration_s)
    async for n in pacer.ticks(asyncio.Event()):
        elapsed = clock.now - start
        counts[min(int(elapsed - 1e-9), len(counts) - 1)] += n
    return counts


SHAPES = {
    "ramp": ramp(500, 3000, over_s=20),
    "spike": spike(800, 4000, at_s=5.5, for_s=6),
    "sine": sine(600, 2400, period_s=13),
    "diurnal": diurnal(700, 3000, period_s=24),
    "step": step([(900, 7.3), (2500, 5), (1200, 10)]),
    "stages": stages([(ramp(500, 2000, 8), 8), (constant(2000), 6), (sine(800, 1600, 5), 10)]),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
async def test_events_per_second_follow_the_shape_within_2_percent(name: str) -> None:
    shape = SHAPES[name]
    counts = await windows(shape, 24)
    for second, issued in enumerate(counts):
        expected = integral(shape, second, second + 1)
        assert issued == pytest.approx(expected, rel=0.02), (second, issued, expected)


async def test_sixty_seconds_of_constant_rate_within_1_percent() -> None:
    counts = await windows(constant(137), 60)
    assert sum(counts) == pytest.approx(137 * 60, rel=0.01)
    assert all(abs(c - 137) <= 1 for c in counts)


async def test_coarse_ticks_still_issue_the_integral() -> None:
    shape = ramp(0, 1000, over_s=10)
    counts = await windows(shape, 10, tick_s=0.25)
    assert sum(counts) == pytest.approx(integral(shape, 0, 10), abs=1)


async def test_open_loop_slow_consumer_does_not_lower_the_total() -> None:
    """A consumer that takes 0.3 s per batch (a blocked send) still gets every due event,
    in bigger batches: the schedule, not the consumer, decides what is due."""
    clock = FakeClock()
    pacer = Pacer(constant(1000), 10, tick_s=0.01, clock=clock, wait=clock.wait)
    batches = []
    async for n in pacer.ticks(asyncio.Event()):
        batches.append(n)
        clock.now += 0.3  # slow: the time passes while we "send"
    assert sum(batches) == 10_000
    assert max(batches) >= 300


async def test_stop_ends_the_ticks() -> None:
    clock = FakeClock()
    stop = asyncio.Event()
    pacer = Pacer(constant(100), 3600, clock=clock, wait=clock.wait)
    seen = 0
    async for n in pacer.ticks(stop):
        seen += n
        if seen >= 50:
            stop.set()
    assert 50 <= seen < 60


def test_due_counter_carries_fractions_at_low_rates() -> None:
    counter = DueCounter(constant(0.5))
    issued = [counter.advance(t / 10) for t in range(1, 101)]  # 10 s in 0.1 s steps
    assert sum(issued) == 5 and set(issued) <= {0, 1}


def test_due_counter_ignores_time_going_backwards() -> None:
    counter = DueCounter(constant(100))
    assert counter.advance(1.0) == 100
    assert counter.advance(0.5) == 0
    assert counter.advance(1.5) == 50


def test_due_counter_reports_the_rate_the_shape_asks_for_now() -> None:
    counter = DueCounter(ramp(100.0, 300.0, 10.0))
    counter.advance(5.0)
    assert counter.current_rate == pytest.approx(200.0)
    counter.advance(20.0)
    assert counter.current_rate == pytest.approx(300.0)
