"""During a run: a snapshot of the figures every ``judge.TICK_S`` for the live checks, and the
run-wide abort marker (``--results-url``'s RUN_ID/abort.json, results/store.AbortMarker):
written when an abort check fires here, polled so that one shard's abort stops every shard.

Stopping is by ``halt``: generation ends as at the end of ``--duration``, and the run drains
normally (app.py); ``aborted`` says why, for the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from producer.checks.expr import Check
from producer.checks.figures import Figures, StreamFigures
from producer.checks.judge import TICK_S, Judge
from producer.errors import LoadgenError
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.stats import StreamStats, expected_events


class AbortBoard(Protocol):
    """Where the shards of a run leave and look for the abort marker."""

    @property
    def where(self) -> str: ...

    @property
    def poll_s(self) -> float: ...

    async def read(self) -> bytes | None: ...

    async def write(self, body: bytes) -> None: ...


class Watch:
    def __init__(
        self,
        checks: Sequence[Check],
        stats: Sequence[StreamStats],
        histograms: dict[str, StreamHistograms],
        rate_at: Callable[[float], float],
        halt: asyncio.Event,
        board: AbortBoard | None = None,
        shard: str = "",
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.judge = Judge(checks)
        self._stats = stats
        self._histograms = histograms
        self._rate_at = rate_at
        self._halt = halt
        self._board = board
        self._shard = shard
        self._clock = clock
        self._asked = 0.0
        self._asked_to = 0.0
        self.started = clock() if started is None else started  # when generation started
        self.aborted: dict[str, Any] | None = None
        self.halted_at_s: float | None = None  # when this watch stopped the run

    @property
    def needed(self) -> bool:
        return any(c.live for c in self.judge.checks) or self._board is not None

    def elapsed(self) -> float:
        return self._clock() - self.started

    def snapshot(self) -> Figures:
        at_s = self.elapsed()
        if at_s > self._asked_to:  # the schedule's events so far, added up a step at a time
            since = self._asked_to
            self._asked += expected_events(lambda t: self._rate_at(since + t), at_s - since)
            self._asked_to = at_s
        return Figures(
            at_s=at_s,
            asked=self._asked,
            streams={s.name: StreamFigures.of_stats(s, self._histograms[s.name]) for s in self._stats},
        )

    async def run(self) -> None:
        """Until cancelled, or until the run is stopped by a check here or elsewhere."""
        live = any(c.live for c in self.judge.checks)
        poll_s = self._board.poll_s if self._board is not None else 0.0
        next_poll = self._clock()
        while not self._halt.is_set():
            await asyncio.sleep(TICK_S)
            if live:
                fired = self.judge.observe(self.snapshot())
                if fired is not None:
                    await self._abort(fired)
                    return
            if self._board is not None and self._clock() >= next_poll:
                next_poll = self._clock() + poll_s
                if await self._marker():
                    return

    async def _abort(self, check: Check) -> None:
        value = next((v.value for v in self.judge.verdicts(self.snapshot()) if v.check is check), None)
        self.aborted = {
            "check": check.text,
            "value": None if value is None else round(value, 6),
            "at_s": round(self.elapsed(), 1),
        }
        if self._shard:
            self.aborted["shard"] = self._shard
        print(
            f"aborting: check {check.text!r} failed at {self.aborted['at_s']}s "
            f"(value {self.aborted['value']}); draining",
            file=sys.stderr,
        )
        self._halt_now()
        if self._board is not None:
            try:
                await self._board.write(orjson.dumps(self.aborted))
            except LoadgenError as exc:
                print(f"warning: the other shards were not told to stop: {exc}", file=sys.stderr)

    async def _marker(self) -> bool:
        assert self._board is not None
        try:
            body = await self._board.read()
        except LoadgenError as exc:
            print(f"warning: cannot read the run's abort marker: {exc}", file=sys.stderr)
            return False
        if body is None:
            return False
        marker: dict[str, Any] = {}
        with contextlib.suppress(orjson.JSONDecodeError):
            loaded = orjson.loads(body)
            marker = loaded if isinstance(loaded, dict) else {}
        self.aborted = {
            "check": marker.get("check"),
            "by": marker.get("shard"),
            "at_s": round(self.elapsed(), 1),
        }
        print(
            f"aborting: {marker.get('shard') or 'another shard'} of this run failed check "
            f"{marker.get('check')!r} ({self._board.where}); draining",
            file=sys.stderr,
        )
        self._halt_now()
        return True

    def _halt_now(self) -> None:
        self.halted_at_s = self.elapsed()
        self._halt.set()
