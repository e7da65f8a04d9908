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
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from producer import limits
from producer.batching import Accumulator, Batch, Record
from producer.firehose import ApiError, TransportError
from producer.histogram import StreamHistograms
from producer.ratecontrol import AdaptiveRate, RateControlSettings
from producer.retry import THROTTLING_CODES, Decision, RetryPolicy, classify_request_error
from producer.spool import Spool
from producer.stats import StreamStats

FullPolicy = Literal["block", "drop"]

# The dispatcher re-checks the gate at least this often, so a rising limit or a retry that became
# ready is picked up without waiting out a long debt computed under an older, lower limit.
MAX_GATE_SLEEP_S = 0.25


class BatchClient(Protocol):
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
        self._policy = policy
        self._spool = spool
        self.stats = stats
        self._settings = settings
        self._rng = rng
        self._clock = clock
        self._wall_clock = wall_clock
        self._acc = Accumulator(settings.max_batch_records, settings.max_batch_bytes)
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

    # -- producer side -------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.stats.stopped_reason

    def offer(self, data: bytes) -> Awaitable[None] | None:
        """Take one record. Returns an awaitable only when the caller must wait for space."""
        stats = self.stats
        if stats.stopped_reason:
            # A stopped stream takes nothing more; what it held is already spooled.
            stats.not_taken_after_stop += 1
            return None
        stats.sent += 1
        record = Record(data, self._clock())
        if len(data) > limits.MAX_RECORD_BYTES:
            message = f"record is {len(data)} bytes; Firehose takes at most {limits.MAX_RECORD_BYTES}"
            self._give_up([record], "RecordTooLarge", "", message, held=False)
            return None
        if stats.held >= self._settings.max_held_records and self._settings.on_full == "drop":
            message = "stream could not keep up (--on-full drop)"
            self._give_up([record], "Dropped", "", message, held=False)
            return None
        stats.held += 1
        full = self._acc.add(record)
        if full is not None:
            self._enqueue(full)
        if self._linger is None and len(self._acc):
            # One timer per open batch, from its first record: no polling loop.
            self._linger = asyncio.get_running_loop().call_later(self._settings.linger_s, self._flush_open)
        if stats.held >= self._settings.max_held_records and self._settings.on_full == "block":
            self._space.clear()
            return self._wait_for_space()
        return None

    async def _wait_for_space(self) -> None:
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
            self._give_up(batch.records, "StreamStopped", "", self.stats.stopped_reason)
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
            self._stop_stream(f"internal error in the sender: {type(exc).__name__}: {exc}", "ProducerError")

    async def close(self, grace_s: float) -> None:
        """Flush the open batch, let sends and retries finish for ``grace_s``, spool the rest.
        Idempotent; a concurrent ``abort()`` cuts the grace short."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._flush_open()
        self._check_drained()
        waits = [asyncio.create_task(self._drained.wait()), asyncio.create_task(self._aborted.wait())]
        try:
            await asyncio.wait(waits, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self._aborted.is_set():
            await self._stop_sending("Aborted", "run aborted before delivery")
        else:
            await self._stop_sending("ShutdownDeadline", "shutdown grace period ended before delivery")
        self._closed.set()

    async def abort(self) -> None:
        """Stop at once and spool everything not yet accepted (a second Ctrl-C)."""
        self._aborted.set()
        await self.close(0.0)

    async def _stop_sending(self, reason: str, message: str) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A cancelled call may or may not have been accepted: spooled, and counted as such.
        for batch in self._in_request.values():
            self.stats.possible_duplicates += len(batch.records)
        self._spool_everything(reason, message)

    def _spool_everything(self, reason: str, message: str) -> None:
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
            self._give_up(batch.records, reason, "", message)
            batch.records = []

    def _stop_stream(self, reason: str, code: str) -> None:
        """A non-retryable error: this stream is done. Spool what it holds (except calls in flight,
        which spool themselves when they answer) and free the generator."""
        if not self.stats.stopped_reason:
            self.stats.stopped_reason = reason
        for batch, handle in list(self._backoff.values()):
            handle.cancel()
            self._give_up(batch.records, "StreamStopped", code, reason)
        self._backoff.clear()
        for queue in (self._retries, self._new):
            while queue:
                self._give_up(queue.popleft().records, "StreamStopped", code, reason)
        open_batch = self._acc.drain()
        if open_batch is not None:
            self._give_up(open_batch.records, "StreamStopped", code, reason)

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
            failed, answered = await self._attempt(batch)
            # Not reached when cancelled: shutdown finds the batch in _in_request.
            del self._in_request[key]
            self._after_attempt(batch, failed, answered)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not lose records: spool them with the reason
            self._in_request.pop(key, None)
            self._give_up(batch.records, "ProducerError", type(exc).__name__, str(exc))
            batch.records = []
        finally:
            self._slots.release()

    async def _attempt(self, batch: Batch) -> tuple[list[Record], bool]:
        """Send once; the records that failed, and whether the call itself was answered."""
        stats = self.stats
        records = batch.records
        now_wall = self._wall_clock()
        for r in records:
            r.attempts += 1
            if not r.first_attempt_at:
                r.first_attempt_at = now_wall
            r.last_attempt_at = now_wall
        started = self._clock()
        stats.requests += 1
        stats.in_flight += 1
        try:
            response = await self._client.put_record_batch(self.name, [r.data for r in records])
        except ApiError as exc:
            answered = False
            failed = self._request_failed(records, exc.code, exc.http_status, exc.message)
        except TransportError as exc:
            answered = False
            _mark_failed(records, exc.code, exc.message)
            stats.failed_requests += 1
            stats.failures_by_code[exc.code] += 1
            if exc.maybe_sent:
                stats.possible_duplicates += len(records)
            self.rate.on_result(accepted=0, throttled=0)
            failed = records
        else:
            answered = True
            failed = self._read_response(records, response, batch.size)
        finally:
            stats.in_flight -= 1
        stats.failed_record_attempts += len(failed)
        h = self.histograms
        h.request_seconds.observe(self._clock() - started)
        h.batch_records.observe(len(records))
        h.batch_bytes.observe(batch.size)
        stats.rate_cuts = self.rate.cuts
        return failed, answered

    def _after_attempt(self, batch: Batch, failed: list[Record], answered: bool) -> None:
        batch.records = self._retry_or_give_up(failed)
        if not batch.records:
            return
        batch.size = sum(len(r.data) for r in batch.records)  # the bytes still owed
        self.stats.retried_records += len(batch.records)
        attempt = max(r.attempts for r in batch.records)
        delay = self._policy.delay_s(attempt, self._rng, answered)
        key = id(batch)
        handle = asyncio.get_running_loop().call_later(delay, self._backoff_over, key)
        self._backoff[key] = (batch, handle)

    def _backoff_over(self, key: int) -> None:
        entry = self._backoff.pop(key, None)
        if entry is None:
            return
        batch = entry[0]
        if self.stats.stopped_reason:
            self._give_up(batch.records, "StreamStopped", "", self.stats.stopped_reason)
            return
        self._retries.append(batch)
        self._work.set()

    # -- answers -------------------------------------------------------------------------------

    def _request_failed(self, records: list[Record], code: str, status: int, message: str) -> list[Record]:
        """Whole-call failure: the records to retry (none when the stream is given up)."""
        stats = self.stats
        _mark_failed(records, code, message)
        stats.failed_requests += 1
        stats.failures_by_code[code] += 1
        if classify_request_error(code, status) is Decision.GIVE_UP:
            self._give_up(records, "NonRetryable", code, message)
            self._stop_stream(f"{code}: {message}", code)
            return []
        throttled = len(records) if code in THROTTLING_CODES else 0
        stats.throttled_records += throttled
        self.rate.on_result(accepted=0, throttled=throttled)
        return records

    def _read_response(
        self, records: list[Record], response: dict[str, Any], batch_size: int
    ) -> list[Record]:
        stats = self.stats
        failed_count = int(response.get("FailedPutCount", 0))
        entries = response.get("RequestResponses") or []
        if failed_count == 0 and len(entries) == len(records):
            self._accepted(records, batch_size)
            self.rate.on_result(accepted=len(records), throttled=0)
            return []
        if len(entries) != len(records):
            # Cannot tell which records failed: resend all, and say they may be duplicates.
            stats.failures_by_code["MalformedResponse"] += 1
            stats.possible_duplicates += len(records)
            return records
        failed: list[Record] = []
        ok: list[Record] = []
        throttled = 0
        for record, entry in zip(records, entries, strict=True):
            code = entry.get("ErrorCode")
            if code:
                record.last_error = code
                record.last_message = str(entry.get("ErrorMessage", ""))
                failed.append(record)
                stats.failures_by_code[code] += 1
                if code in THROTTLING_CODES:
                    throttled += 1
            else:
                ok.append(record)
        stats.throttled_records += throttled
        self._accepted(ok)
        self.rate.on_result(accepted=len(ok), throttled=throttled)
        return failed

    def _accepted(self, records: list[Record], size: int | None = None) -> None:
        """``size``: the records' bytes when the caller knows them (the whole batch accepted)."""
        count = len(records)
        if not count:
            return
        self.stats.accepted += count
        self.stats.bytes_sent += sum(len(r.data) for r in records) if size is None else size
        # One observation per answer, weighted by its records: the records of one batch were
        # created within one linger window of each other, and a per-record bisect would cost
        # more than the rest of the accounting.
        oldest, newest = records[0].created_at, records[-1].created_at
        self.histograms.ack_seconds.observe(self._clock() - (oldest + newest) / 2, count)
        self._release(count)

    def _retry_or_give_up(self, failed: list[Record]) -> list[Record]:
        if self.stats.stopped_reason:
            self._give_up(failed, "StreamStopped", "", self.stats.stopped_reason)
            return []
        now = self._clock()
        keep: list[Record] = []
        for record in failed:
            reason = self._policy.exhausted(record.attempts, now - record.created_at)
            if reason is None:
                keep.append(record)
            else:
                message = f"gave up after {record.attempts} attempts; last: {record.last_message}"
                self._give_up([record], reason, record.last_error, message)
        return keep

    def _give_up(
        self, records: list[Record], reason: str, code: str, message: str, held: bool = True
    ) -> None:
        """Spool ``records``; ``held`` says whether they were counted inside the channel."""
        if not records:
            return
        self._spool.write(self.name, records, reason, code, message)
        self.stats.dead_lettered += len(records)
        self.stats.dead_by_reason[reason] += len(records)
        if held:
            self._release(len(records))

    def _release(self, count: int) -> None:
        self.stats.held -= count
        if self.stats.held < self._settings.max_held_records:
            self._space.set()
        self._check_drained()

    def _check_drained(self) -> None:
        if self._closing and self.stats.held == 0:
            self._drained.set()


def _mark_failed(records: list[Record], code: str, message: str) -> None:
    """Remember the error on each record, for the spool line if it is given up."""
    for r in records:
        r.last_error = code
        r.last_message = message
