"""Where every record a stream's channel holds is, and the one way out other than acceptance.

A record taken by the channel is in exactly one place until it is accepted or given up: the
open batch (the accumulator), a full batch waiting to be sent (``new``), a batch whose backoff
is over (``retries``, sent before new ones), a batch waiting out its backoff (a timer), or a
call in flight. ``take`` moves the next batch into flight; ``give_up`` spools a batch with its
reason and counts it, and is the only place records leave other than by acceptance
(``accepted``). While the stream is stopped or the end of the run forbids new calls
(``refuse_with``), what would wait for a call is given up instead.
"""

from __future__ import annotations

import asyncio
from collections import deque

from producer.delivery.batching import Accumulator, Batch
from producer.delivery.spool import Spool, SpoolError
from producer.firehose.wire import WireFormat
from producer.telemetry.cost import BILLING_INCREMENT_BYTES, billed_bytes
from producer.telemetry.stats import Reason, StreamStats


class Ledger:
    """The records of one stream's channel, place by place, and their books (``stats``)."""

    def __init__(
        self,
        name: str,
        wire: WireFormat,
        spool: Spool,
        stats: StreamStats,
        accumulator: Accumulator,
        linger_s: float,
        max_held: int,
    ) -> None:
        self.name = name
        self.wire = wire
        self.stats = stats
        self.max_held = max_held
        self.accumulator = accumulator
        # False while every record taken was 1 to 5,120 bytes: each then bills one 5 KB
        # increment, and billed bytes need no per-record work (see billed).
        self.exact_billing = False
        # Set when new work may be sent: a batch queued or a backoff over.
        self.work = asyncio.Event()
        # Clear while the stream holds max_held records or more (--on-full block waits on it).
        self.space = asyncio.Event()
        self.space.set()
        # Set once closing and nothing is held any more.
        self.drained = asyncio.Event()
        self.closing = False
        # Why what waits for a call is given up instead (the end of the run is near), if so.
        self.end: tuple[Reason, str] | None = None
        self._spool = spool
        self._linger_s = linger_s
        self._linger: asyncio.TimerHandle | None = None
        self._new: deque[Batch] = deque()
        self._retries: deque[Batch] = deque()
        self._backoff: dict[int, tuple[Batch, asyncio.TimerHandle]] = {}
        self._in_flight: dict[int, Batch] = {}

    # -- in ------------------------------------------------------------------------------------

    def arm_linger(self) -> None:
        if self._linger is None and self.accumulator.pending:
            # One timer per open batch, from its first record: no polling loop.
            self._linger = asyncio.get_running_loop().call_later(self._linger_s, self.flush_open)

    def flush_open(self) -> None:
        """The open batch goes to the queue now (its linger is over, or the channel closes)."""
        batch = self.accumulator.drain()
        if batch is not None:
            self.enqueue(batch)
        else:
            self._cancel_linger()

    def enqueue(self, batch: Batch) -> None:
        """A full (or lingered) batch, to be sent after those already waiting."""
        self._cancel_linger()
        if not self._refused(batch):
            self._new.append(batch)
            self.work.set()

    # -- out to a call and back ----------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """A batch waits to be sent; when none does, ``work`` is cleared to be waited on."""
        if self._retries or self._new:
            return True
        self.work.clear()
        return False

    def take(self) -> Batch:
        """The next batch to send (``waiting`` said there is one), retries first; it is in
        flight from now on, until ``landed``."""
        batch = (self._retries or self._new).popleft()
        self._in_flight[id(batch)] = batch
        return batch

    def landed(self, batch: Batch) -> None:
        """``batch``'s call is over (answered or failed): it is no longer in flight."""
        self._in_flight.pop(id(batch), None)

    def back_off(self, batch: Batch, delay_s: float) -> None:
        """What is left of ``batch`` goes again after ``delay_s``, before new batches."""
        if self._refused(batch):
            return
        self.stats.retried_records += len(batch.data)
        key = id(batch)
        handle = asyncio.get_running_loop().call_later(delay_s, self._backoff_over, key)
        self._backoff[key] = (batch, handle)

    def retry_first(self, parts: list[Batch]) -> None:
        """``parts`` (a split batch's halves) go first, in order."""
        kept = [p for p in parts if not self._refused(p)]
        self._retries.extendleft(reversed(kept))
        if kept:
            self.work.set()

    def _backoff_over(self, key: int) -> None:
        entry = self._backoff.pop(key, None)
        if entry is not None and not self._refused(entry[0]):
            self._retries.append(entry[0])
            self.work.set()

    def _refused(self, batch: Batch) -> bool:
        """Give ``batch`` up if nothing may wait for a call now: the stream stopped, or the end
        of the run is near. True when it was given up."""
        if self.stats.stopped_reason:
            self.give_up(batch, Reason.STREAM_STOPPED, "", self.stats.stopped_reason)
            return True
        if self.end is not None:
            reason, message = self.end
            self.give_up(batch, reason, "", message)
            return True
        return False

    # -- leaving -------------------------------------------------------------------------------

    def accepted(self, count: int, size: int) -> None:
        """``count`` records (``size`` bytes) were accepted."""
        if not count:
            return
        self.stats.accepted += count
        self.stats.bytes_sent += size
        self._release(count)

    def billed(self, data: list[bytes], failed: list[int]) -> int:
        """Bytes Firehose bills for the records of ``data`` not at the ``failed`` indexes (the
        accepted ones), each rounded up to 5 KB (producer/telemetry/cost.py).

        While every record this channel took was 1 to 5,120 bytes (the common case: the mixed
        profile's are ~0.5 KB), each bills exactly one increment and this is O(1); after any
        other size it is a size per accepted record (~0.4 us each)."""
        if not self.exact_billing:
            return (len(data) - len(failed)) * BILLING_INCREMENT_BYTES
        if failed:
            skip = set(failed)
            data = [d for i, d in enumerate(data) if i not in skip]
        return billed_bytes(map(self.wire.size, data))

    def give_up(self, batch: Batch, reason: Reason, code: str, message: str, held: bool = True) -> None:
        """Spool the records of ``batch`` with ``reason`` and count them; ``batch`` is left
        empty. ``held``: they were counted inside the channel (not refused on the way in)."""
        count = len(batch.data)
        if not count:
            return
        try:
            self._spool.write(self.name, batch, reason, code, message, self.wire.decode)
        except SpoolError:
            # Neither accepted nor spooled: counted as lost, and the run stops taking records
            # it could not account for (app.py watches the spool).
            self.stats.lost += count
        else:
            self.stats.dead_lettered += count
            self.stats.dead_by_reason[reason.value] += count
        batch.clear()
        if held:
            self._release(count)

    def give_up_waiting(self, reason: Reason, code: str, message: str) -> None:
        """Give up everything that is not in flight: backoff timers, retries, the queue, the
        open batch (a stopped stream, or the end of the run)."""
        batches = []
        for batch, handle in self._backoff.values():
            handle.cancel()
            batches.append(batch)
        self._backoff.clear()
        batches.extend(self._retries)
        self._retries.clear()
        batches.extend(self._new)
        self._new.clear()
        self._cancel_linger()
        open_batch = self.accumulator.drain()
        if open_batch is not None:
            batches.append(open_batch)
        for batch in batches:
            self.give_up(batch, reason, code, message)
        self._check_drained()

    def give_up_in_flight(self, message: str) -> None:
        """The calls still in flight were cut off unanswered: they may or may not have been
        accepted, and nobody can know (possible duplicates)."""
        unknown = list(self._in_flight.values())
        self._in_flight.clear()
        for batch in unknown:
            self.stats.possible_duplicates += batch.mark_unsure()
            self.give_up(batch, Reason.OUTCOME_UNKNOWN, "", f"call unanswered when cut off ({message})")

    def stop(self, reason: str, code: str) -> None:
        """The stream cannot be used any more: give up what waits (calls in flight give theirs
        up when they answer), which frees the generator."""
        if not self.stats.stopped_reason:
            self.stats.stopped_reason = reason
        self.give_up_waiting(Reason.STREAM_STOPPED, code, reason)

    # -- space and the end ---------------------------------------------------------------------

    def must_wait(self, drop_when_full: bool) -> bool:
        """Full under ``--on-full block``: the producer waits until a send frees space."""
        stats = self.stats
        if stats.held >= self.max_held and not drop_when_full and not stats.stopped_reason:
            self.space.clear()
            return True
        return False

    def _release(self, count: int) -> None:
        self.stats.held -= count
        if self.stats.held < self.max_held:
            self.space.set()
        self._check_drained()

    def _check_drained(self) -> None:
        if self.closing and self.stats.held == 0:
            self.drained.set()

    def start_closing(self) -> None:
        self.closing = True
        self.flush_open()
        self._check_drained()

    def _cancel_linger(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
