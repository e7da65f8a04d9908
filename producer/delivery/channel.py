"""One stream's channel: what the producer offers it, the dispatcher, and the end of the run.

Shape (after aiokafka's producer): records wait in the ledger (ledger.py: the open batch, the
queue, retries, backoff timers, calls in flight); a dispatcher task takes ready batches,
retries first, through the rate gate (ratecontrol.py), into at most ``max_in_flight``
concurrent calls, each sent and settled by the sender (sender.py). A failed remainder waits out
its backoff on a timer (not in a worker), then goes to the front. Only the channel and the
ledger's timers sleep on the delays ``retry.py`` and ``ratecontrol.py`` decide.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from producer.delivery.batching import Accumulator, Batch, single
from producer.delivery.ledger import Ledger
from producer.delivery.ratecontrol import AdaptiveRate, RateControlSettings
from producer.delivery.retry import RetryPolicy
from producer.delivery.sender import BatchClient, Sender
from producer.delivery.spool import Spool
from producer.firehose import limits
from producer.firehose.wire import WireFormat
from producer.telemetry.cost import BILLING_INCREMENT_BYTES
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.stats import Reason, StreamStats

__all__ = ["BatchClient", "ChannelSettings", "FullPolicy", "Inlet", "StreamChannel"]

FullPolicy = Literal["block", "drop"]


class Inlet(Protocol):
    """Where a run offers one stream's records: its StreamChannel, or a stage in front of it
    (packing.PackingStage). ``wire`` is the form records are offered in."""

    @property
    def name(self) -> str: ...
    @property
    def wire(self) -> WireFormat: ...
    @property
    def stats(self) -> StreamStats: ...
    @property
    def usable(self) -> bool: ...
    def offer(self, data: bytes) -> Awaitable[None] | None: ...
    def offer_many(self, items: list[bytes], sizes: list[int]) -> bool: ...
    async def wait_for_space(self) -> None: ...
    def start(self) -> None: ...
    async def close(self, wait_s: float, reason: Reason = ..., message: str = ...) -> None: ...
    def cut_short(self, wait_s: float, reason: Reason, message: str) -> None: ...
    async def abort(self) -> None: ...


# The dispatcher re-checks the gate at least this often, so a rising limit or a retry that became
# ready is picked up without waiting out a long debt computed under an older, lower limit.
MAX_GATE_SLEEP_S = 0.25


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    linger_s: float = 0.2
    max_in_flight: int = 8
    # Backpressure bound: records held per stream (open batch + queued + in flight + waiting to
    # retry). At the mixed profile's ~0.5 KB a record, 50,000 is ~25 MB of data per stream.
    max_held_records: int = 50_000
    on_full: FullPolicy = "block"
    max_batch_records: int = limits.MAX_BATCH_RECORDS
    max_batch_bytes: int = limits.MAX_BATCH_BYTES
    rate_control: RateControlSettings = field(default_factory=RateControlSettings)
    # Total deadline of one PutRecordBatch call, connect to last byte of the answer. The
    # transport's own timeouts are per socket operation, so an endpoint that dribbles a byte
    # every few seconds never trips them. 30 s is far above a healthy call (well under a
    # second, and a full 4 MiB batch takes ~17 s even at 2 Mbit/s), yet bounds a stuck one;
    # the records of a call cut here are retried as "outcome unknown" (possible duplicates).
    call_timeout_s: float = 30.0


class StreamChannel:
    """Everything between "the producer has a record for stream S" and "S accepted it"."""

    def __init__(
        self,
        name: str,
        client: BatchClient,
        policy: RetryPolicy,
        spool: Spool,
        stats: StreamStats,
        settings: ChannelSettings,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        histograms: StreamHistograms | None = None,
    ) -> None:
        self.name = name
        self.histograms = histograms or StreamHistograms()
        self.wire = client.wire
        self.stats = stats
        self.rate = AdaptiveRate(settings.rate_control, clock)
        stats.rate_probe = lambda: (self.rate.limit(), self.rate.achieved_rate())
        accumulator = Accumulator(settings.max_batch_records, settings.max_batch_bytes, clock)
        self._ledger = ledger = Ledger(
            name, self.wire, spool, stats, accumulator, settings.linger_s, settings.max_held_records
        )
        self._sender = Sender(
            ledger,
            client,
            policy,
            self.rate,
            self.histograms,
            settings.call_timeout_s,
            rng,
            clock,
            wall_clock,
        )
        self._clock = clock
        self._call_timeout_s = settings.call_timeout_s
        # Read on every offer: plain attributes, not lookups through the settings.
        self._acc = accumulator
        self._max_held = settings.max_held_records
        self._drop_when_full = settings.on_full == "drop"
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._aborted = asyncio.Event()
        self._closed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        # The end of close(): when it comes, why, and the timers that bring it.
        self._ended = asyncio.Event()
        self._end_reason = (Reason.SHUTDOWN_DEADLINE, "shutdown grace period ended before delivery")
        self._end_at = math.inf
        self._end_timers: list[asyncio.TimerHandle] = []

    # -- producer side -------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.stats.stopped_reason

    def offer(self, data: bytes) -> Awaitable[None] | None:
        """Take one record. Returns an awaitable only when the caller must wait for space."""
        return self.offer_held(self.wire.encode(data), len(data))

    def offer_held(self, item: bytes, size: int) -> Awaitable[None] | None:
        """``offer`` for a record already in this channel's held form (``self.wire``), of
        ``size`` bytes itself: an event sent to several streams is encoded once."""
        self._take_one(item, size)
        if self._ledger.must_wait(self._drop_when_full):
            return self.wait_for_space()
        return None

    def offer_many(self, items: list[bytes], sizes: list[int]) -> bool:
        """``offer_held`` for records in order (``sizes[i]`` is ``items[i]``'s own length), for
        the generator, which offers a tick's records at once. True when the caller must await
        ``wait_for_space()`` before offering more.

        With ``--on-full block`` every record is taken and then the caller waits, so a stream
        may hold up to ``len(items) - 1`` records more than ``max_held_records``; taking them
        all keeps every stream of a run offered the same events even if the wait is cancelled.
        With ``drop`` the bound is exact."""
        stats = self.stats
        ledger = self._ledger
        n = len(items)
        if not n:
            return False
        largest = max(sizes)
        if not ledger.exact_billing and (largest > BILLING_INCREMENT_BYTES or min(sizes) == 0):
            ledger.exact_billing = True
        if (
            stats.stopped_reason
            or (self._drop_when_full and stats.held + n > self._max_held)
            or largest > limits.MAX_RECORD_BYTES
        ):
            # Some record is refused, dropped or not taken: one at a time, exactly as offer_held.
            for item, size in zip(items, sizes, strict=True):
                self._take_one(item, size)
            return ledger.must_wait(self._drop_when_full)
        stats.sent += n
        stats.held += n
        for full in self._acc.add_many(items, sizes):
            ledger.enqueue(full)
        ledger.arm_linger()
        return ledger.must_wait(self._drop_when_full)

    def _take_one(self, item: bytes, size: int) -> None:
        stats = self.stats
        ledger = self._ledger
        if stats.stopped_reason:
            # A stopped stream takes nothing more; what it held is already spooled.
            stats.not_taken_after_stop += 1
            return
        stats.sent += 1
        if not 0 < size <= BILLING_INCREMENT_BYTES:
            ledger.exact_billing = True
        if size > limits.MAX_RECORD_BYTES:
            message = f"record is {size} bytes; Firehose takes at most {limits.MAX_RECORD_BYTES}"
            ledger.give_up(
                single(item, size, self._clock()), Reason.RECORD_TOO_LARGE, "", message, held=False
            )
            return
        if stats.held >= self._max_held and self._drop_when_full:
            message = "stream could not keep up (--on-full drop)"
            ledger.give_up(single(item, size, self._clock()), Reason.DROPPED, "", message, held=False)
            return
        stats.held += 1
        full = self._acc.add(item, size)
        if full is not None:
            ledger.enqueue(full)
        ledger.arm_linger()

    async def wait_for_space(self) -> None:
        """Until the stream holds fewer than ``max_held_records`` (or stops)."""
        started = self._clock()
        try:
            await self._ledger.space.wait()
        finally:
            self.stats.blocked_s += self._clock() - started

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"sender:{self.name}")
        self._dispatcher.add_done_callback(self._dispatcher_done)

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        # A crashed dispatcher must not leave the generator blocked or close() waiting: stop the
        # stream (which spools what it holds and frees every waiter).
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._ledger.stop(
                f"internal error in the sender: {type(exc).__name__}: {exc}", Reason.PRODUCER_ERROR
            )

    async def close(
        self,
        wait_s: float,
        reason: Reason = Reason.SHUTDOWN_DEADLINE,
        message: str = "shutdown grace period ended before delivery",
    ) -> None:
        """Flush the open batch, then keep sending and retrying until every record held is
        accepted or given up by its own attempts and time-to-live, for ``wait_s`` at most.

        Near the end (``min(call_timeout_s, wait_s / 2)`` before it) no new call starts, and
        what waits is spooled with ``reason``, so the calls in flight can answer and their
        outcome is known; a call still unanswered at the end is cut and its records spooled as
        OutcomeUnknown (possible duplicates). Idempotent; ``abort()`` cuts it short,
        ``cut_short()`` brings the end nearer (a signal during the end-of-run drain)."""
        ledger = self._ledger
        if ledger.closing:
            await self._closed.wait()
            return
        ledger.start_closing()
        self._set_end(wait_s, reason, message)
        waits = [
            asyncio.create_task(ledger.drained.wait()),
            asyncio.create_task(self._aborted.wait()),
            asyncio.create_task(self._ended.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            for timer in self._end_timers:
                timer.cancel()
        if self._aborted.is_set():
            await self._stop_sending(Reason.ABORTED, "run aborted before delivery")
        else:
            await self._stop_sending(*self._end_reason)
        self._closed.set()

    def cut_short(self, wait_s: float, reason: Reason, message: str) -> None:
        """End ``close()`` within ``wait_s`` from now if that is sooner than planned."""
        if not self._ledger.closing or self._closed.is_set():
            return
        if asyncio.get_running_loop().time() + wait_s < self._end_at:
            self._set_end(wait_s, reason, message)

    def _set_end(self, wait_s: float, reason: Reason, message: str) -> None:
        loop = asyncio.get_running_loop()
        for timer in self._end_timers:
            timer.cancel()
        self._end_reason = (reason, message)
        self._end_at = loop.time() + wait_s
        last_call_at = self._end_at - min(self._call_timeout_s, wait_s / 2)
        self._end_timers = [
            loop.call_at(self._end_at, self._ended.set),
            loop.call_at(last_call_at, self._stop_new_calls),
        ]

    def _stop_new_calls(self) -> None:
        """No call starts from now on; what waits for one is spooled with the end's reason."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        self._ledger.end = self._end_reason
        self._ledger.give_up_waiting(self._end_reason[0], "", self._end_reason[1])

    async def abort(self) -> None:
        """Stop at once and spool everything not yet accepted (a second Ctrl-C)."""
        self._aborted.set()
        await self.close(0.0)

    async def _stop_sending(self, reason: Reason, message: str) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ledger.give_up_in_flight(message)
        self._ledger.give_up_waiting(reason, "", message)

    # -- dispatching ---------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        ledger = self._ledger
        while True:
            await self._slots.acquire()
            try:
                await self._ready()
            except BaseException:
                self._slots.release()
                raise
            batch = ledger.take()
            self.rate.take(len(batch))
            task = asyncio.create_task(self._send(batch), name=f"send:{self.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ready(self) -> None:
        """Until a batch waits and the rate gate lets it go."""
        ledger = self._ledger
        while True:
            if not ledger.waiting:
                await ledger.work.wait()
                continue
            wait = self.rate.wait_s()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, MAX_GATE_SLEEP_S))

    async def _send(self, batch: Batch) -> None:
        try:
            await self._sender.send(batch)
        finally:
            self._slots.release()
