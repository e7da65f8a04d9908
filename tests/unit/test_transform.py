"""deploy/lambda/transform.py: the Firehose transformation contract, the enrichment, and the
6 MB response limit at the largest processor buffer deploy/pipeline.yaml allows.

The recipe's five sample events were not available; SAMPLES are five representative ones in the
documented event shape (three sent alone, two in one batch), chosen to cover a registered buyer,
a guest, a numeric-string amount and an event without an amount.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producer.aws.cloudformation import load_template
from tests.helpers import load_transform

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "pipeline.yaml"
ENRICHMENT = ("processed_timestamp", "processing_status", "user_category", "amount_category")
# Firehose record ids are 56-digit strings in the documented sample events; 64 leaves room.
# https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html
RECORD_ID_CHARS = 64


transform = load_transform()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _event(*payloads: bytes, id_chars: int = 56) -> dict[str, Any]:
    """A Firehose transformation event (Direct PUT source)."""
    return {
        "invocationId": "00540a87-5050-496a-84e4-e7d92bbaf5e2",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/realtime-data-stream",
        "region": "us-east-1",
        "records": [
            {
                "recordId": str(i).rjust(id_chars, "4"),
                "approximateArrivalTimestamp": 1796112000123,
                "data": _b64(p),
            }
            for i, p in enumerate(payloads)
        ],
    }


def _decoded(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["data"], validate=True)


SAMPLES: list[dict[str, Any]] = [
    {
        "event_id": "9b2f0c6e-1f3a-4c1e-9a4b-6d0e8f7a1b2c",
        "user_id": "user_123",
        "event_type": "purchase",
        "amount": 149.99,
        "product_id": "P100001",
        "timestamp": "2026-12-01T08:00:00.123Z",
        "source": "web",
    },
    {
        "event_id": "1c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
        "user_id": "",
        "event_type": "page_view",
        "timestamp": "2026-12-01T08:00:01.004Z",
        "source": "web",
        "page": "/home",
    },
    {
        "event_id": "2d3e4f50-6172-4839-a4b5-c6d7e8f90a1b",
        "user_id": "user_456",
        "event_type": "purchase",
        "amount": "250",
        "product_id": "P100002",
        "timestamp": "2026-12-01T08:00:02.500Z",
        "source": "mobile",
    },
    {
        "event_id": "3e4f5061-7283-494a-b5c6-d7e8f90a1b2c",
        "user_id": "",
        "event_type": "purchase",
        "amount": 12.5,
        "product_id": "P100003",
        "timestamp": "2026-12-01T08:00:03.000Z",
        "source": "mobile",
    },
    {
        "event_id": "4f506172-8394-4a5b-86d7-e8f90a1b2c3d",
        "user_id": "sensor-0042",
        "event_type": "telemetry",
        "timestamp": "2026-12-01T08:00:04.250Z",
        "source": "iot",
        "temperature_c": 21.4,
    },
]
# What the recipe's enrichment must add to each sample (processed_timestamp checked separately).
EXPECTED: list[dict[str, str | None]] = [
    {"processing_status": "SUCCESS", "user_category": "registered", "amount_category": "high"},
    {"processing_status": "SUCCESS", "user_category": "guest", "amount_category": None},
    {"processing_status": "SUCCESS", "user_category": "registered", "amount_category": "high"},
    {"processing_status": "SUCCESS", "user_category": "guest", "amount_category": "low"},
    {"processing_status": "SUCCESS", "user_category": "registered", "amount_category": None},
]


def _run(*events: dict[str, Any]) -> dict[str, Any]:
    payloads = [json.dumps(e).encode() for e in events]
    response: dict[str, Any] = transform.lambda_handler(_event(*payloads), None)
    return response


def _check_enriched(source: dict[str, Any], record: dict[str, Any], expected: dict[str, str | None]) -> None:
    assert record["result"] == "Ok"
    data = _decoded(record)
    assert data.endswith(b"\n") and data.count(b"\n") == 1  # one JSON object per line in S3
    out = json.loads(data)
    # None: the recipe adds no such field (amount_category without an amount).
    assert {k: out.get(k) for k in expected} == expected
    assert {k for k, v in expected.items() if v is None}.isdisjoint(out)
    processed = datetime.fromisoformat(out["processed_timestamp"])
    assert processed.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - processed) < timedelta(seconds=30)
    original = {k: v for k, v in out.items() if k not in ENRICHMENT}
    if isinstance(source.get("amount"), str):
        assert original.pop("amount") == float(source["amount"])
        source = {k: v for k, v in source.items() if k != "amount"}
    assert original == source


@pytest.mark.parametrize("index", [0, 1, 2])
def test_single_samples(index: int) -> None:
    response = _run(SAMPLES[index])
    (record,) = response["records"]
    assert record["recordId"] == "0".rjust(56, "4")
    _check_enriched(SAMPLES[index], record, EXPECTED[index])


def test_batch_of_two_samples_keeps_ids_and_order() -> None:
    response = _run(SAMPLES[3], SAMPLES[4])
    assert [r["recordId"] for r in response["records"]] == ["0".rjust(56, "4"), "1".rjust(56, "4")]
    for source, record, expected in zip(SAMPLES[3:], response["records"], EXPECTED[3:], strict=True):
        _check_enriched(source, record, expected)


def test_string_amount_becomes_a_number() -> None:
    (record,) = _run(SAMPLES[2])["records"]
    out = json.loads(_decoded(record))
    assert out["amount"] == 250.0 and isinstance(out["amount"], float)


@pytest.mark.parametrize(
    ("amount", "category"),
    [
        (0, "low"),
        (49.99, "low"),
        (50, "low"),
        ("99.5", "low"),
        (100, "low"),
        (100.01, "high"),
        ("250", "high"),
        (" 7 ", "low"),
    ],
)
def test_amount_categories(amount: object, category: str) -> None:
    (record,) = _run({**SAMPLES[0], "amount": amount})["records"]
    assert json.loads(_decoded(record))["amount_category"] == category


def test_guest_without_user_id_field() -> None:
    event = {k: v for k, v in SAMPLES[1].items() if k != "user_id"}
    (record,) = _run(event)["records"]
    assert json.loads(_decoded(record))["user_category"] == "guest"


MALFORMED: list[bytes] = [
    b"not json at all",
    b'{"event_id": "x", "amount": ',  # truncated
    b"[1, 2, 3]",  # JSON, not an object
    b"\xff\xfe\x00garbage",  # not UTF-8
    json.dumps({**SAMPLES[0], "amount": "twelve"}).encode(),
    json.dumps({**SAMPLES[0], "amount": True}).encode(),
    json.dumps({**SAMPLES[0], "amount": -5}).encode(),
    json.dumps({**SAMPLES[0], "amount": [1]}).encode(),
    b'{"event_id": "x", "amount": NaN}',
]


def test_malformed_records_fail_with_their_original_data() -> None:
    good = json.dumps(SAMPLES[0]).encode()
    event = _event(good, *MALFORMED, good)
    response = transform.lambda_handler(event, None)
    records = response["records"]
    assert [r["recordId"] for r in records] == [r["recordId"] for r in event["records"]]
    assert [r["result"] for r in records] == ["Ok"] + ["ProcessingFailed"] * len(MALFORMED) + ["Ok"]
    for sent, back in zip(event["records"][1:-1], records[1:-1], strict=True):
        assert back["data"] == sent["data"]  # Firehose writes it, unchanged, to the error prefix


def test_record_that_is_not_base64_fails_and_keeps_its_data() -> None:
    event = _event(b"{}")
    event["records"][0]["data"] = "@@not base64@@"
    (record,) = transform.lambda_handler(event, None)["records"]
    assert record == {
        "recordId": event["records"][0]["recordId"],
        "result": "ProcessingFailed",
        "data": "@@not base64@@",
    }


def _nested(depth: int) -> bytes:
    return b'{"event_id":"e","event_type":"t","timestamp":"ts","x":' + b"[" * depth + b"]" * depth + b"}"


# Inputs that used to raise out of the handler (failing the whole batch) or come back Ok as invalid
# JSON: a lone surrogate (no UTF-8 encoding), a 400-digit integer amount (float() overflows),
# nesting deeper than the parser's recursion limit (in a field and as the amount), and NaN or
# Infinity anywhere, which Python's json module reads and would write back as non-JSON.
HOSTILE: dict[str, bytes] = {
    "lone_surrogate": json.dumps({**SAMPLES[0], "page": "\ud800"}).encode(),
    "lone_surrogate_key": json.dumps({**SAMPLES[0], "\udfff": 1}).encode(),
    "400_digit_amount": json.dumps({**SAMPLES[0], "amount": 10**399}).encode(),
    "deep_nesting": _nested(100_000),
    "deep_nesting_amount": json.dumps({**SAMPLES[0], "amount": None})
    .encode()
    .replace(b"null", b"[" * 5000 + b"]" * 5000),
    "nan_field": json.dumps({**SAMPLES[0], "temperature_c": float("nan")}).encode(),
    "infinity_field": json.dumps({**SAMPLES[0], "extra": {"v": [float("inf")]}}).encode(),
    "minus_infinity_amount": json.dumps({**SAMPLES[0], "amount": float("-inf")}).encode(),
    "overflowing_float_field": json.dumps(SAMPLES[0]).encode()[:-1] + b', "big": 1e999}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_one_hostile_record_fails_alone_with_its_data(name: str) -> None:
    good = json.dumps(SAMPLES[3]).encode()
    event = _event(good, HOSTILE[name], good)
    response = transform.lambda_handler(event, None)
    records = response["records"]
    assert [r["result"] for r in records] == ["Ok", "ProcessingFailed", "Ok"]
    assert records[1]["data"] == event["records"][1]["data"]
    for ok in (records[0], records[2]):
        _check_enriched(SAMPLES[3], ok, EXPECTED[3])
        # Strict JSON: Ok data must parse without Python's NaN/Infinity extension.
        json.loads(_decoded(ok), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    json.dumps(response, allow_nan=False)  # the response itself is JSON the runtime can send


def test_producer_amount_category_does_not_survive_without_an_amount() -> None:
    (record,) = _run({**SAMPLES[1], "amount_category": "medium"})["records"]
    assert "amount_category" not in json.loads(_decoded(record))


# ---------------------------------------------------------------- 6 MB response limit

# The smallest event of the documented shape: a uuid, an empty (guest) user_id, a short type, the
# millisecond timestamp and the source. Every generator in producer/events sends more than this.
SMALLEST = {
    "event_id": "3f2b7c1e-9a4d-4e21-8f0a-1c2d3e4f5a6b",
    "user_id": "",
    "event_type": "click",
    "timestamp": "2026-12-01T08:00:00.123Z",
    "source": "iot",
}


def _max_processor_buffer_bytes() -> int:
    spec = load_template(TEMPLATE.read_text(encoding="utf-8"))["Parameters"]["ProcessorBufferSizeMB"]
    # MiB, the larger reading of Firehose's "MB"; Firehose's own API pages use MiB for buffers.
    # https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html
    return int(float(spec["MaxValue"]) * 1024 * 1024)


def _full_buffer(buffer_bytes: int, payload: bytes) -> dict[str, Any]:
    # One record more than fits: a buffer is a hint, the last record may overshoot it.
    count = buffer_bytes // len(payload) + 1
    return _event(*([payload] * count), id_chars=RECORD_ID_CHARS)


def _growth(payload: bytes) -> float:
    event = _event(*([payload] * 200), id_chars=RECORD_ID_CHARS)
    response = transform.lambda_handler(event, None)
    return transform.response_size(response) / (200 * len(payload))  # type: ignore[no-any-return]


def test_maximal_batch_of_smallest_records_stays_under_6_mb() -> None:
    payload = json.dumps(SMALLEST, separators=(",", ":")).encode()
    event = _full_buffer(_max_processor_buffer_bytes(), payload)
    response = transform.lambda_handler(event, None)
    size = transform.response_size(response)
    assert len(response["records"]) == len(event["records"])
    assert all(r["result"] == "Ok" for r in response["records"])
    assert size < transform.MAX_RESPONSE_BYTES, f"{size} bytes"
    # Measured growth for these records, recorded in the template's comment (3.32x at 56-char ids).
    assert 3.0 < _growth(payload) < 3.6


# The smallest event the transform returns Ok: the three required fields, one character each.
MINIMAL_VALID = b'{"event_id":"a","event_type":"b","timestamp":"c"}'


def _worst_events() -> list[bytes]:
    """Events built to grow the most: the minimal event, plus a user_id ("registered" is the longer
    category), an amount (adds amount_category; 1E15 is written back as 1000000000000000.0), then
    padded to ~100 bytes and beyond with more such floats, the largest growth a 4-byte number has."""
    events = [MINIMAL_VALID]
    current = MINIMAL_VALID[:-1] + b',"user_id":"u","amount":1E15'
    for key in "defghijklm":
        events.append(current + b"}")
        current += b',"' + key.encode() + b'":1E15'
    return events


def _worst_growth() -> tuple[float, bytes]:
    return max((_growth(e), e) for e in _worst_events())


def test_processor_buffer_cannot_overflow_the_response_for_the_worst_small_events() -> None:
    """Every Ok record, however small (down to the minimal valid event) and however it was written,
    fits: MaxValue x the worst measured growth stays under 6 MB, and a full buffer of the worst
    event really comes back whole. Failed records of at least that size grow less (checked)."""
    growth, worst = _worst_growth()
    buffer_bytes = _max_processor_buffer_bytes()
    assert any(90 <= len(e) <= 110 for e in _worst_events())  # the ~100-byte events are covered
    assert buffer_bytes * growth < transform.MAX_RESPONSE_BYTES, f"{growth:.2f}x of {buffer_bytes} bytes"
    event = _full_buffer(buffer_bytes, worst)
    response = transform.lambda_handler(event, None)
    assert {r["result"] for r in response["records"]} == {"Ok"}
    assert transform.response_size(response) < transform.MAX_RESPONSE_BYTES
    # A record that fails comes back as itself: less growth than any Ok record of its size.
    failed = b"x" * len(MINIMAL_VALID)
    response = transform.lambda_handler(_event(*([failed] * 200), id_chars=RECORD_ID_CHARS), None)
    assert {r["result"] for r in response["records"]} == {"ProcessingFailed"}
    assert transform.response_size(response) / (200 * len(failed)) < growth


def test_aws_maximum_buffer_would_exceed_the_limit_and_fails_loudly() -> None:
    """Why the template caps the parameter below AWS's 3 MB: the same records at 3 MB overflow."""
    payload = json.dumps(SMALLEST, separators=(",", ":")).encode()
    event = _full_buffer(3 * 1024 * 1024, payload)
    with pytest.raises(RuntimeError, match="exceeds the 6291456 byte Lambda limit: lower"):
        transform.lambda_handler(event, None)


def test_typical_records_grow_less() -> None:
    typical = json.dumps({**SAMPLES[0], "session_id": "s" * 36, "user_agent": "Mozilla/5.0 " * 6}).encode()
    smallest = json.dumps(SMALLEST, separators=(",", ":")).encode()
    assert _growth(typical) < _growth(smallest)


@pytest.mark.parametrize("field", ["event_id", "event_type", "timestamp"])
def test_events_without_a_required_field_fail_with_their_data(field: str) -> None:
    event = {
        "event_id": "e-1",
        "user_id": "user_1",
        "event_type": "page_view",
        "timestamp": "2026-12-01T08:00:00.000Z",
        "source": "web",
    }
    del event[field]
    payload = json.dumps(event).encode() + b"\n"
    (record,) = transform.lambda_handler(_event(payload), None)["records"]
    assert record["result"] == "ProcessingFailed"
    assert _decoded(record) == payload
