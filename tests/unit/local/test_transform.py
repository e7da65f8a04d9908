"""The Lambda transformation contract: Ok delivered, Dropped dropped, ProcessingFailed enveloped."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson

from producer.local.transform import TransformRunner, find_transform, load_handler

ARN = "arn:aws:lambda:us-east-1:000000000000:function:transform"
TRANSFORM = """
import base64, json

def lambda_handler(event, context):
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        if doc.get("drop"):
            out.append({"recordId": r["recordId"], "result": "Dropped", "data": r["data"]})
        elif doc.get("bad"):
            out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
        else:
            doc["seen"] = event["deliveryStreamArn"]
            data = base64.b64encode((json.dumps(doc) + "\\n").encode()).decode()
            out.append({"recordId": r["recordId"], "result": "Ok", "data": data})
    return {"records": out}
"""


def _runner(handler: Any, retries: int = 0) -> TransformRunner:
    return TransformRunner(handler, ARN, "arn:stream", "us-east-1", 1024 * 1024, retries, clock=lambda: 5.0)


def test_ok_dropped_and_failed_are_routed(tmp_path: Path) -> None:
    path = tmp_path / "transform.py"
    path.write_text(TRANSFORM)
    records = [b'{"n": 1}', b'{"drop": true}', b'{"bad": true}', b'{"n": 2}']
    outcome = _runner(load_handler(path)).run(records, [1.0, 1.0, 2.0, 2.0])
    assert [orjson.loads(r)["seen"] for r in outcome.ok] == ["arn:stream", "arn:stream"]
    assert [orjson.loads(r)["n"] for r in outcome.ok] == [1, 2]
    assert outcome.ok_arrivals == [1.0, 2.0]
    assert outcome.dropped == 1
    [failed] = [orjson.loads(e) for e in outcome.failed]
    assert set(failed) == {
        "attemptsMade",
        "arrivalTimestamp",
        "errorCode",
        "errorMessage",
        "attemptEndingTimestamp",
        "rawData",
        "lambdaArn",
    }
    assert base64.b64decode(failed["rawData"]) == b'{"bad": true}'
    assert failed["arrivalTimestamp"] == 2000 and failed["attemptEndingTimestamp"] == 5000
    assert failed["lambdaArn"] == ARN and failed["attemptsMade"] == 1


def test_a_missing_record_id_fails_the_whole_invocation() -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        first = event["records"][0]
        return {"records": [{"recordId": first["recordId"], "result": "Ok", "data": first["data"]}]}

    outcome = _runner(handler).run([b"a", b"b"], [1.0, 1.0])
    assert outcome.ok == []
    assert [orjson.loads(e)["errorCode"] for e in outcome.failed] == ["Lambda.MissingRecordId"] * 2


def test_a_raising_function_is_retried_then_fails_every_record() -> None:
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["records"]))
        raise RuntimeError("boom")

    outcome = _runner(handler, retries=3).run([b"a"], [1.0])
    assert calls == [1, 1, 1, 1]
    [failed] = [orjson.loads(e) for e in outcome.failed]
    assert failed["errorCode"] == "Lambda.FunctionError" and failed["attemptsMade"] == 4


def test_invocations_are_cut_at_the_processor_buffer_size() -> None:
    sizes: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        sizes.append(len(event["records"]))
        return {"records": [{**r, "result": "Ok"} for r in event["records"]]}

    runner = TransformRunner(handler, ARN, "arn:stream", "us-east-1", 100, 0)
    outcome = runner.run([b"x" * 40] * 5, [1.0] * 5)
    assert sizes == [2, 2, 1] and len(outcome.ok) == 5


def test_without_a_transform_file_records_pass_through(tmp_path: Path) -> None:
    assert find_transform(None, [tmp_path]) is None
    outcome = _runner(None).run([b"a", b"b"], [1.0, 2.0])
    assert outcome.ok == [b"a", b"b"] and not outcome.failed
