"""One stream's channel: accumulate, queue, send, resend only what failed, spool what is given up.

Only this module sleeps on the delays ``retry.py`` decides. Response handling follows
https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html : a 200 answer
may carry per-record failures; only the entries with an ErrorCode are resent, by index.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from producer import limits
from producer.batching import Accumulator, Batch, Record
from producer.firehose import ApiError, TransportError
from producer.retry import THROTTLING_CODES, Decision, RetryPolicy, classify_request_error
from producer.spool import Spool
from producer.stats import StreamStats

FullPolicy = Literal["block", "drop"]


class BatchClient(Protocol):
    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    linger_s: float = 0.2
    max_in_flight: int = 8
    max_held_records: int = 50_000
    on_full: FullPolicy = "block"
    max_batch_records: int = limits.MAX_BATCH_RECORDS
    max_batch_bytes: int = limits.MAX_BATCH_BYTES


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
    ) -> None:
        self.name = name
        self._client = client
        self._policy = policy
        self._spool = spool
        self.stats = stats
        self._settings = settings
        self._rng = rng
        self._clock = clock
        self._acc = Accumulator(settings.max_batch_records, settings.max_batch_bytes)
        self._generation = 0  # bumped whenever the open batch is taken, to void stale lingers
        self._ready: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._active: dict[int, Batch] = {}  # batches a worker holds (sending or backing off)
        self._space = asyncio.Event()
        self._space.set()
        self._workers: list[asyncio.Task[None]] = []
        self._closing = False

    # -- producer side -------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.stats.stopped_reason

    def offer(self, data: bytes) -> Awaitable[None] | None:
        """Take one record. Returns an awaitable only when the caller must wait for space."""
        stats = self.stats
        stats.sent += 1
        record = Record(data, self._clock())
        if len(data) > limits.MAX_RECORD_BYTES:
            message = f"record is {len(data)} bytes; Firehose takes at most {limits.MAX_RECORD_BYTES}"
            self._give_up([record], "RecordTooLarge", "", message, held=False)
            return None
        if stats.stopped_reason:
            self._give_up([record], "StreamStopped", "", stats.stopped_reason, held=False)
            return None
        if stats.held >= self._settings.max_held_records and self._settings.on_full == "drop":
            message = "stream could not keep up (--on-full drop)"
            self._give_up([record], "Dropped", "", message, held=False)
            return None
        stats.held += 1
        was_empty = len(self._acc) == 0
        full = self._acc.add(record)
        if full is not None:
            self._enqueue(full)
        if len(self._acc) and (was_empty or full is not None):
            generation = self._generation
            asyncio.get_running_loop().call_later(self._settings.linger_s, self._linger, generation)
        if stats.held >= self._settings.max_held_records:
            self._space.clear()
            return self._wait_for_space()
        return None

    async def _wait_for_space(self) -> None:
        await self._space.wait()

    def _linger(self, generation: int) -> None:
        if generation == self._generation:
            batch = self._acc.drain()
            if batch is not None:
                self._enqueue(batch)

    def _enqueue(self, batch: Batch) -> None:
        self._generation += 1
        self._ready.put_nowait(batch)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker(), name=f"sender:{self.name}:{i}")
            for i in range(self._settings.max_in_flight)
        ]

    async def close(self, grace_s: float) -> None:
        """Flush the open batch, let sends and retries finish for ``grace_s``, spool the rest."""
        if self._closing:
            return
        self._closing = True
        batch = self._acc.drain()
        if batch is not None:
            self._enqueue(batch)
        for _ in self._workers:
            self._ready.put_nowait(None)
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=grace_s)
            if pending:
                await self._cancel_workers(pending)
        self._spool_leftovers("ShutdownDeadline", "shutdown grace period ended before delivery")

    async def abort(self) -> None:
        """Stop at once and spool everything not yet accepted (a second Ctrl-C)."""
        self._closing = True
        await self._cancel_workers(set(self._workers))
        batch = self._acc.drain()
        if batch is not None:
            self._give_up(batch.records, "Aborted", "", "run aborted before delivery")
        self._spool_leftovers("Aborted", "run aborted before delivery")

    async def _cancel_workers(self, tasks: set[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Records of a cancelled in-flight call may or may not have been accepted.
        for batch in self._active.values():
            if batch.in_request:
                self.stats.possible_duplicates += len(batch.records)

    def _spool_leftovers(self, reason: str, message: str) -> None:
        for batch in list(self._active.values()):
            self._give_up(batch.records, reason, "", message)
        self._active.clear()
        while not self._ready.empty():
            queued = self._ready.get_nowait()
            if queued is not None:
                self._give_up(queued.records, reason, "", message)

    # -- sending -------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while (batch := await self._ready.get()) is not None:
            if self.stats.stopped_reason:
                self._give_up(batch.records, "StreamStopped", "", self.stats.stopped_reason)
                continue
            key = id(batch)
            self._active[key] = batch
            try:
                await self._deliver(batch)
            finally:
                self._active.pop(key, None)

    async def _deliver(self, batch: Batch) -> None:
        """Send ``batch`` until every record is accepted or given up. ``batch.records`` always
        holds exactly the records still owed, so shutdown can spool them."""
        stats = self.stats
        while batch.records:
            records = batch.records
            now_wall = time.time()
            for r in records:
                r.attempts += 1
                if not r.first_attempt_at:
                    r.first_attempt_at = now_wall
                r.last_attempt_at = now_wall
            started = self._clock()
            stats.requests += 1
            stats.in_flight += 1
            batch.in_request = True
            try:
                response = await self._client.put_record_batch(self.name, [r.data for r in records])
            except ApiError as exc:
                failed = self._request_failed(records, exc.code, exc.http_status, exc.message)
                if failed is None:
                    batch.records = []
                    return
            except TransportError as exc:
                stats.failed_requests += 1
                stats.failures_by_code[exc.code] += 1
                if exc.maybe_sent:
                    stats.possible_duplicates += len(records)
                failed = records
            else:
                failed = self._read_response(records, response)
            finally:
                stats.in_flight -= 1
            # Not in `finally`: a cancelled call leaves the flag up, so shutdown can count
            # its records as possible duplicates.
            batch.in_request = False
            stats.latencies_s.append(self._clock() - started)
            batch.records = self._retry_or_give_up(failed)
            if batch.records:
                stats.retried_records += len(batch.records)
                attempt = max(r.attempts for r in batch.records)
                await asyncio.sleep(self._policy.delay_s(attempt, self._rng))

    def _request_failed(
        self, records: list[Record], code: str, status: int, message: str
    ) -> list[Record] | None:
        """Whole-call failure: the records to retry, or None when the stream is given up."""
        stats = self.stats
        stats.failed_requests += 1
        stats.failures_by_code[code] += 1
        if classify_request_error(code, status) is Decision.GIVE_UP:
            stats.stopped_reason = f"{code}: {message}"
            self._give_up(records, code, code, message)
            return None
        if code in THROTTLING_CODES:
            stats.throttled_records += len(records)
        return records

    def _read_response(self, records: list[Record], response: dict[str, Any]) -> list[Record]:
        stats = self.stats
        failed_count = int(response.get("FailedPutCount", 0))
        entries = response.get("RequestResponses") or []
        if failed_count == 0 and len(entries) == len(records):
            self._accepted(records)
            return []
        if len(entries) != len(records):
            # Cannot tell which records failed: resend all, and say they may be duplicates.
            stats.failures_by_code["MalformedResponse"] += 1
            stats.possible_duplicates += len(records)
            return records
        failed: list[Record] = []
        ok: list[Record] = []
        for record, entry in zip(records, entries, strict=True):
            code = entry.get("ErrorCode")
            if code:
                failed.append(record)
                stats.failures_by_code[code] += 1
                if code in THROTTLING_CODES:
                    stats.throttled_records += 1
            else:
                ok.append(record)
        self._accepted(ok)
        return failed

    def _accepted(self, records: list[Record]) -> None:
        self.stats.accepted += len(records)
        self.stats.bytes_sent += sum(len(r.data) for r in records)
        self._release(len(records))

    def _retry_or_give_up(self, failed: list[Record]) -> list[Record]:
        now = self._clock()
        keep: list[Record] = []
        for record in failed:
            reason = self._policy.exhausted(record.attempts, now - record.created_at)
            if reason is None and not self.stats.stopped_reason:
                keep.append(record)
            else:
                self._give_up(
                    [record],
                    reason or "StreamStopped",
                    "",
                    self.stats.stopped_reason or f"gave up after {record.attempts} attempts",
                )
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
