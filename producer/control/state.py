"""What can be changed in a running run, who changed it and when.

A ``Steerable`` is the run as the control sees it: one process (producer/control/run.py) or
the parent of ``--workers`` processes (producer/workers/steer.py). ``RunControl`` checks a
change, applies it, logs one line and keeps it for the summary's ``control`` section; the
HTTP routes, the terminal keys and the control document all go through it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

STOP_REASON = "stop asked through the control"


class ControlError(ValueError):
    """A change that cannot be made; the message says why (HTTP 400, ctl exit 2)."""


class Steerable(Protocol):
    @property
    def rate(self) -> float: ...

    @property
    def paused(self) -> bool: ...

    async def set_rate(self, rate: float) -> None: ...

    async def set_paused(self, paused: bool) -> None: ...

    async def stop(self, reason: str) -> None: ...

    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Change:
    at: str  # UTC, ISO 8601
    elapsed_s: float  # since the control started (the run's start)
    change: str  # "rate 200 -> 800", "pause", "resume", "stop"
    who: str  # "api 127.0.0.1", "keys", "document s3://bucket/key"


def parse_patch(body: object) -> tuple[float | None, bool | None]:
    """``{"rate": N}`` and/or ``{"paused": true|false}``; anything else is a ControlError."""
    if not isinstance(body, Mapping):
        raise ControlError('send a JSON object such as {"rate": 800} or {"paused": true}')
    unknown = sorted(set(body) - {"rate", "paused"})
    if unknown:
        raise ControlError(f"unknown field {unknown[0]!r}: only rate and paused can be changed")
    rate, paused = check_rate(body.get("rate")), check_flag("paused", body.get("paused"))
    if rate is None and paused is None:
        raise ControlError('nothing to change: send {"rate": N} and/or {"paused": true|false}')
    return rate, paused


def check_rate(rate: object) -> float | None:
    """A rate as sent (JSON): None, or a number of events per second > 0."""
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
        raise ControlError(f"rate must be a number of events per second > 0, got {rate!r}")
    return float(rate)


def check_flag(name: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ControlError(f"{name} must be true or false, got {value!r}")
    return value


class RunControl:
    """Applies changes to a Steerable, logs each one (``log``) and keeps them all."""

    def __init__(
        self,
        target: Steerable,
        log: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.log = log
        self.clock = clock
        self.started = clock()
        self.changes: list[Change] = []
        self.stopping = False

    def _record(self, change: str, who: str) -> None:
        entry = Change(
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            elapsed_s=round(self.clock() - self.started, 3),
            change=change,
            who=who,
        )
        self.changes.append(entry)
        self.log(f"control: {change} ({who}, at {entry.elapsed_s:.1f}s)")

    async def patch(self, rate: float | None, paused: bool | None, who: str) -> None:
        if self.stopping:
            raise ControlError("the run is stopping; nothing can be changed any more")
        if rate is not None and rate != self.target.rate:
            before = self.target.rate
            await self.target.set_rate(rate)
            self._record(f"rate {before:g} -> {rate:g} events/s", who)
        if paused is not None and paused != self.target.paused:
            await self.target.set_paused(paused)
            self._record("pause" if paused else "resume", who)

    async def stop(self, who: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._record("stop", who)
        await self.target.stop(f"{STOP_REASON} ({who})")

    def status(self) -> dict[str, Any]:
        return self.target.status() | {
            "state": "stopping" if self.stopping else ("paused" if self.target.paused else "running"),
            "changes": [asdict(c) for c in self.changes[-20:]],
        }

    def summary(self, paused_s: float) -> dict[str, Any]:
        """The summary's ``control`` section."""
        return {"paused_s": round(paused_s, 3), "changes": [asdict(c) for c in self.changes]}
