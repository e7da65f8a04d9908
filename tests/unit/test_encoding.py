"""Records: JSON lines, CSV, the size limit, and the malformed share."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from typing import Any

import orjson
import pytest

from producer.audit import trace
from producer.encoding import (
    CSV_COLUMNS,
    MalformedSpec,
    RecordEncoder,
    encode_csv_line,
    encode_json_line,
    encoder_for,
    too_large,
)
from producer.events.malformed import DROPPED_FIELDS
from producer.events.registry import build_generator
from producer.firehose import limits

EVENT: dict[str, Any] = {
    "event_id": "e-1",
    "user_id": "",
    "event_type": "purchase",
    "amount": 12.5,
    "product_id": "P100001",
    "timestamp": "2026-01-01T00:00:00.000Z",
    "source": "web",
    "session_id": "s-1",
    "geo": {"city": "São Paulo"},
}


def test_json_line_is_one_object_and_a_newline() -> None:
    line = encode_json_line(EVENT)
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == EVENT


def test_csv_line_has_the_documented_columns_and_quotes_only_where_needed() -> None:
    event = dict(EVENT, user_id='say "hi", ok', product_id=None)
    line = encode_csv_line(event)
    assert line.endswith(b"\n") and b'"say ""hi"", ok"' in line
    row = next(csv.reader(io.StringIO(line.decode())))
    assert len(row) == len(CSV_COLUMNS)
    parsed = dict(zip(CSV_COLUMNS, row, strict=True))
    assert parsed["user_id"] == 'say "hi", ok' and parsed["amount"] == "12.5"
    assert parsed["product_id"] == "" and parsed["device_id"] == ""


def test_encoder_for_picks_the_format() -> None:
    assert encoder_for("json") is encode_json_line
    assert encoder_for("csv") is encode_csv_line
    assert encoder_for("csv", transient=True) is encode_csv_line
    event = {"event_id": "e", "amount": 1.5, "nested": {"a": [1, 2]}}
    transient = encoder_for("json", transient=True)
    assert transient is not encode_json_line and transient(event) == encode_json_line(event)


def test_too_large() -> None:
    assert not too_large(b"x" * limits.MAX_RECORD_BYTES)
    assert too_large(b"x" * (limits.MAX_RECORD_BYTES + 1))


def _records(spec: MalformedSpec, n: int, seed: int = 1) -> tuple[list[bytes], RecordEncoder]:
    generator = build_generator({"web": 1, "mobile": 1, "iot": 1}, seed)
    encoder = RecordEncoder("json", spec, random.Random(seed))
    encode = encoder.per_event  # what the generation loop calls
    return [encode(generator.next_event(1.7e9)) for _ in range(n)], encoder


def classify(record: bytes) -> str:
    try:
        event = orjson.loads(record)
    except orjson.JSONDecodeError:
        return "not_json"
    if isinstance(event.get("amount"), str):
        return "string_amount"
    if any(f not in event for f in DROPPED_FIELDS):
        return "missing_fields"
    return "ok"


def test_no_malformed_records_by_default() -> None:
    records, encoder = _records(MalformedSpec(), 5000)
    assert {classify(r) for r in records} == {"ok"} and encoder.malformed == 0


def test_malformed_share_and_kinds() -> None:
    records, encoder = _records(MalformedSpec(share=0.1), 30_000)
    kinds = Counter(classify(r) for r in records)
    assert (len(records) - kinds["ok"]) / len(records) == pytest.approx(0.1, abs=0.01)
    assert encoder.malformed == len(records) - kinds["ok"]
    for kind in ("not_json", "string_amount", "missing_fields"):
        assert kinds[kind] / len(records) == pytest.approx(0.1 / 3, abs=0.006), kinds
    assert all(r.endswith(b"\n") and r.count(b"\n") == 1 for r in records)


def test_only_the_chosen_kinds() -> None:
    records, _ = _records(MalformedSpec(share=0.5, kinds=("string_amount",)), 2000)
    assert set(Counter(classify(r) for r in records)) == {"ok", "string_amount"}


def test_malformed_records_keep_their_event_id_when_they_parse() -> None:
    records, _ = _records(MalformedSpec(share=1.0, kinds=("string_amount", "missing_fields")), 500)
    assert all(isinstance(orjson.loads(r)["event_id"], str) for r in records)


def test_malformed_choice_is_reproducible() -> None:
    spec = MalformedSpec(share=0.2)
    assert _records(spec, 2000, seed=4)[0] == _records(spec, 2000, seed=4)[0]


def test_records_cut_short_keep_the_trace_fields_the_generator_added_last() -> None:
    generator = build_generator({"web": 1, "mobile": 1, "iot": 1}, 3)
    encoder = RecordEncoder("json", MalformedSpec(share=1.0, kinds=("not_json",)), random.Random(3))
    for seq in range(300):
        event = generator.next_event(1.7e9)
        event["run_id"], event["seq"] = "r-1", seq  # as generation.generate adds them: at the end
        record = encoder.encode(event)
        assert classify(record) == "not_json"
        assert trace.from_raw(record) == trace.Trace("r-1", seq, None), record
