"""A buffer governed by buffering hints, and its timer.

A buffer is flushed when it holds SizeInMBs or when IntervalInSeconds have passed since it
opened (its first record came in), whichever comes first.
https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html
A stream has one such buffer per stage: the Lambda processor's (BufferSizeInMBs /
BufferIntervalInSeconds before the function runs), the destination's and the AllDocuments
backup's (both filled with the function's output, so their size counts transformed bytes).
https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
A buffer keeps the hints it opened with until it is flushed: an UpdateDestination governs the
buffers opened after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Zero buffering (IntervalInSeconds 0): AWS delivers "within a few seconds" without buffering
# (https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html). The local Firehose
# models it as a buffer flushed 1 s after it opens: what arrives within that second goes out
# together, so a busy stream writes about one object per second rather than one per call.
ZERO_BUFFER_DELAY_S = 1.0

Hints = Callable[[], tuple[int, float]]


@dataclass(slots=True)
class Buffer:
    limit_bytes: int
    interval_s: float
    opened_at: float = 0.0
    chunks: list[bytes] = field(default_factory=list)
    # (records buffered after this add, their arrival in Firehose): one entry per run of equal
    # arrival times (one per PutRecordBatch call at ingest), not one per record.
    marks: list[tuple[int, float]] = field(default_factory=list)
    size: int = 0
    records: int = 0
    first_arrival: float = 0.0
    last_arrival: float = 0.0
    # Error-record envelopes (processing failures) that ride along to this buffer's flush.
    failed: list[bytes] = field(default_factory=list)
    # True when the records are a Lambda processor's output (add_processed), not raw input.
    processed: bool = False

    @property
    def empty(self) -> bool:
        return not self.records and not self.failed

    @property
    def deadline(self) -> float:
        return self.opened_at + (self.interval_s if self.interval_s > 0 else ZERO_BUFFER_DELAY_S)

    def arrivals(self) -> list[float]:
        return expand_marks(self.marks)


def expand_marks(marks: Sequence[tuple[int, float]]) -> list[float]:
    """One arrival time per record from the run-length marks."""
    out: list[float] = []
    done = 0
    for end, at in marks:
        out.extend([at] * (end - done))
        done = end
    return out


class BufferStage:
    """One buffer and the timer that flushes it at its deadline; ``on_flush`` gets the full
    buffer (on the event loop) and must not block."""

    def __init__(
        self,
        name: str,
        hints: Hints,
        on_flush: Callable[[Buffer], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._hints = hints
        self._on_flush = on_flush
        self._clock = clock
        self.buffer = self._fresh()
        self._has_data = asyncio.Event()
        self._flushed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _fresh(self) -> Buffer:
        return Buffer(*self._hints())

    def start(self) -> None:
        self._task = asyncio.create_task(self._timer(), name=f"buffer-timer:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def rehint(self) -> None:
        """The hints changed: an empty buffer takes them now, an open one when it is flushed."""
        if self.buffer.empty:
            self.buffer = self._fresh()

    def _open(self, buf: Buffer, first_arrival: float) -> None:
        buf.opened_at = self._clock()
        buf.first_arrival = first_arrival
        self._has_data.set()

    def add(self, records: list[bytes], size: int, arrival: float) -> None:
        """Records that arrived together (one call)."""
        buf = self.buffer
        if buf.empty:
            self._open(buf, arrival)
        buf.chunks.extend(records)
        buf.size += size
        buf.records += len(records)
        buf.marks.append((buf.records, arrival))
        buf.last_arrival = arrival
        if buf.size >= buf.limit_bytes:
            self.flush()

    def add_processed(
        self,
        records: Sequence[bytes],
        arrivals: Sequence[float],
        failed: Sequence[bytes],
        first_arrival: float,
    ) -> None:
        """A processor's output: each record with its own arrival time, and the error envelopes."""
        if not records and not failed:
            return
        buf = self.buffer
        if buf.empty:
            self._open(buf, min(arrivals[0], first_arrival) if arrivals else first_arrival)
        buf.processed = True
        buf.failed.extend(failed)
        previous: float | None = None
        for record, at in zip(records, arrivals, strict=True):
            buf.chunks.append(record)
            buf.size += len(record)
            buf.records += 1
            if at == previous:
                buf.marks[-1] = (buf.records, at)
            else:
                buf.marks.append((buf.records, at))
                previous = at
        if arrivals:
            buf.last_arrival = max(buf.last_arrival, arrivals[-1])
        if buf.size >= buf.limit_bytes:
            self.flush()

    def flush(self) -> None:
        buf = self.buffer
        if buf.empty:
            return
        self.buffer = self._fresh()
        self._has_data.clear()
        self._flushed.set()
        self._on_flush(buf)

    def oldest_arrival(self) -> float | None:
        """The arrival time of the oldest record waiting here (DataFreshness), or None."""
        return self.buffer.first_arrival if self.buffer.records else None

    async def _timer(self) -> None:
        # One wake-up per buffer at its deadline, or sooner when the buffer is flushed by size
        # (the next one may have a nearer deadline: new hints); no polling.
        while True:
            await self._has_data.wait()
            buf = self.buffer
            self._flushed.clear()
            try:
                await asyncio.wait_for(self._flushed.wait(), max(0.0, buf.deadline - self._clock()))
                continue
            except TimeoutError:
                pass
            if self.buffer is buf and not buf.empty:
                self.flush()
