"""What a source found for one stream, accumulated record by record in bounded memory.

A soak of hours delivers millions of events per stream, so per-record objects are avoided:
sequence numbers are counted in a bytearray indexed by ``seq``, latencies go into a float
array, and the charts keep per-second and per-object aggregates only.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field


class SeqCounts:
    """How often each sequence number was seen; counts saturate at 255 (enough to say "dup")."""

    def __init__(self) -> None:
        self._counts = bytearray()

    def add(self, seq: int) -> None:
        if seq < 0:
            return
        counts = self._counts
        if seq >= len(counts):
            counts.extend(bytes(max(seq + 1 - len(counts), len(counts) // 2, 1024)))
        if counts[seq] < 255:
            counts[seq] += 1

    def count(self, seq: int) -> int:
        return self._counts[seq] if 0 <= seq < len(self._counts) else 0

    def seen(self) -> list[int]:
        return [i for i, n in enumerate(self._counts) if n]

    @property
    def unique(self) -> int:
        return len(self._counts) - self._counts.count(0)

    @property
    def total(self) -> int:
        return sum(self._counts)

    def duplicates(self) -> tuple[int, list[int]]:
        """(extra copies, the first duplicated seqs)."""
        extra = 0
        first: list[int] = []
        for i, n in enumerate(self._counts):
            if n > 1:
                extra += n - 1
                if len(first) < 10:
                    first.append(i)
        return extra, first


@dataclass(slots=True)
class ObjectStat:
    key: str
    records: int  # records of the audited run in this object
    bytes: int  # the object's size as stored (compressed if it is)
    delivered_at: float | None
    first_arrival: float | None = None
    last_arrival: float | None = None
    oldest_event: float | None = None  # earliest event time of the run's records in it


@dataclass(slots=True)
class StreamFindings:
    stream: str
    destination: str  # "s3" or "opensearch"
    seqs: SeqCounts = field(default_factory=SeqCounts)
    latencies_s: array[float] = field(default_factory=lambda: array("d"))
    per_second: Counter[int] = field(default_factory=Counter)  # event second -> delivered events
    objects: list[ObjectStat] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # error-output-type -> records
    error_seqs: SeqCounts = field(default_factory=SeqCounts)
    errors_untraced: int = 0  # error records of unknown run (e.g. cut short before run_id)
    untraced_records: int = 0  # delivered records with no trace fields
    other_runs: int = 0  # delivered records of other runs in the same objects
    objects_gone: list[str] = field(default_factory=list)  # in the delivery log, not on disk
    # Deleted by run --keep-output (the log says so): objects and their records, not checkable.
    pruned_objects: int = 0
    pruned_records: int = 0
    notes: list[str] = field(default_factory=list)

    def delivered(self, seq: int, event_time: float | None, delivered_at: float | None) -> None:
        self.seqs.add(seq)
        if event_time is not None:
            self.per_second[int(event_time)] += 1
            if delivered_at is not None:
                self.latencies_s.append(delivered_at - event_time)

    def errored(self, error_type: str, seq: int | None) -> None:
        self.errors[error_type] += 1
        if seq is None:
            self.errors_untraced += 1
        else:
            self.error_seqs.add(seq)
