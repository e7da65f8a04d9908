"""Per stream: what was accepted against what arrived, once, late, twice, or in the error output.

missing = accepted but neither delivered nor in the error output. With fan-out to every
stream (the default) the expected sequence numbers are exactly 0..N-1 (a --workers run: the
workers' interleaved seq spaces) minus the dead-lettered ones, so the missing ones are listed;
when a profile routes only some sources to a stream the count is derived from the summary's
accepted count instead (``exact: false``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from producer.audit import trace
from producer.audit.findings import StreamFindings
from producer.audit.hints import BufferHints, check
from producer.audit.runinfo import RunInfo

FIRST_FEW = 10


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (p in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil without floats drifting
    return float(sorted_values[min(len(sorted_values), int(rank)) - 1])


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p90": round(percentile(ordered, 90), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
        "count": len(ordered),
    }


@dataclass(slots=True)
class StreamAudit:
    stream: str
    destination: str
    accepted: int
    dead_lettered: int
    exact: bool
    delivered_records: int
    delivered_unique: int
    missing: int
    missing_first: list[int]
    duplicates: int
    duplicates_first: list[int]
    error_output: dict[str, int]
    errors_untraced: int
    unexpected: int  # delivered though dead-lettered or beyond the run's last seq
    untraced_records: int
    other_run_records: int
    objects_gone: list[str]
    latency_s: dict[str, float] | None
    objects: dict[str, Any]
    hints: dict[str, Any] | None
    throttled_records: int
    retried_records: int
    notes: list[str] = field(default_factory=list)
    # Chart series (not in the terminal table): event second -> delivered events; per object.
    series: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and not self.objects_gone

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(run: RunInfo, found: StreamFindings, hints: BufferHints | None) -> StreamAudit:
    sent = run.streams[found.stream]
    exact = run.exact(found.stream)
    seqs, errs = found.seqs, found.error_seqs
    missing_first: list[int] = []
    unexpected = 0
    if exact:
        missing = 0
        for seq in run.expected_seqs():
            if seq in sent.dead_seqs:
                unexpected += seqs.count(seq) > 0
            elif not seqs.count(seq) and not errs.count(seq):
                missing += 1
                if len(missing_first) < FIRST_FEW:
                    missing_first.append(seq)
        unexpected += sum(1 for s in seqs.seen() if not run.made(s))
    else:
        accounted = len(set(seqs.seen()) | set(errs.seen()))
        missing = max(0, sent.accepted - accounted)
    duplicates, duplicates_first = seqs.duplicates()
    sizes = [float(o.bytes) for o in found.objects]
    size_dist = distribution(sizes)
    check_result = check(found.objects, hints) if hints is not None else None
    notes = list(found.notes)
    if found.errors_untraced and missing:
        notes.append(
            f"{found.errors_untraced} error records carry no trace fields (cut short); "
            "some of the missing may be among them"
        )
    if found.untraced_records and not seqs.unique:
        notes.append(
            f"none of the {found.untraced_records} delivered records carries {trace.RUN_ID_FIELD}/"
            f"{trace.SEQ_FIELD}: was the run made with --no-trace-fields, or by a version without them?"
        )
    elif found.untraced_records and missing:
        notes.append(
            f"{found.untraced_records} delivered records carry no trace fields (malformed records "
            "cut short?); some of the missing may be among them"
        )
    if not exact:
        notes.append("not every event was routed to this stream: missing is a count, not a list")
    if found.pruned_objects:
        notes.append(
            f"run --keep-output deleted {found.pruned_objects:,} delivered objects "
            f"({found.pruned_records:,} records, of this run or others) before this audit: their events "
            "could not be checked, and the missing include them"
        )
    start = min(found.per_second) if found.per_second else 0
    return StreamAudit(
        stream=found.stream,
        destination=found.destination,
        accepted=sent.accepted,
        dead_lettered=sent.dead_lettered,
        exact=exact,
        delivered_records=seqs.total,
        delivered_unique=seqs.unique,
        missing=missing,
        missing_first=missing_first,
        duplicates=duplicates,
        duplicates_first=duplicates_first,
        error_output=dict(found.errors),
        errors_untraced=found.errors_untraced,
        unexpected=unexpected,
        untraced_records=found.untraced_records,
        other_run_records=found.other_runs,
        objects_gone=found.objects_gone,
        latency_s=distribution(found.latencies_s),
        objects={
            "count": len(found.objects),
            "bytes": size_dist,
            "total_bytes": int(sum(sizes)),
        },
        hints=None
        if hints is None
        else {
            "interval_s": hints.interval_s,
            "size_mib": hints.size_mib,
            **({"processor_interval_s": hints.processor_interval_s} if hints.processor_interval_s else {}),
            **({} if check_result is None else asdict(check_result)),
        },
        throttled_records=sent.throttled_records,
        retried_records=sent.retried_records,
        notes=notes,
        series={
            "start": start,
            "rate": [[sec - start, n] for sec, n in sorted(found.per_second.items())],
            "objects": [
                [
                    round((o.delivered_at or 0.0) - start, 3),
                    o.bytes,
                    o.records,
                    None
                    if o.oldest_event is None or o.delivered_at is None
                    else round(o.delivered_at - o.oldest_event, 3),
                ]
                for o in sorted(found.objects, key=lambda o: o.delivered_at or 0.0)
            ],
        },
    )
