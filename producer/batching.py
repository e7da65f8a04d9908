"""Per-stream accumulator: fills PutRecordBatch-sized batches within the API limits.

Limits: https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
"""

from __future__ import annotations

from dataclasses import dataclass, field

from producer import limits


@dataclass(slots=True)
class Record:
    """One record on its way to one stream, with what the dead-letter spool needs."""

    data: bytes
    created_at: float  # monotonic seconds, for time-to-live and latency
    attempts: int = 0
    first_attempt_at: float = 0.0  # wall-clock seconds, 0 until first sent
    last_attempt_at: float = 0.0
    last_error: str = ""  # ErrorCode (or transport error) of the latest failed attempt
    last_message: str = ""


@dataclass(slots=True)
class Batch:
    records: list[Record] = field(default_factory=list)
    size: int = 0
    in_request: bool = False  # a PutRecordBatch with these records is awaiting its answer

    def __len__(self) -> int:
        return len(self.records)


class Accumulator:
    """Collects records into batches of at most ``max_records`` and ``max_bytes``.

    ``add`` returns a batch when adding the record would break a limit (the record starts the
    next batch) or when the batch reaches ``max_records``. Records larger than a whole batch
    may hold are the caller's to refuse: they must be checked against MAX_RECORD_BYTES first.
    """

    def __init__(
        self, max_records: int = limits.MAX_BATCH_RECORDS, max_bytes: int = limits.MAX_BATCH_BYTES
    ) -> None:
        if not 1 <= max_records <= limits.MAX_BATCH_RECORDS:
            raise ValueError(f"max_records must be 1..{limits.MAX_BATCH_RECORDS}")
        if not limits.MAX_RECORD_BYTES <= max_bytes <= limits.MAX_BATCH_BYTES:
            raise ValueError(f"max_bytes must be {limits.MAX_RECORD_BYTES}..{limits.MAX_BATCH_BYTES}")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._batch = Batch()
        self.oldest_at = 0.0  # created_at of the first record in the open batch

    def __len__(self) -> int:
        return len(self._batch.records)

    def add(self, record: Record) -> Batch | None:
        size = len(record.data)
        if size > limits.MAX_RECORD_BYTES:
            raise ValueError("record exceeds MAX_RECORD_BYTES; dead-letter it instead")
        full: Batch | None = None
        if self._batch.records and self._batch.size + size > self.max_bytes:
            full = self._take()
        if not self._batch.records:
            self.oldest_at = record.created_at
        self._batch.records.append(record)
        self._batch.size += size
        if len(self._batch.records) >= self.max_records:
            # Cannot be both: a size overflow leaves one record in the new batch.
            return full or self._take()
        return full

    def drain(self) -> Batch | None:
        """The open batch, if it has records (linger expiry, shutdown)."""
        return self._take() if self._batch.records else None

    def _take(self) -> Batch:
        batch, self._batch = self._batch, Batch()
        return batch
