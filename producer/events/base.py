"""What every generator shares: the event type, ids and timestamps."""

from __future__ import annotations

import random
import time
from typing import Any, Protocol

Event = dict[str, Any]


class EventGenerator(Protocol):
    source: str

    def next_event(self, now: float) -> Event:
        """One event stamped at wall-clock ``now`` (seconds since the epoch)."""
        ...


class EventIds:
    """UUID-shaped event ids from the run's RNG, so a seed reproduces them."""

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def next(self) -> str:
        h = f"{self._bits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


class Timestamps:
    """ISO-8601 UTC with millisecond precision and a Z; the seconds part is cached."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, ts: float) -> str:
        second = int(ts)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((ts - second) * 1000):03d}Z"
