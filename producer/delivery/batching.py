"""Per-stream accumulator: fills PutRecordBatch-sized batches within the API limits.

A batch keeps its records as a plain list of bytes plus per-batch bookkeeping, not one object
per record: at 100,000 events/s to two streams that is 200,000 objects a second fewer to
allocate, free and (since they would be held for a while) for the cyclic collector to walk.
Records of a batch share their history: they are sent together, and what fails is resent
together (the failed subset stays one batch), so attempts and attempt times are per batch.

Limits: https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from producer.firehose import limits


@dataclass(slots=True)
class Batch:
    """Records on their way to one stream, with what retries and the dead-letter spool need."""

    # The records in their held form (producer/firehose/wire.py: as given, or base64 for the lean path).
    data: list[bytes] = field(default_factory=list)
    size: int = 0  # the records' own bytes, which the API limits count
    # Monotonic seconds the first and the last record were taken: the batch's age for the
    # time-to-live (its oldest record's) and the ack latency of its records.
    oldest_at: float = 0.0
    newest_at: float = 0.0
    attempts: int = 0
    first_attempt_at: float = 0.0  # wall-clock seconds, 0 until first sent
    last_attempt_at: float = 0.0
    # The latest failed attempt's ErrorCode (or transport error) and message, per record; empty
    # until an attempt fails.
    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    # Per record, whether an attempt may have reached Firehose without an answer (a timeout, a
    # dropped connection): such a record may end up delivered twice. Empty until one did.
    unsure: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.data)

    def error(self, index: int) -> tuple[str, str]:
        """Record ``index``'s last error code and message ("" when it never failed)."""
        if index < len(self.errors):
            return self.errors[index], self.messages[index]
        return "", ""

    def mark_failed(self, code: str, message: str) -> None:
        """Every record failed the same way (a whole-call failure)."""
        self.errors = [code] * len(self.data)
        self.messages = [message] * len(self.data)

    def mark_unsure(self) -> int:
        """Every record's last attempt may have been delivered; returns how many were not
        marked so already (each record counts once as a possible duplicate, however often)."""
        before = sum(self.unsure)
        self.unsure = [True] * len(self.data)
        return len(self.data) - before

    def keep(
        self, indexes: list[int], codes: list[str], messages: list[str], size_of: Callable[[bytes], int] = len
    ) -> None:
        """Only the records at ``indexes`` are still owed, with their new errors; ``size_of``
        gives a record's own length from its held form."""
        data = self.data
        self.data = [data[i] for i in indexes]
        if self.unsure:
            unsure = self.unsure
            self.unsure = [unsure[i] for i in indexes]
        self.size = sum(map(size_of, self.data))
        self.errors = codes
        self.messages = messages

    def clear(self) -> None:
        self.data = []
        self.size = 0
        self.errors = []
        self.messages = []
        self.unsure = []


def single(item: bytes, size: int, now: float) -> Batch:
    """A batch of one record that never reached an accumulator (refused or dropped at offer)."""
    return Batch([item], size, now, now)


class Accumulator:
    """Collects records into batches of at most ``max_records`` and ``max_bytes``.

    ``add`` returns a batch when adding the record would break a limit (the record starts the
    next batch) or when the batch reaches ``max_records``. Records larger than a whole batch
    may hold are the caller's to refuse: they must be checked against MAX_RECORD_BYTES first.
    """

    def __init__(
        self,
        max_records: int = limits.MAX_BATCH_RECORDS,
        max_bytes: int = limits.MAX_BATCH_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_records <= limits.MAX_BATCH_RECORDS:
            raise ValueError(f"max_records must be 1..{limits.MAX_BATCH_RECORDS}")
        if not limits.MAX_RECORD_BYTES <= max_bytes <= limits.MAX_BATCH_BYTES:
            raise ValueError(f"max_bytes must be {limits.MAX_RECORD_BYTES}..{limits.MAX_BATCH_BYTES}")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._clock = clock
        self.pending: list[bytes] = []  # the open batch's records (read-only outside)
        self._size = 0
        self._oldest_at = 0.0

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, data: bytes, size: int) -> Batch | None:
        """Add a record in its held form; ``size`` is the record's own length (see Batch)."""
        if size > limits.MAX_RECORD_BYTES:
            raise ValueError("record exceeds MAX_RECORD_BYTES; dead-letter it instead")
        full: Batch | None = None
        if self._size + size > self.max_bytes and self.pending:
            full = self._take()
        if not self.pending:
            self._oldest_at = self._clock()
        self.pending.append(data)
        self._size += size
        if len(self.pending) >= self.max_records:
            # Cannot be both: a size overflow leaves one record in the new batch.
            return full or self._take()
        return full

    def add_many(self, items: list[bytes], sizes: list[int]) -> list[Batch]:
        """``add`` for records in order, with the same batches as one ``add`` each, and the
        batches they filled. A list slice per batch instead of a call per record: the generator
        offers a tick's records at once (producer/generation.py)."""
        if not items:
            return []
        if max(sizes) > limits.MAX_RECORD_BYTES:
            raise ValueError("record exceeds MAX_RECORD_BYTES; dead-letter it instead")
        full: list[Batch] = []
        i, n = 0, len(items)
        while i < n:
            pending = self.pending
            if not pending:
                self._oldest_at = self._clock()
            j = min(n, i + self.max_records - len(pending))
            chunk = sum(sizes[i:j])
            if self._size + chunk <= self.max_bytes:
                pending += items[i:j]
                self._size += chunk
                i = j
            else:
                # The byte limit falls inside: take the records that fit; the next starts a batch.
                # (One record always fits an empty batch: max_bytes >= MAX_RECORD_BYTES.)
                sums = list(accumulate(sizes[i:j]))
                k = bisect_right(sums, self.max_bytes - self._size)
                pending += items[i : i + k]
                self._size += sums[k - 1] if k else 0
                i += k
                full.append(self._take())
                continue
            if len(pending) >= self.max_records:
                full.append(self._take())
        return full

    def drain(self) -> Batch | None:
        """The open batch, if it has records (linger expiry, shutdown)."""
        return self._take() if self.pending else None

    def _take(self) -> Batch:
        batch = Batch(self.pending, self._size, self._oldest_at, self._clock())
        self.pending = []
        self._size = 0
        return batch
