"""Rate shapes as pure functions of elapsed seconds, and the open-loop pacer.

The pacer decides how many events are due from the schedule alone, never from how fast
sends complete, so slow sends cannot hide load (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

RateShape = Callable[[float], float]


def constant(rate: float) -> RateShape:
    """Always ``rate`` events per second.

    Example: ``constant(200)(12.5) == 200``.
    """

    def rate_at(_elapsed_s: float) -> float:
        return rate

    return rate_at


def scaled(shape: RateShape, factor: float) -> RateShape:
    """``shape`` multiplied by ``factor`` (``--rate`` scales a profile's shape)."""

    def rate_at(elapsed_s: float) -> float:
        return shape(elapsed_s) * factor

    return rate_at


class Pacer:
    """Yields how many events are due at each tick until ``duration_s`` has passed.

    Due events are the integral of ``rate_at`` over elapsed time; the fractional part is
    carried, so low rates still come out exact over time.
    """

    def __init__(
        self,
        rate_at: RateShape,
        duration_s: float,
        tick_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_at = rate_at
        self.duration_s = duration_s
        self.tick_s = tick_s
        self.clock = clock
        self.due = 0.0
        self.issued = 0

    async def ticks(self, stop: asyncio.Event) -> AsyncIterator[int]:
        start = self.clock()
        last = 0.0
        while not stop.is_set():
            elapsed = min(self.clock() - start, self.duration_s)
            # Trapezoid over the step keeps ramps and sines accurate at coarse ticks.
            self.due += (self.rate_at(last) + self.rate_at(elapsed)) / 2 * (elapsed - last)
            last = elapsed
            n = int(self.due) - self.issued
            if n > 0:
                self.issued += n
                yield n
            if elapsed >= self.duration_s:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.tick_s)
