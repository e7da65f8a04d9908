"""Packing events into records, and every stage that splits them again: the transform Lambda, the
embedded Firehose's Parquet conversion, the audit's readers."""

from __future__ import annotations

import base64
import json

import orjson
import pytest

from producer.audit import objects
from producer.delivery.packing import MAX_EVENTS_PER_RECORD, Packer, unpackable
from producer.local import parquet
from tests.helpers import load_transform

transform = load_transform("loadgen_transform_packing")


def _events(n: int, size: int = 100) -> list[bytes]:
    out = []
    for i in range(n):
        body = orjson.dumps({"event_id": f"e{i}", "pad": ""})
        out.append(orjson.dumps({"event_id": f"e{i}", "pad": "x" * (size - len(body) - 1)}) + b"\n")
    return out


def _pack(target: int, events: list[bytes]) -> list[tuple[bytes, int]]:
    packer = Packer(target)
    done: list[tuple[bytes, int]] = []
    for e in events:
        packer.add(e, done)
    packer.take(done)
    return done


def test_records_fill_up_to_the_target_and_keep_every_event_in_order() -> None:
    events = _events(200)  # 100 bytes each
    records = _pack(1_000, events)
    assert [n for _, n in records] == [10] * 20
    assert all(len(r) == 1_000 for r, _ in records)
    assert b"".join(r for r, _ in records) == b"".join(events)


def test_an_event_larger_than_the_target_travels_alone_and_newlines_are_added() -> None:
    small, big = b'{"event_id":"a"}', b'{"event_id":"b","pad":"' + b"x" * 2_000 + b'"}'
    records = _pack(1_000, [small, big, small])
    assert [n for _, n in records] == [1, 1, 1]
    assert records[1][0] == big + b"\n" and records[0][0] == small + b"\n"


def test_never_more_events_a_record_than_de_aggregation_splits() -> None:
    records = _pack(1_000_000, _events(1_200, size=20))
    assert [n for _, n in records] == [MAX_EVENTS_PER_RECORD, MAX_EVENTS_PER_RECORD, 200]


@pytest.mark.parametrize("target", [0, -1, 1_024_001])
def test_a_target_outside_the_record_limit_is_refused(target: int) -> None:
    with pytest.raises(ValueError, match="pack target"):
        Packer(target)


@pytest.mark.parametrize(
    ("destination", "packable"),
    [
        ("ExtendedS3DestinationDescription", True),
        ("S3DestinationDescription", True),
        ("AmazonopensearchserviceDestinationDescription", False),
        ("HttpEndpointDestinationDescription", False),
    ],
)
def test_only_streams_delivering_to_s3_can_be_packed(destination: str, packable: bool) -> None:
    description = {"Destinations": [{"DestinationId": "d-1", destination: {}}]}
    reason = unpackable("s", description)
    assert (reason is None) is packable
    if reason is not None:
        assert reason.startswith("--pack s: ") and "S3" in reason


def _invoke(data: bytes) -> dict[str, str]:
    event = {"records": [{"recordId": "r1", "data": base64.b64encode(data).decode()}]}
    result: dict[str, str] = transform.lambda_handler(event, None)["records"][0]
    return result


def _event(i: int, amount: float | None = None) -> dict[str, object]:
    e: dict[str, object] = {
        "event_id": f"e{i}",
        "event_type": "purchase",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    if amount is not None:
        e["amount"] = amount
    return e


def test_the_transform_enriches_every_event_of_a_packed_record_into_one_record() -> None:
    packed = b"".join(json.dumps(_event(i, 50.0 * i)).encode() + b"\n" for i in range(4))
    out = _invoke(packed)
    assert out["result"] == "Ok" and out["recordId"] == "r1"
    lines = base64.b64decode(out["data"]).split(b"\n")
    assert lines[-1] == b""  # NDJSON: every event ends in a newline
    docs = [json.loads(line) for line in lines[:-1]]
    assert [d["event_id"] for d in docs] == ["e0", "e1", "e2", "e3"]
    assert [d["amount_category"] for d in docs] == ["low", "low", "low", "high"]
    assert all(d["processing_status"] == "SUCCESS" for d in docs)


def test_concatenated_documents_are_split_too() -> None:
    out = _invoke(json.dumps(_event(1)).encode() + json.dumps(_event(2)).encode())
    assert out["result"] == "Ok"
    assert base64.b64decode(out["data"]).count(b"\n") == 2


def test_one_bad_event_fails_its_whole_packed_record_with_the_original_data() -> None:
    packed = json.dumps(_event(1)).encode() + b"\n" + b'{"event_id": "e2"}\n'  # e2 lacks fields
    record = base64.b64encode(packed).decode()
    out = _invoke(packed)
    assert out == {"recordId": "r1", "result": "ProcessingFailed", "data": record}


def test_parquet_conversion_makes_a_row_of_each_document_of_a_record() -> None:
    schema = parquet.ParquetFormat(columns=(("event_id", "string"), ("amount", "double"))).schema()
    rows = parquet.convert_record(b'{"event_id":"a","amount":1}\n{"event_id":"b"}\n', schema)
    assert rows == [{"event_id": "a", "amount": 1.0}, {"event_id": "b", "amount": None}]
    assert parquet.convert_record(b'{"event_id":"a"}{"event_id":"b"}', schema)[1]["event_id"] == "b"
    with pytest.raises(parquet.ConversionError):
        parquet.convert_record(b'{"event_id":"a"}\n[1]\n', schema)  # one bad document fails the record


def test_the_audit_counts_each_event_of_a_packed_record_in_the_error_output() -> None:
    packed = b'{"run_id":"r","seq":1}\n{"run_id":"r","seq":2}\n'
    envelope = orjson.dumps(
        {"errorCode": "Lambda.ProcessingFailed", "rawData": base64.b64encode(packed).decode()}
    )
    found = list(objects.error_envelopes(envelope + b"\n"))
    assert [raw for _, raw in found] == [b'{"run_id":"r","seq":1}', b'{"run_id":"r","seq":2}']


def test_error_codes_are_read_from_both_error_formats() -> None:
    raw = base64.b64encode(b'{"run_id":"r","seq":1}\n').decode()
    lam = orjson.dumps({"errorCode": "Lambda.ProcessingFailed", "rawData": raw})
    conv = orjson.dumps({"lastErrorCode": "DataFormatConversion.MalformedData", "rawData": raw})
    codes = [code for code, _ in objects.error_envelopes(lam + b"\n" + conv + b"\n")]
    assert codes == ["Lambda.ProcessingFailed", "DataFormatConversion.MalformedData"]
