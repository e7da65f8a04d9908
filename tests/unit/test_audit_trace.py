"""Trace fields out of delivered records, including broken ones."""

from __future__ import annotations

import gzip

import orjson
import pytest

from producer.audit import objects, trace
from producer.events.base import parse_time


def test_json_record_gives_run_seq_and_event_time() -> None:
    record = orjson.dumps({"run_id": "r1", "seq": 41, "timestamp": "2026-01-01T00:00:01.500Z"})
    found = trace.from_record(record)
    assert found == trace.Trace("r1", 41, 1767225601.5)


def test_late_event_time_is_when_it_was_sent() -> None:
    # A late mobile event: its timestamp is the phone's, received_at is when it was sent.
    record = orjson.dumps(
        {
            "run_id": "r",
            "seq": 1,
            "timestamp": "2026-01-01T00:00:00.000Z",
            "received_at": "2026-01-01T00:10:00.000Z",
        }
    )
    found = trace.from_record(record)
    assert found is not None and found.event_time == 1767225600.0 + 600


def test_record_cut_short_after_the_trace_fields_is_still_traced() -> None:
    whole = orjson.dumps({"run_id": "20260101T000000Z-abc", "seq": 7, "user_id": "someone"})
    found = trace.from_record(whole[:40])
    assert found is not None and (found.run_id, found.seq, found.event_time) == (
        "20260101T000000Z-abc",
        7,
        None,
    )
    assert trace.from_record(whole[:10]) is None


@pytest.mark.parametrize(
    "body", [{"seq": 1}, {"run_id": "r"}, {"run_id": "r", "seq": "1"}, {"run_id": "r", "seq": True}, [1, 2]]
)
def test_records_without_valid_trace_fields_are_untraced(body: object) -> None:
    assert trace.from_record(orjson.dumps(body)) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1767225600, 1767225600.0),
        (1767225600123, 1767225600.123),
        ("nonsense", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_time(value: object, expected: float | None) -> None:
    assert parse_time(value) == expected


def test_objects_split_gzip_and_joined_records() -> None:
    data = gzip.compress(b'{"a":1}{"a":2}\n\n{"a":3}\n')
    assert list(objects.records(data)) == [b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_error_envelopes_give_the_original_record() -> None:
    envelope = orjson.dumps({"errorCode": "Lambda.ProcessingFailed", "rawData": "eyJzZXEiOjF9"})
    assert list(objects.error_envelopes(envelope + b"\nnot json\n")) == [
        ("Lambda.ProcessingFailed", b'{"seq":1}'),
        ("unreadable-envelope", b"not json"),
    ]
