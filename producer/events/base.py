"""What every generator shares: the event type, ids, timestamps and transition tables."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, Protocol

Event = dict[str, Any]

# Event types that carry an ``amount`` (a number); no other event has one.
PURCHASE_TYPES = frozenset({"purchase", "in_app_purchase"})
# Fields every event carries, whatever its source.
CORE_FIELDS = ("event_id", "user_id", "event_type", "timestamp", "source")


class EventGenerator(Protocol):
    source: str

    def next_event(self, now: float) -> Event:
        """One event stamped at wall-clock ``now`` (seconds since the epoch)."""
        ...


class EventIds:
    """UUID-shaped (version 4) event ids from the run's RNG, so a seed reproduces them."""

    # Version nibble 4 and variant bits 10, as RFC 9562 requires of a random UUID, set on the
    # integer before formatting (one hex() and slices: ~0.45 us, a third less than fixing up
    # the hex digits afterwards).
    _CLEAR = ((1 << 128) - 1) ^ ((0xF << 76) | (0x3 << 62))
    _SET = (0x4 << 76) | (0x2 << 62)

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def next(self) -> str:
        h = ((self._bits(128) & self._CLEAR) | self._SET).to_bytes(16, "big").hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Timestamps:
    """ISO-8601 UTC with millisecond precision and a Z; the seconds part is cached because
    strftime per event would cost more than the rest of the event."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        # The generation loop stamps every event of one pacer tick with the same ``now``:
        # the last answer is the next one too, most of the time.
        self._last_ts = -1.0
        self._last = ""

    def format(self, ts: float) -> str:
        if ts == self._last_ts:
            return self._last
        second = int(ts)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._last_ts = ts
        self._last = f"{self._prefix}.{int((ts - second) * 1000):03d}Z"
        return self._last


class Transitions:
    """Next-step choice for a session state machine.

    ``convert`` is the configured conversion step taken with probability ``rate``; the rest
    of the probability mass is split among ``others`` by their relative weights, where
    ``None`` ends the session. Precomputed so the hot path is one random() and a short scan.
    """

    def __init__(self, convert: str | None, rate: float, others: Sequence[tuple[str | None, float]]) -> None:
        self.convert = convert
        self.rate = rate if convert is not None else 0.0
        total = sum(w for _, w in others)
        acc = 0.0
        self._edges: list[tuple[float, str | None]] = []
        for step, weight in others:
            acc += weight / total
            self._edges.append((self.rate + (1.0 - self.rate) * acc, step))

    def choose(self, roll: float) -> str | None:
        if roll < self.rate:
            return self.convert
        for edge, step in self._edges:
            if roll < edge:
                return step
        return self._edges[-1][1]
