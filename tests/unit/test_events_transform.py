"""Generated records through deploy/lambda/transform.py: valid events come back Ok and enriched,
not-JSON and string-amount records come back ProcessingFailed with their data."""

from __future__ import annotations

import base64
import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from producer.encoding import MalformedSpec, RecordEncoder, encode_json_line
from producer.events.malformed import MalformedKind
from producer.events.registry import build_generator

TRANSFORM = Path(__file__).resolve().parents[2] / "deploy" / "lambda" / "transform.py"
WEIGHTS = {"web": 1.0, "mobile": 1.0, "iot": 1.0}


@pytest.fixture(scope="module")
def transform() -> ModuleType:
    assert TRANSFORM.is_file(), f"{TRANSFORM} is missing"
    spec = importlib.util.spec_from_file_location("loadgen_transform_for_events", TRANSFORM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _invoke(transform: ModuleType, records: list[bytes]) -> list[dict[str, Any]]:
    event: dict[str, Any] = {
        "invocationId": "test",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:000000000000:deliverystream/realtime-data-stream",
        "region": "us-east-1",
        "records": [
            {"recordId": f"{i:056d}", "approximateArrivalTimestamp": 0, "data": base64.b64encode(r).decode()}
            for i, r in enumerate(records)
        ],
    }
    response: dict[str, Any] = transform.lambda_handler(event, None)
    out: list[dict[str, Any]] = response["records"]
    assert [r["recordId"] for r in out] == [r["recordId"] for r in event["records"]]
    return out


def test_every_valid_generated_event_is_ok(transform: ModuleType) -> None:
    generator = build_generator(WEIGHTS, 21)
    events = [generator.next_event(1.7e9 + i / 100) for i in range(6000)]
    results = _invoke(transform, [encode_json_line(e) for e in events])
    assert {r["result"] for r in results} == {"Ok"}
    categories: set[str | None] = set()
    for event, result in zip(events, results, strict=True):
        enriched = json.loads(base64.b64decode(result["data"]))
        assert enriched["event_id"] == event["event_id"]
        assert enriched["user_category"] == ("registered" if event["user_id"] else "guest")
        assert enriched["processing_status"] == "SUCCESS"
        if event.get("amount") is None:
            assert "amount_category" not in enriched  # the recipe adds none without an amount
            categories.add(None)
        else:
            assert enriched["amount_category"] == ("high" if float(event["amount"]) > 100 else "low")
            categories.add(enriched["amount_category"])
    assert {None, "low", "high"} <= categories  # the catalog spans both bands and no-amount events


@pytest.mark.parametrize("kind", ["not_json", "string_amount", "missing_fields"])
def test_malformed_records_are_processing_failed_with_their_data(
    transform: ModuleType, kind: MalformedKind
) -> None:
    generator = build_generator(WEIGHTS, 22)
    encoder = RecordEncoder("json", MalformedSpec(share=1.0, kinds=(kind,)), random.Random(1))
    records = [encoder.encode(generator.next_event(1.7e9)) for _ in range(500)]
    results = _invoke(transform, records)
    assert {r["result"] for r in results} == {"ProcessingFailed"}
    assert [base64.b64decode(r["data"]) for r in results] == records
