"""One stream's channel: accumulate, queue, pace, send, resend only what failed, spool what is given up.

Only this module sleeps on the delays ``retry.py`` and ``ratecontrol.py`` decide. Response
handling follows https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html :
a 200 answer may carry per-record failures; only the entries with an ErrorCode are resent, by
index, so an accepted record is never sent twice (timeouts and dropped connections aside: there
nobody can know, and those records are counted as possible duplicates).

Shape (after aiokafka's producer): the accumulator fills batches; a dispatcher task takes ready
batches, retries first, through the rate gate, into at most ``max_in_flight`` concurrent calls.
A failed remainder waits out its backoff on a timer (not in a worker), then goes to the front.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from producer.delivery.batching import Accumulator, Batch, single
from producer.delivery.ratecontrol import AdaptiveRate, RateControlSettings
from producer.delivery.retry import (
    THROTTLING_CODES,
    RetryAction,
    RetryPolicy,
    call_failed,
    read_answer,
)
from producer.delivery.spool import Spool, SpoolError
from producer.firehose import limits
from producer.firehose.errors import ApiError, TransportError
from producer.firehose.wire import WireFormat
from producer.telemetry.cost import BILLING_INCREMENT_BYTES, billed_bytes
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.stats import Reason, StreamStats

FullPolicy = Literal["block", "drop"]

# The dispatcher re-checks the gate at least this often, so a rising limit or a retry that became
# ready is picked up without waiting out a long debt computed under an older, lower limit.
MAX_GATE_SLEEP_S = 0.25


class BatchClient(Protocol):
    @property
    def wire(self) -> WireFormat:
        """The form ``put_record_batch`` takes records in (producer/firehose/wire.py)."""
        ...

    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]: ...


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
        self._client = client
        self.wire = client.wire
        self._policy = policy
        self._spool = spool
        self.stats = stats
        self._settings = settings
        self._rng = rng
        self._clock = clock
        self._wall_clock = wall_clock
        self._acc = Accumulator(settings.max_batch_records, settings.max_batch_bytes, clock)
        # Read on every offer: plain attributes, not lookups through the settings.
        self._max_held = settings.max_held_records
        # False while every record taken was 1 to 5,120 bytes: each then bills one 5 KB
        # increment, and billed bytes need no per-record work (see _billed).
        self._exact_billing = False
        self._drop_when_full = settings.on_full == "drop"
        self.rate = AdaptiveRate(settings.rate_control, clock)
        stats.rate_probe = lambda: (self.rate.limit(), self.rate.achieved_rate())
        self._linger: asyncio.TimerHandle | None = None
        self._new: deque[Batch] = deque()
        self._retries: deque[Batch] = deque()  # backoff over; these go before new batches
        self._backoff: dict[int, tuple[Batch, asyncio.TimerHandle]] = {}
        self._in_request: dict[int, Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._work = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._space = asyncio.Event()
        self._space.set()
        self._drained = asyncio.Event()
        self._aborted = asyncio.Event()
        self._closed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closing = False
        # The end of close(): when it comes, why, and whether new calls may still start.
        self._ended = asyncio.Event()
        self._end_reason = (Reason.SHUTDOWN_DEADLINE, "shutdown grace period ended before delivery")
        self._end_at = math.inf
        self._end_timers: list[asyncio.TimerHandle] = []
        self._no_new_calls = False

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
        if self._must_wait():
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
        n = len(items)
        if not n:
            return False
        largest = max(sizes)
        if not self._exact_billing and (largest > BILLING_INCREMENT_BYTES or min(sizes) == 0):
            self._exact_billing = True
        if (
            stats.stopped_reason
            or (self._drop_when_full and stats.held + n > self._max_held)
            or largest > limits.MAX_RECORD_BYTES
        ):
            # Some record is refused, dropped or not taken: one at a time, exactly as offer_held.
            for item, size in zip(items, sizes, strict=True):
                self._take_one(item, size)
            return self._must_wait()
        stats.sent += n
        stats.held += n
        for full in self._acc.add_many(items, sizes):
            self._enqueue(full)
        self._arm_linger()
        return self._must_wait()

    def _take_one(self, item: bytes, size: int) -> None:
        stats = self.stats
        if stats.stopped_reason:
            # A stopped stream takes nothing more; what it held is already spooled.
            stats.not_taken_after_stop += 1
            return
        stats.sent += 1
        if not 0 < size <= BILLING_INCREMENT_BYTES:
            self._exact_billing = True
        if size > limits.MAX_RECORD_BYTES:
            message = f"record is {size} bytes; Firehose takes at most {limits.MAX_RECORD_BYTES}"
            self._give_up(single(item, size, self._clock()), Reason.RECORD_TOO_LARGE, "", message, held=False)
            return
        if stats.held >= self._max_held and self._drop_when_full:
            message = "stream could not keep up (--on-full drop)"
            self._give_up(single(item, size, self._clock()), Reason.DROPPED, "", message, held=False)
            return
        stats.held += 1
        full = self._acc.add(item, size)
        if full is not None:
            self._enqueue(full)
        self._arm_linger()

    def _arm_linger(self) -> None:
        if self._linger is None and self._acc.pending:
            # One timer per open batch, from its first record: no polling loop.
            self._linger = asyncio.get_running_loop().call_later(self._settings.linger_s, self._flush_open)

    def _must_wait(self) -> bool:
        """Full under ``--on-full block``: the producer waits until a send frees space."""
        stats = self.stats
        if stats.held >= self._max_held and not self._drop_when_full and not stats.stopped_reason:
            self._space.clear()
            return True
        return False

    async def wait_for_space(self) -> None:
        """Until the stream holds fewer than ``max_held_records`` (or stops)."""
        started = self._clock()
        try:
            await self._space.wait()
        finally:
            self.stats.blocked_s += self._clock() - started

    def _flush_open(self) -> None:
        batch = self._acc.drain()
        if batch is not None:
            self._enqueue(batch)
        elif self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _enqueue(self, batch: Batch) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self.stats.stopped_reason:
            self._give_up(batch, Reason.STREAM_STOPPED, "", self.stats.stopped_reason)
            return
        self._new.append(batch)
        self._work.set()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"sender:{self.name}")
        self._dispatcher.add_done_callback(self._dispatcher_done)

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        # A crashed dispatcher must not leave the generator blocked or close() waiting: stop the
        # stream (which spools what it holds and frees every waiter).
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self._stop_stream(
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
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._flush_open()
        self._set_end(wait_s, reason, message)
        self._check_drained()
        waits = [
            asyncio.create_task(self._drained.wait()),
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
        if not self._closing or self._closed.is_set():
            return
        if asyncio.get_running_loop().time() + wait_s < self._end_at:
            self._set_end(wait_s, reason, message)

    def _set_end(self, wait_s: float, reason: Reason, message: str) -> None:
        loop = asyncio.get_running_loop()
        for timer in self._end_timers:
            timer.cancel()
        self._end_reason = (reason, message)
        self._end_at = loop.time() + wait_s
        last_call_at = self._end_at - min(self._settings.call_timeout_s, wait_s / 2)
        self._end_timers = [
            loop.call_at(self._end_at, self._ended.set),
            loop.call_at(last_call_at, self._stop_new_calls),
        ]

    def _stop_new_calls(self) -> None:
        """No call starts from now on; what waits for one is spooled with the end's reason."""
        self._no_new_calls = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        in_flight = dict(self._in_request)
        self._in_request.clear()
        self._spool_everything(*self._end_reason)
        self._in_request.update(in_flight)
        self._check_drained()

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
        # A call cut off unanswered may or may not have been accepted: nobody can know.
        unknown = list(self._in_request.values())
        self._in_request.clear()
        for batch in unknown:
            self.stats.possible_duplicates += batch.mark_unsure()
            self._give_up(batch, Reason.OUTCOME_UNKNOWN, "", f"call unanswered when cut off ({message})")
        self._spool_everything(reason, message)

    def _spool_everything(self, reason: Reason, message: str) -> None:
        """Give up every record the channel holds, wherever it is."""
        batches = list(self._in_request.values())
        self._in_request.clear()
        for batch, handle in self._backoff.values():
            handle.cancel()
            batches.append(batch)
        self._backoff.clear()
        batches.extend(self._retries)
        self._retries.clear()
        batches.extend(self._new)
        self._new.clear()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        open_batch = self._acc.drain()
        if open_batch is not None:
            batches.append(open_batch)
        for batch in batches:
            self._give_up(batch, reason, "", message)

    def _stop_stream(self, reason: str, code: str) -> None:
        """A non-retryable error: this stream is done. Spool what it holds (except calls in flight,
        which spool themselves when they answer) and free the generator."""
        if not self.stats.stopped_reason:
            self.stats.stopped_reason = reason
        for batch, handle in list(self._backoff.values()):
            handle.cancel()
            self._give_up(batch, Reason.STREAM_STOPPED, code, reason)
        self._backoff.clear()
        for queue in (self._retries, self._new):
            while queue:
                self._give_up(queue.popleft(), Reason.STREAM_STOPPED, code, reason)
        open_batch = self._acc.drain()
        if open_batch is not None:
            self._give_up(open_batch, Reason.STREAM_STOPPED, code, reason)

    # -- dispatching ---------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._send(batch), name=f"send:{self.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _next_batch(self) -> Batch:
        """The next batch to send, retries first, once the rate gate lets it go."""
        while True:
            queue = self._retries or self._new
            if not queue:
                self._work.clear()
                await self._work.wait()
                continue
            wait = self.rate.wait_s()
            if wait > 0:
                await asyncio.sleep(min(wait, MAX_GATE_SLEEP_S))
                continue
            batch = queue.popleft()
            self.rate.take(len(batch))
            return batch

    async def _send(self, batch: Batch) -> None:
        """One PutRecordBatch for ``batch``; what fails is scheduled for a retry or given up."""
        key = id(batch)
        try:
            self._in_request[key] = batch
            answered = await self._attempt(batch)
            # Not reached when cancelled: shutdown finds the batch in _in_request.
            del self._in_request[key]
            self._after_attempt(batch, answered)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not lose records: spool them with the reason
            self._in_request.pop(key, None)
            self._give_up(batch, Reason.PRODUCER_ERROR, type(exc).__name__, str(exc))
        finally:
            self._slots.release()

    async def _attempt(self, batch: Batch) -> bool:
        """Send once; afterwards ``batch`` holds only the records still owed (those that failed).
        Returns whether the call itself was answered."""
        stats = self.stats
        now_wall = self._wall_clock()
        batch.attempts += 1
        if not batch.first_attempt_at:
            batch.first_attempt_at = now_wall
        batch.last_attempt_at = now_wall
        count, size = len(batch.data), batch.size
        started = self._clock()
        stats.requests += 1
        stats.in_flight += 1
        try:
            async with asyncio.timeout(self._settings.call_timeout_s) as deadline:
                response = await self._client.put_record_batch(self.name, batch.data)
        except ApiError as exc:
            answered = False
            stats.failed_record_attempts += count
            self._request_failed(batch, exc.code, exc.http_status, exc.message)
        except (TransportError, TimeoutError) as exc:
            answered = False
            stats.failed_record_attempts += count
            if isinstance(exc, TransportError):
                code, message, maybe_sent = exc.code, exc.message, exc.maybe_sent
            elif deadline.expired():
                code, maybe_sent = "CallTimeout", True
                message = f"no complete answer within --call-timeout {self._settings.call_timeout_s:g}s"
            else:
                raise
            batch.mark_failed(code, message)
            stats.failed_requests += 1
            stats.failures_by_code[code] += 1
            if maybe_sent:
                stats.possible_duplicates += batch.mark_unsure()
            self.rate.on_result(accepted=0, throttled=0)
        else:
            answered = True
            self._read_response(batch, response)
            stats.failed_record_attempts += len(batch.data)
        finally:
            stats.in_flight -= 1
        h = self.histograms
        h.request_seconds.observe(self._clock() - started)
        h.batch_records.observe(count)
        h.batch_bytes.observe(size)
        stats.rate_cuts = self.rate.cuts
        return answered

    def _after_attempt(self, batch: Batch, answered: bool) -> None:
        self._retry_or_give_up(batch)
        if not batch.data:
            return
        if self._no_new_calls:
            self._give_up_at_end(batch)
            return
        self.stats.retried_records += len(batch.data)
        delay = self._policy.delay_s(batch.attempts, self._rng, answered)
        key = id(batch)
        handle = asyncio.get_running_loop().call_later(delay, self._backoff_over, key)
        self._backoff[key] = (batch, handle)

    def _backoff_over(self, key: int) -> None:
        entry = self._backoff.pop(key, None)
        if entry is None:
            return
        batch = entry[0]
        if self.stats.stopped_reason:
            self._give_up(batch, Reason.STREAM_STOPPED, "", self.stats.stopped_reason)
            return
        if self._no_new_calls:
            self._give_up_at_end(batch)
            return
        self._retries.append(batch)
        self._work.set()

    def _split(self, batch: Batch) -> None:
        """Resend ``batch`` as two halves, first in line; ``batch`` is left empty."""
        half = len(batch) // 2
        parts = []
        for lo, hi in ((0, half), (half, len(batch))):
            data = batch.data[lo:hi]
            part = Batch(data, sum(map(self.wire.size, data)), batch.oldest_at, batch.newest_at)
            part.attempts, part.first_attempt_at = batch.attempts, batch.first_attempt_at
            part.errors, part.messages = batch.errors[lo:hi], batch.messages[lo:hi]
            part.unsure = batch.unsure[lo:hi]
            parts.append(part)
        batch.data, batch.size = [], 0
        if self._no_new_calls:
            for part in parts:
                self._give_up_at_end(part)
            return
        self._retries.extendleft(reversed(parts))
        self._work.set()

    # -- answers -------------------------------------------------------------------------------

    def _request_failed(self, batch: Batch, code: str, status: int, message: str) -> None:
        """Whole-call failure: every record is owed again, unless the call or stream is given up."""
        stats = self.stats
        batch.mark_failed(code, message)
        stats.failed_requests += 1
        stats.failures_by_code[code] += 1
        match call_failed(code, status, len(batch)):
            case RetryAction.STOP_STREAM:
                # The stream itself cannot be used (missing, access denied...): stop it.
                self._give_up(batch, Reason.NON_RETRYABLE, code, message)
                self._stop_stream(f"{code}: {message}", code)
            case RetryAction.SPLIT:
                # Something between us and Firehose takes smaller bodies than the API does:
                # the halves go first, each with the attempts the whole had.
                self._split(batch)
            case RetryAction.DONT_RETRY:
                # An error about this call (an unknown 4xx, a lone record too large for the
                # path): its records are given up, the stream goes on.
                self._give_up(batch, Reason.NON_RETRYABLE, code, message)
            case _:
                throttled = len(batch.data) if code in THROTTLING_CODES else 0
                stats.throttled_records += throttled
                self.rate.on_result(accepted=0, throttled=throttled)

    def _read_response(self, batch: Batch, response: dict[str, Any]) -> None:
        stats = self.stats
        count = len(batch.data)
        answer = read_answer(response.get("RequestResponses"), count)
        if answer.action is RetryAction.RETRY:
            # Cannot tell which records failed: a failed call; resend all, and say they may be
            # duplicates.
            stats.failed_requests += 1
            stats.failures_by_code["MalformedResponse"] += 1
            stats.possible_duplicates += batch.mark_unsure()
            batch.mark_failed("MalformedResponse", answer.problem)
            self.rate.on_result(accepted=0, throttled=0)
            return
        stats.failures_by_code.update(answer.codes)
        stats.throttled_records += answer.throttled
        size = batch.size
        stats.billed_bytes += self._billed(batch.data, answer.failed)
        batch.keep(answer.failed, answer.codes, answer.messages, self.wire.size)
        accepted = count - len(answer.failed)
        self._accepted(batch, accepted, size - batch.size)
        self.rate.on_result(accepted=accepted, throttled=answer.throttled)

    def _billed(self, data: list[bytes], failed: list[int]) -> int:
        """Bytes Firehose bills for the records of ``data`` not at the ``failed`` indexes (the
        accepted ones), each rounded up to 5 KB (producer/telemetry/cost.py).

        While every record this channel took was 1 to 5,120 bytes (the common case: the mixed
        profile's are ~0.5 KB), each bills exactly one increment and this is O(1); after any
        other size it is a size per accepted record (~0.4 us each)."""
        if not self._exact_billing:
            return (len(data) - len(failed)) * BILLING_INCREMENT_BYTES
        if failed:
            skip = set(failed)
            data = [d for i, d in enumerate(data) if i not in skip]
        return billed_bytes(map(self.wire.size, data))

    def _accepted(self, batch: Batch, count: int, size: int) -> None:
        """``count`` records (``size`` bytes) of ``batch`` were accepted."""
        if not count:
            return
        self.stats.accepted += count
        self.stats.bytes_sent += size
        # One observation per answer, weighted by its records: the records of one batch were
        # created within one linger window of each other, and a per-record bisect would cost
        # more than the rest of the accounting.
        self.histograms.ack_seconds.observe(self._clock() - (batch.oldest_at + batch.newest_at) / 2, count)
        self._release(count)

    def _retry_or_give_up(self, batch: Batch) -> None:
        """Give up what is left of ``batch`` if the stream stopped or its retries are spent."""
        if not batch.data:
            return
        if self.stats.stopped_reason:
            self._give_up(batch, Reason.STREAM_STOPPED, "", self.stats.stopped_reason)
            return
        # The batch's age is its oldest record's: a record is never kept past its time to live,
        # at worst given up one linger period early.
        reason = self._policy.exhausted(batch.attempts, self._clock() - batch.oldest_at)
        if reason is not None:
            prefix = f"gave up after {batch.attempts} attempts; last: "
            batch.messages = [prefix + m for m in batch.messages]
            self._give_up(batch, reason, "", "")

    def _give_up(self, batch: Batch, reason: Reason, code: str, message: str, held: bool = True) -> None:
        """Spool the records of ``batch`` and empty it; ``held`` says whether they were counted
        inside the channel."""
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

    def _give_up_at_end(self, batch: Batch) -> None:
        """No call starts any more (the end of close() is near): spool with its reason."""
        reason, message = self._end_reason
        self._give_up(batch, reason, "", message)

    def _release(self, count: int) -> None:
        self.stats.held -= count
        if self.stats.held < self._max_held:
            self._space.set()
        self._check_drained()

    def _check_drained(self) -> None:
        if self._closing and self.stats.held == 0:
            self._drained.set()
