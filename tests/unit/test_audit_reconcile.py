"""Reconciliation arithmetic on hand-made findings."""

from __future__ import annotations

import pytest

from producer.audit.findings import ObjectStat, SeqCounts, StreamFindings
from producer.audit.hints import BufferHints, check, from_description, parse
from producer.audit.reconcile import percentile, reconcile
from producer.audit.runinfo import RunInfo, StreamSent
from producer.summary import RunSummary


def _run(generated: int, accepted: int, dead: set[int] | None = None) -> RunInfo:
    sent = StreamSent(accepted, len(dead or ()), 0, 0, 0, dead or set())
    return RunInfo(
        "20260101T000000Z-abcdef",
        generated,
        RunSummary(kind="run", target="", duration_s=10, streams={}),
        {"s": sent},
    )


def test_seq_counts() -> None:
    counts = SeqCounts()
    for seq in (0, 5, 5, 5, 2000, -1):
        counts.add(seq)
    assert (counts.unique, counts.total, counts.count(5), counts.count(7)) == (3, 5, 3, 0)
    assert counts.duplicates() == (2, [5])
    assert counts.seen() == [0, 5, 2000]


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) == 0.0


def test_missing_duplicates_errors_and_dead_letters() -> None:
    found = StreamFindings("s", "s3")
    for seq in range(100):
        if seq in (10, 11, 12):
            continue  # lost
        if seq == 20:
            found.errored("processing-failed", seq)  # in the error output, so not missing
            continue
        if seq == 30:
            continue  # dead-lettered by the producer
        found.delivered(seq, 1000.0 + seq / 10, 1002.0 + seq / 10)
    found.delivered(40, 1004.0, 1007.0)  # a second copy, 3 s late
    audit = reconcile(_run(100, 99, {30}), found, None)
    assert (audit.missing, audit.missing_first) == (3, [10, 11, 12])
    assert (audit.duplicates, audit.duplicates_first) == (1, [40])
    assert audit.error_output == {"processing-failed": 1}
    assert audit.delivered_unique == 95 and audit.unexpected == 0
    assert audit.latency_s is not None and audit.latency_s["p50"] == 2.0 and audit.latency_s["max"] == 3.0
    assert not audit.clean


def test_routed_stream_is_counted_not_listed() -> None:
    found = StreamFindings("s", "s3")
    for seq in range(0, 100, 2):
        found.delivered(seq, None, None)
    audit = reconcile(_run(100, 52), found, None)  # only some events were routed here
    assert (audit.exact, audit.missing, audit.missing_first) == (False, 2, [])


def _obj(first: float, span: float, size: int) -> ObjectStat:
    return ObjectStat("k", 1, size, first + span, first, first + span)


def test_hint_check() -> None:
    hints = BufferHints(2.0, 1)
    steady = [_obj(t * 2.0, 1.9, 1000) for t in range(15)]  # 30 s, one object per interval
    result = check(steady, hints)
    assert result is not None and result.consistent, result
    assert result.expected_min <= 15 <= result.expected_max
    stretched = [_obj(t * 10.0, 9.5, 1000) for t in range(3)]  # objects held 9.5 s at a 2 s hint
    result = check(stretched, hints)
    assert result is not None and not result.consistent
    assert any("longer apart" in p for p in result.problems)


def test_hints_from_description_and_text() -> None:
    description = {
        "Destinations": [
            {"ExtendedS3DestinationDescription": {"BufferingHints": {"IntervalInSeconds": 5, "SizeInMBs": 3}}}
        ]
    }
    assert from_description(description) == BufferHints(5.0, 3)
    assert parse("2s/1") == BufferHints(2.0, 1) and parse("60/5MiB") == BufferHints(60.0, 5)
    for bad, why in (
        ("2s", "is not INTERVAL/SIZE_MIB"),
        ("x/1", "is not INTERVAL/SIZE_MIB"),
        ("2s/0", "interval must be"),
        ("901s/1", "interval must be"),
    ):
        with pytest.raises(ValueError, match=why):
            parse(bad)
