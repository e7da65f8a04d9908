"""Rate shapes as pure functions of elapsed seconds, and the open-loop pacer.

A shape answers one question, ``rate_at(elapsed_s)`` in events per second, and carries its
``peak`` so ``--rate`` can scale a whole shape (``--rate`` sets the peak). Factories read like
Locust's ``wait_time.py``: small, with an Example each.

The pacer decides how many events are due from the schedule alone, never from how fast
sends complete, so slow sends cannot hide load (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

RateFunction = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class RateShape:
    """A rate in events per second as a function of elapsed seconds since the run started."""

    rate_at: RateFunction
    peak: float
    text: str  # one line for `profiles list` and the live view

    def __call__(self, elapsed_s: float) -> float:
        return self.rate_at(elapsed_s)


def constant(rate: float) -> RateShape:
    """Always ``rate`` events per second.

    Example: ``constant(200)(12.5) == 200``.
    """
    return RateShape(lambda _t: rate, rate, f"constant {rate:g}/s")


def ramp(start: float, end: float, over_s: float) -> RateShape:
    """Linear from ``start`` to ``end`` events/s over ``over_s`` seconds, then holds ``end``.

    Example: ``ramp(0, 1000, 60)(30) == 500``.
    """

    def rate_at(t: float) -> float:
        if t >= over_s:
            return end
        return start + (end - start) * max(t, 0.0) / over_s

    return RateShape(rate_at, max(start, end), f"ramp {start:g}->{end:g}/s over {over_s:g}s")


def spike(base: float, peak: float, at_s: float, for_s: float) -> RateShape:
    """``base`` events/s, except ``peak`` from ``at_s`` for ``for_s`` seconds (a flash sale).

    Example: ``spike(200, 2000, at_s=60, for_s=30)(75) == 2000``.
    """

    def rate_at(t: float) -> float:
        return peak if at_s <= t < at_s + for_s else base

    text = f"spike {base:g}/s, {peak:g}/s at {at_s:g}s for {for_s:g}s"
    return RateShape(rate_at, max(base, peak), text)


def sine(low: float, high: float, period_s: float) -> RateShape:
    """A sine wave between ``low`` and ``high`` events/s, starting at ``low``.

    Example: ``sine(100, 300, period_s=60)(30) == 300``.
    """
    mid, amplitude = (high + low) / 2, (high - low) / 2

    def rate_at(t: float) -> float:
        return mid - amplitude * math.cos(2 * math.pi * t / period_s)

    return RateShape(rate_at, max(low, high), f"sine {low:g}-{high:g}/s, period {period_s:g}s")


# Relative traffic of a shop by hour of day (0 = quietest, 1 = busiest): a night trough
# around 04:00, a morning rise, a lunch bump and an evening peak at 20:00-21:00.
_DAY_CURVE = (
    0.18, 0.1, 0.05, 0.02, 0.0, 0.03, 0.12, 0.3, 0.48, 0.58, 0.64, 0.7,
    0.76, 0.72, 0.66, 0.64, 0.66, 0.72, 0.82, 0.93, 1.0, 0.96, 0.74, 0.42,
)  # fmt: skip


def diurnal(low: float, high: float, period_s: float = 86_400.0, start_hour: float = 0.0) -> RateShape:
    """A shop's day between ``low`` and ``high`` events/s, compressed into ``period_s``.

    The run starts at ``start_hour`` of the day. Example: a day in an hour, starting at
    midnight, peaks 20/24 of the way in: ``diurnal(50, 500, period_s=3600)(3000) == 500``.
    """
    hours = len(_DAY_CURVE)

    def rate_at(t: float) -> float:
        position = (start_hour + t / period_s * hours) % hours
        i = int(position)
        frac = position - i
        level = _DAY_CURVE[i] + (_DAY_CURVE[(i + 1) % hours] - _DAY_CURVE[i]) * frac
        return low + (high - low) * level

    text = f"diurnal {low:g}-{high:g}/s, a day in {period_s:g}s"
    return RateShape(rate_at, max(low, high), text)


def stages(parts: Sequence[tuple[RateShape, float]]) -> RateShape:
    """Shapes one after another, each for its seconds; each sees time from its own start.

    After the last stage ends, the last shape goes on. Example:
    ``stages([(ramp(0, 500, 30), 30), (constant(500), 60)])(45) == 500``.
    """
    if not parts:
        raise ValueError("stages needs at least one (shape, seconds) pair")
    starts: list[float] = []
    acc = 0.0
    for _, seconds in parts:
        starts.append(acc)
        acc += seconds
    shapes = [shape for shape, _ in parts]

    def rate_at(t: float) -> float:
        i = max(0, bisect.bisect_right(starts, t) - 1)
        return shapes[i](t - starts[i])

    text = " then ".join(f"{shape.text} for {seconds:g}s" for shape, seconds in parts)
    return RateShape(rate_at, max(shape.peak for shape in shapes), text)


def step(levels: Sequence[tuple[float, float]]) -> RateShape:
    """Constant levels ``(rate, seconds)`` one after another (Locust's StagesShape).

    Example: ``step([(100, 30), (300, 30)])(40) == 300``.
    """
    shape = stages([(constant(rate), seconds) for rate, seconds in levels])
    text = "step " + ", ".join(f"{rate:g}/s for {seconds:g}s" for rate, seconds in levels)
    return RateShape(shape.rate_at, shape.peak, text)


def scaled(shape: RateShape, factor: float) -> RateShape:
    """``shape`` multiplied by ``factor`` (``--rate`` scales a profile's shape).

    Example: ``scaled(constant(200), 2.5)(0) == 500``.
    """
    if factor == 1.0:
        return shape
    return RateShape(lambda t: shape(t) * factor, shape.peak * factor, f"{shape.text} x{factor:g}")


@dataclass(frozen=True, slots=True)
class Setting:
    """From ``at_s`` elapsed seconds on: the shape times ``factor``, or nothing while ``paused``."""

    at_s: float
    factor: float
    paused: bool


class Steering:
    """A running schedule that can be steered live (``run --control``): a new peak rate scales
    the whole shape as ``--rate`` does, and a pause makes the rate 0 until resumed.

    The shape's own clock runs on through a pause (a diurnal day stays aligned with the wall
    clock). Every change is kept, so ``rate_at`` stays a pure function of elapsed time: the
    pacer counts events with it and the summary's schedule check integrates it again, so what
    a pause did not ask for is never a shortfall. Changes are made at the current elapsed time
    (``now_s``), never in the past.

    ``shape`` is the profile's own; ``factor`` scales it to the run's rate (``--rate``).

    Example: ``s = Steering(constant(200)); s.set_peak(800, at_s=10); s.rate_at(12) == 800``.
    """

    def __init__(self, shape: RateShape, factor: float = 1.0) -> None:
        self.shape = shape
        self._settings = [Setting(0.0, factor, False)]
        self._starts = [0.0]

    @property
    def current(self) -> Setting:
        return self._settings[-1]

    @property
    def peak(self) -> float:
        """The peak rate asked for now (events/s): the shape's peak times the factor."""
        return self.shape.peak * self.current.factor

    @property
    def paused(self) -> bool:
        return self.current.paused

    @property
    def text(self) -> str:
        """The shape as it runs now, for the live view and the page."""
        factor = self.current.factor
        return self.shape.text if factor == 1.0 else f"{self.shape.text}, x{factor:.4g}"

    def _add(self, setting: Setting) -> None:
        last = self._settings[-1]
        at_s = max(setting.at_s, last.at_s)
        if at_s == last.at_s:
            self._settings[-1] = Setting(at_s, setting.factor, setting.paused)
        else:
            self._settings.append(Setting(at_s, setting.factor, setting.paused))
            self._starts.append(at_s)

    def set_peak(self, peak: float, at_s: float) -> None:
        if not peak > 0 or math.isinf(peak):
            raise ValueError(f"the rate must be a number of events per second > 0, got {peak:g}")
        self._add(Setting(at_s, peak / self.shape.peak, self.current.paused))

    def set_paused(self, paused: bool, at_s: float) -> None:
        self._add(Setting(at_s, self.current.factor, paused))

    def edges(self) -> list[float]:
        """Elapsed times at which the rate was changed or paused or resumed (it may jump there)."""
        return self._starts[1:]

    def setting_at(self, t: float) -> Setting:
        return self._settings[max(0, bisect.bisect_right(self._starts, t) - 1)]

    def rate_at(self, t: float) -> float:
        setting = self.setting_at(t)
        return 0.0 if setting.paused else self.shape(t) * setting.factor

    def __call__(self, t: float) -> float:
        return self.rate_at(t)

    def planned_at(self, t: float) -> float:
        """What the shape asks for at ``t`` with the current factor, paused or not (the live
        view's "next" and the page's shape ahead)."""
        return self.shape(t) * self.current.factor

    def paused_s(self, until_s: float) -> float:
        """Seconds spent paused in ``[0, until_s]``."""
        total = 0.0
        for setting, end in zip(self._settings, [*self._starts[1:], math.inf], strict=True):
            if setting.paused and setting.at_s < until_s:
                total += min(end, until_s) - setting.at_s
        return total


def next_change(
    rate_at: RateFunction, t: float, horizon_s: float, step_s: float = 1.0
) -> tuple[float, float] | None:
    """The first ``(elapsed_s, rate)`` after ``t`` (within ``horizon_s``) where the rate differs
    from the rate at ``t`` by 5% or more: the live view's "next". None when it holds.

    Example: ``next_change(spike(150, 1500, at_s=60, for_s=30), 20, 3600) == (60.0, 1500)``.
    """
    now = rate_at(t)
    steps = int(horizon_s / step_s)
    for i in range(1, steps + 1):
        at = t + i * step_s
        rate = rate_at(at)
        if abs(rate - now) >= 0.05 * max(now, 1e-9):
            return at, rate
    return None


def peak_reached(shape: RateShape, duration_s: float) -> tuple[float, float | None]:
    """The highest rate ``shape`` reaches within ``duration_s``, and when its own peak comes
    (None if not within a day): a run shorter than that never shows the peak.

    Example: ``peak_reached(spike(150, 1500, at_s=60, for_s=30), 20) == (150, 60.0)``.
    """
    step_s = min(1.0, duration_s / 1000) if duration_s > 0 else 1.0
    within = max(shape(i * step_s) for i in range(int(min(duration_s, 86_400) / step_s) + 1))
    at = next((float(i) for i in range(86_401) if shape(float(i)) >= 0.999 * shape.peak), None)
    return within, at


def integrate(
    rate_at: RateFunction, start: float, end: float, max_step_s: float, edges: Sequence[float] = ()
) -> float:
    """Events ``rate_at`` asks for over ``[start, end]``: trapezoids of at most ``max_step_s``
    (exact for ramps; a step or spike edge inside one costs at most half a step's worth). No
    trapezoid crosses one of ``edges``, where a steered rate jumps (a pause, a new rate): each
    part ends on the rate just before the edge, so the pacer and the schedule check count a
    steered run alike, to the event.

    Example: ``integrate(lambda t: 100.0, 0, 2, 0.01) == 200.0``.
    """
    bounds = [start, *(e for e in edges if start < e < end), end]
    total = 0.0
    for a, b in itertools.pairwise(bounds):
        steps = max(1, math.ceil((b - a) / max_step_s))
        t, rate = a, rate_at(a)
        for i in range(1, steps + 1):
            t_next = b if i == steps else a + (b - a) * i / steps
            # The last trapezoid ends just inside the part: the rate there, not the next setting's.
            rate_next = rate_at(math.nextafter(b, a) if i == steps else t_next)
            total += (rate + rate_next) / 2 * (t_next - t)
            t, rate = t_next, rate_next
    return total


class DueCounter:
    """How many events are due by an elapsed time: the integral of ``rate_at``.

    Pure arithmetic, no clock, so tests drive it with any sequence of times. The fractional
    part is carried, so low rates still come out exact over time. ``edges`` are the times a
    steered rate jumps (Steering.edges).
    """

    def __init__(
        self,
        rate_at: RateFunction,
        max_step_s: float = 0.001,
        edges: Callable[[], Sequence[float]] = tuple,
    ) -> None:
        self._rate_at = rate_at
        self.max_step_s = max_step_s
        self._edges = edges
        self._last_t = 0.0
        self._last_rate = rate_at(0.0)
        self.due = 0.0
        self.issued = 0

    @property
    def counted_to_s(self) -> float:
        """The elapsed time up to which events have been counted due."""
        return self._last_t

    @property
    def current_rate(self) -> float:
        """What the shape asks for at the latest elapsed time (events/s)."""
        return self._last_rate

    def advance(self, elapsed_s: float) -> int:
        """Events newly due between the previous call and ``elapsed_s``."""
        if elapsed_s > self._last_t:
            self.due += integrate(self._rate_at, self._last_t, elapsed_s, self.max_step_s, self._edges())
            self._last_t, self._last_rate = elapsed_s, self._rate_at(elapsed_s)
        # The epsilon absorbs float error from summing many sub-steps (99.99999 is 100).
        n = int(self.due + 1e-6) - self.issued
        if n <= 0:
            return 0
        self.issued += n
        return n


async def _wait_or_stop(stop: asyncio.Event, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=timeout_s)


Waiter = Callable[[asyncio.Event, float], Awaitable[None]]

# The last tick lands just after the deadline (a tick_s later at most on an idle loop, later on
# a busy one) and makes the events due by it: events made this soon after the deadline are on
# time. Without it, a tick whose offers ended a moment past the deadline stopped generation
# before the last tick, a shortfall no stream caused (399 of 400 events on a loaded machine).
LATE_TOLERANCE_S = 0.25


class SimulatedClock:
    """Elapsed time of a backfill (``run --sim-start/--sim-end``): it moves only when the pacer
    waits, by one tick, so the events of a simulated hour are made as fast as the streams take
    them (backpressure still holds generation back), each stamped with its simulated time.

    Example: ``c = SimulatedClock(); await c.wait(stop, 0.1); c() == 0.1``.
    """

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def wait(self, _stop: asyncio.Event, timeout_s: float) -> None:
        self.now += timeout_s
        await asyncio.sleep(0)  # let delivery run between ticks


class Pacer:
    """Yields how many events are due at each tick until ``duration_s`` has passed.

    Open loop: what is due depends only on the clock, so if the consumer was slow (a
    blocked send), the next tick yields everything that fell due meanwhile.
    """

    def __init__(
        self,
        rate_at: RateFunction,
        duration_s: float,
        tick_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
        wait: Waiter = _wait_or_stop,
        edges: Callable[[], Sequence[float]] = tuple,
    ) -> None:
        self.duration_s = duration_s
        self.tick_s = tick_s
        self.clock = clock
        self._wait = wait
        self.counter = DueCounter(rate_at, edges=edges)
        self.started_at: float | None = None  # set by the first tick
        self.ends_at = math.inf  # set by the first tick; stays inf for a run without end

    def elapsed_s(self) -> float:
        """Seconds since the first tick (0 before it): where a live change takes effect."""
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    @property
    def issued(self) -> int:
        return self.counter.issued

    def past_end(self) -> bool:
        """Whether ``duration_s`` has passed since the first tick, by more than
        ``LATE_TOLERANCE_S``: a consumer still working through a late tick stops there (what was
        not made on time is the shortfall)."""
        return self.clock() >= self.ends_at + LATE_TOLERANCE_S

    async def ticks(self, stop: asyncio.Event) -> AsyncIterator[int]:
        start = self.started_at = self.clock()
        self.ends_at = start + self.duration_s
        while not stop.is_set():
            elapsed = min(self.clock() - start, self.duration_s)
            n = self.counter.advance(elapsed)
            if n > 0:
                yield n
            if elapsed >= self.duration_s:
                return
            await self._wait(stop, self.tick_s)
