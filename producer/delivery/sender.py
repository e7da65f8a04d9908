"""One PutRecordBatch call of a batch, and what its outcome does to the books: written once.

Response handling follows
https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html : a 200 answer
may carry per-record failures; only the entries with an ErrorCode are resent, by index, so an
accepted record is never sent twice (timeouts and dropped connections aside: there nobody can
know, and those records are counted as possible duplicates). ``retry.outcome`` reads the call;
``Sender.settle`` counts it and sends each record on its way: accepted, backed off, split, or
given up (ledger.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, Protocol

from producer.delivery.batching import Batch
from producer.delivery.ledger import Ledger
from producer.delivery.ratecontrol import AdaptiveRate
from producer.delivery.retry import Outcome, RetryAction, RetryPolicy, outcome
from producer.firehose.errors import ApiError, TransportError
from producer.firehose.wire import WireFormat
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.stats import Reason


class BatchClient(Protocol):
    @property
    def wire(self) -> WireFormat:
        """The form ``put_record_batch`` takes records in (producer/firehose/wire.py)."""
        ...

    async def put_record_batch(self, stream: str, data: list[bytes]) -> dict[str, Any]: ...


class Sender:
    """Sends one batch at a time for a stream's channel (several may be in flight at once)."""

    def __init__(
        self,
        ledger: Ledger,
        client: BatchClient,
        policy: RetryPolicy,
        rate: AdaptiveRate,
        histograms: StreamHistograms,
        call_timeout_s: float,
        rng: random.Random,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._ledger = ledger
        self._stats = ledger.stats
        self._client = client
        self._policy = policy
        self._rate = rate
        self._histograms = histograms
        self._call_timeout_s = call_timeout_s
        self._rng = rng
        self._clock = clock
        self._wall_clock = wall_clock

    async def send(self, batch: Batch) -> None:
        """One attempt of ``batch`` (taken from the ledger), settled. A bug must not lose
        records: they are given up with its name. Cancelled (the end of the run cut the call
        off), the batch stays in flight in the ledger, which gives it up as OutcomeUnknown."""
        try:
            result = await self._attempt(batch)
            self._ledger.landed(batch)
            self.settle(batch, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._ledger.landed(batch)
            self._ledger.give_up(batch, Reason.PRODUCER_ERROR, type(exc).__name__, str(exc))

    async def _attempt(self, batch: Batch) -> Outcome:
        stats = self._stats
        now_wall = self._wall_clock()
        batch.attempts += 1
        if not batch.first_attempt_at:
            batch.first_attempt_at = now_wall
        batch.last_attempt_at = now_wall
        count, size = len(batch.data), batch.size
        started = self._clock()
        stats.requests += 1
        stats.in_flight += 1
        result: dict[str, Any] | Exception
        try:
            async with asyncio.timeout(self._call_timeout_s) as deadline:
                result = await self._client.put_record_batch(self._ledger.name, batch.data)
        except (ApiError, TransportError) as exc:
            result = exc
        except TimeoutError:
            if not deadline.expired():
                raise
            message = f"no complete answer within --call-timeout {self._call_timeout_s:g}s"
            result = TransportError("CallTimeout", message, maybe_sent=True)
        finally:
            stats.in_flight -= 1
        h = self._histograms
        h.request_seconds.observe(self._clock() - started)
        h.batch_records.observe(count)
        h.batch_bytes.observe(size)
        return outcome(result, count)

    def settle(self, batch: Batch, out: Outcome) -> None:
        """Count ``out`` and act on it: ``batch`` keeps only the records still owed."""
        stats, ledger = self._stats, self._ledger
        count = len(batch.data)
        if out.action is RetryAction.ANSWERED:
            stats.failures_by_code.update(out.codes)
            stats.billed_bytes += ledger.billed(batch.data, out.failed)
            size = batch.size
            batch.keep(out.failed, out.codes, out.messages, ledger.wire.size)
            accepted = count - len(batch.data)
            stats.failed_record_attempts += len(batch.data)
            if accepted:
                # One observation per answer, weighted by its records: the records of one batch
                # were created within one linger window of each other, and a per-record bisect
                # would cost more than the rest of the accounting.
                age = self._clock() - (batch.oldest_at + batch.newest_at) / 2
                self._histograms.ack_seconds.observe(age, accepted)
            ledger.accepted(accepted, size - batch.size)
        else:
            # The call failed as a whole: every record is owed again, unless given up below.
            stats.failed_record_attempts += count
            batch.mark_failed(out.code, out.message)
            stats.failed_requests += 1
            stats.failures_by_code[out.code] += 1
            if out.unsure:
                stats.possible_duplicates += batch.mark_unsure()
            accepted = 0
        stats.throttled_records += out.throttled
        match out.action:
            case RetryAction.ANSWERED | RetryAction.RETRY:
                self._rate.on_result(accepted=accepted, throttled=out.throttled)
                self._again(batch, out.answered)
            case RetryAction.SPLIT:
                # Something between us and Firehose takes smaller bodies than the API does: the
                # halves go first, each with the attempts the whole had.
                ledger.retry_first(self._halves(batch))
            case RetryAction.DONT_RETRY:
                ledger.give_up(batch, Reason.NON_RETRYABLE, out.code, out.message)
            case RetryAction.STOP_STREAM:
                ledger.give_up(batch, Reason.NON_RETRYABLE, out.code, out.message)
                ledger.stop(f"{out.code}: {out.message}", out.code)
        stats.rate_cuts = self._rate.cuts

    def _again(self, batch: Batch, answered: bool) -> None:
        """What is left of ``batch`` goes again after its backoff, unless the stream stopped or
        its retries are spent."""
        if not batch.data:
            return
        ledger = self._ledger
        if self._stats.stopped_reason:
            ledger.give_up(batch, Reason.STREAM_STOPPED, "", self._stats.stopped_reason)
            return
        # The batch's age is its oldest record's: a record is never kept past its time to live,
        # at worst given up one linger period early.
        reason = self._policy.exhausted(batch.attempts, self._clock() - batch.oldest_at)
        if reason is not None:
            prefix = f"gave up after {batch.attempts} attempts; last: "
            batch.messages = [prefix + m for m in batch.messages]
            ledger.give_up(batch, reason, "", "")
            return
        ledger.back_off(batch, self._policy.delay_s(batch.attempts, self._rng, answered))

    def _halves(self, batch: Batch) -> list[Batch]:
        """``batch`` as two halves with its attempts and errors; ``batch`` is left empty."""
        size_of = self._ledger.wire.size
        half = len(batch) // 2
        parts = []
        for lo, hi in ((0, half), (half, len(batch))):
            data = batch.data[lo:hi]
            part = Batch(data, sum(map(size_of, data)), batch.oldest_at, batch.newest_at)
            part.attempts, part.first_attempt_at = batch.attempts, batch.first_attempt_at
            part.errors, part.messages = batch.errors[lo:hi], batch.messages[lo:hi]
            part.unsure = batch.unsure[lo:hi]
            parts.append(part)
        batch.data, batch.size = [], 0
        return parts
