"""What every generator shares: the event type, ids, timestamps and transition tables."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from datetime import datetime
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


class UserSource(Protocol):
    """A generator a profile declares itself (``kind: template``/``kind: kdg``): its parts live
    in producer/templates/, which builds it for a run; the registry only asks for it."""

    @property
    def kind(self) -> str: ...

    @property
    def text_records(self) -> bool: ...

    def generator(self, seed: int | None) -> EventGenerator: ...


# A text record (a KDG template of CSV or a log line) carries the trace as the run id, then a
# separator of at most this many non-digits, then the seq: templates/kdg.py checks templates
# against it and audit/trace.py reads records with it.
MAX_TEXT_GAP = 24


def parse_time(value: Any) -> float | None:
    """ISO-8601 (``2026-01-01T00:00:00.123Z``) or Unix seconds/milliseconds to Unix seconds."""
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000.0 if value > 1e11 else float(value)
    return None


class EventIds:
    """UUID-shaped (version 4) event ids from the run's RNG, so a seed reproduces them.

    Made 512 at a time: one big random integer with the version nibble 4 and variant bits 10
    (RFC 9562) masked in, hexed once, its digits laid out with the dashes by strided copies,
    and cut into ids by one regex pass. ~0.13 us an id against ~0.46 us one at a time (an id
    per event made that 8% of the producer's CPU). The ids draw from an RNG of their own,
    seeded from the generator's, so drawing ahead does not shift its other draws."""

    _CHUNK = 512
    _ONE_CLEAR = (((1 << 128) - 1) ^ ((0xF << 76) | (0x3 << 62))).to_bytes(16, "big")
    _ONE_SET = ((0x4 << 76) | (0x2 << 62)).to_bytes(16, "big")
    _CLEAR = int.from_bytes(_ONE_CLEAR * _CHUNK, "big")
    _SET = int.from_bytes(_ONE_SET * _CHUNK, "big")
    _DASHES = (8, 13, 18, 23)  # in the 36 characters of 8-4-4-4-12
    _DIGITS = (*range(8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36))
    _ID = re.compile(".{36}", re.DOTALL)

    def __init__(self, rng: random.Random) -> None:
        self._bits = random.Random(rng.getrandbits(64)).getrandbits
        self._ready: list[str] = []

    def _refill(self) -> None:
        n = self._CHUNK
        bits = (self._bits(128 * n) & self._CLEAR) | self._SET
        digits = bits.to_bytes(16 * n, "big").hex().encode()
        text = bytearray(36 * n)
        for digit, at in enumerate(self._DIGITS):
            text[at::36] = digits[digit::32]  # the digit-th hex digit of every id
        for at in self._DASHES:
            text[at::36] = b"-" * n
        self._ready = self._ID.findall(text.decode())
        self._ready.reverse()  # popped from the end: ids come out in the order drawn

    def next(self) -> str:
        if not self._ready:
            self._refill()
        return self._ready.pop()


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
