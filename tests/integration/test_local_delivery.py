"""What the local Firehose writes: buffering by size and interval, key layout, gzip, the transform's
routing, OpenSearch index folders and backups, the delivery log, and restarts."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path
from typing import Any

import orjson

from producer import pipeline
from producer.local.delivery import STATE_DIR
from producer.local.server import LocalOptions
from tests.helpers import ThreadedLocalFirehose

TRANSFORM = """
import base64, json

def lambda_handler(event, context):
    out = []
    for r in event["records"]:
        doc = json.loads(base64.b64decode(r["data"]))
        result = doc.get("want", "Ok")
        data = base64.b64encode((json.dumps({**doc, "transformed": True}) + "\\n").encode()).decode()
        out.append({"recordId": r["recordId"], "result": result, "data": data})
    return {"records": out}
"""


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _log(out: Path) -> list[dict[str, Any]]:
    path = out / STATE_DIR / "delivery-log.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _events(n: int, **extra: Any) -> list[dict[str, bytes]]:
    return [{"Data": orjson.dumps({"event_id": f"e{i}", **extra}) + b"\n"} for i in range(n)]


def test_buffer_is_written_when_the_size_hint_is_reached(tmp_path: Path) -> None:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    fh = server.botocore_client()
    fh.create_delivery_stream(**pipeline.s3_stream_request("sized", interval_s=900, size_mib=1))
    big = [{"Data": b"y" * 100_000 + b"\n"} for _ in range(11)]  # 1.1 MB > 1 MiB
    fh.put_record_batch(DeliveryStreamName="sized", Records=big)
    bucket = tmp_path / "out" / pipeline.LOCAL_BUCKET
    _wait_for(lambda: len(_files(bucket)) == 1)  # long before the 900 s interval
    fh.put_record_batch(DeliveryStreamName="sized", Records=big[:1])
    time.sleep(0.2)
    assert len(_files(bucket)) == 1, "a buffer below the size hint waits for its interval"
    server.stop()  # shutdown delivers the rest
    assert len(_files(bucket)) == 2
    assert sum(e["records"] for e in _log(tmp_path / "out")) == 12


def test_buffer_is_written_when_the_interval_passes(tmp_path: Path) -> None:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    fh = server.botocore_client()
    fh.create_delivery_stream(**pipeline.s3_stream_request("timed", interval_s=1))
    fh.put_record_batch(DeliveryStreamName="timed", Records=_events(3))
    bucket = tmp_path / "out" / pipeline.LOCAL_BUCKET
    time.sleep(0.3)
    assert _files(bucket) == [], "not before the interval"
    _wait_for(lambda: len(_files(bucket)) == 1, timeout_s=5)
    [entry] = _log(tmp_path / "out")
    assert entry["delivered_at"] - entry["first_arrival"] >= 0.9
    server.stop()


def test_key_layout_and_delivery_log(tmp_path: Path) -> None:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    fh = server.botocore_client()
    fh.create_delivery_stream(**pipeline.s3_stream_request("laid-out"))
    fh.create_delivery_stream(
        DeliveryStreamName="default-prefix",
        ExtendedS3DestinationConfiguration={"RoleARN": pipeline.ROLE_ARN, "BucketARN": "arn:aws:s3:::plain"},
    )
    for name in ("laid-out", "default-prefix"):
        fh.put_record_batch(DeliveryStreamName=name, Records=_events(4))
    server.stop()
    out = tmp_path / "out"
    [custom] = _files(out / pipeline.LOCAL_BUCKET)
    rel = custom.relative_to(out / pipeline.LOCAL_BUCKET).as_posix()
    uuid_re = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(
        rf"raw-data/year=\d{{4}}/month=\d\d/day=\d\d/hour=\d\d/laid-out-1-\d{{4}}(-\d\d){{5}}-{uuid_re}", rel
    ), rel
    [plain] = _files(out / "plain")
    assert re.fullmatch(
        rf"\d{{4}}/\d\d/\d\d/\d\d/default-prefix-1-\d{{4}}(-\d\d){{5}}-{uuid_re}",
        plain.relative_to(out / "plain").as_posix(),
    )
    entries = {e["stream"]: e for e in _log(out)}
    assert entries["laid-out"]["key"] == f"{pipeline.LOCAL_BUCKET}/{rel}"
    assert entries["laid-out"]["records"] == 4
    assert entries["laid-out"]["bytes"] == custom.stat().st_size
    assert entries["laid-out"]["first_arrival"] <= entries["laid-out"]["last_arrival"]
    assert not list((out / STATE_DIR / "staging").iterdir()), "nothing left half-written"


def test_gzip_round_trip(tmp_path: Path) -> None:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    fh = server.botocore_client()
    request = pipeline.s3_stream_request("zipped")
    request["ExtendedS3DestinationConfiguration"]["CompressionFormat"] = "GZIP"
    fh.create_delivery_stream(**request)
    sent = _events(50)
    fh.put_record_batch(DeliveryStreamName="zipped", Records=sent)
    server.stop()
    [obj] = _files(tmp_path / "out" / pipeline.LOCAL_BUCKET)
    assert obj.name.endswith(".gz")
    assert gzip.decompress(obj.read_bytes()) == b"".join(r["Data"] for r in sent)


def test_transform_routes_ok_dropped_and_processing_failed(tmp_path: Path) -> None:
    transform = tmp_path / "transform.py"
    transform.write_text(TRANSFORM)
    server = ThreadedLocalFirehose(tmp_path / "out", LocalOptions(tmp_path / "out", transform_path=transform))
    server.start()
    fh = server.botocore_client()
    request = pipeline.s3_stream_request("transformed")
    request["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"] = {
        "Enabled": True,
        "Processors": [
            {
                "Type": "Lambda",
                "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:0:function:t"}
                ],
            }
        ],
    }
    fh.create_delivery_stream(**request)
    batch = _events(3) + _events(2, want="Dropped") + _events(1, want="ProcessingFailed")
    fh.put_record_batch(DeliveryStreamName="transformed", Records=batch)
    server.stop()
    bucket = tmp_path / "out" / pipeline.LOCAL_BUCKET
    [delivered] = _files(bucket / "raw-data")
    docs = [orjson.loads(line) for line in delivered.read_bytes().splitlines()]
    assert len(docs) == 3 and all(d["transformed"] for d in docs)
    [failed_obj] = _files(bucket / "errors")
    assert failed_obj.relative_to(bucket).as_posix().startswith("errors/processing-failed/year=")
    [envelope] = [orjson.loads(line) for line in failed_obj.read_bytes().splitlines()]
    assert envelope["errorCode"] == "Lambda.ProcessingFailed"
    assert envelope["lambdaArn"] == "arn:aws:lambda:us-east-1:0:function:t"
    assert orjson.loads(__import__("base64").b64decode(envelope["rawData"]))["want"] == "ProcessingFailed"


def test_opensearch_index_rotation_and_backups(tmp_path: Path) -> None:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    fh = server.botocore_client()
    hourly = pipeline.opensearch_stream_request("os-hourly")
    hourly["AmazonopensearchserviceDestinationConfiguration"]["IndexRotationPeriod"] = "OneHour"
    fh.create_delivery_stream(**hourly)
    everything = pipeline.opensearch_stream_request("os-all")
    everything["AmazonopensearchserviceDestinationConfiguration"]["S3BackupMode"] = "AllDocuments"
    fh.create_delivery_stream(**everything)
    good = _events(3)
    not_json = [{"Data": b"this is not a document\n"}]
    fh.put_record_batch(DeliveryStreamName="os-hourly", Records=good + not_json)
    fh.put_record_batch(DeliveryStreamName="os-all", Records=good)
    server.stop()
    out = tmp_path / "out"
    indexes = sorted(p.name for p in (out / "opensearch").iterdir())
    assert len(indexes) == 2
    assert re.fullmatch(r"realtime-events-\d{4}-\d\d-\d\d-\d\d", indexes[1]), indexes  # OneHour
    assert re.fullmatch(r"realtime-events-\d{4}-\d\d-\d\d", indexes[0]), indexes  # OneDay
    hourly_docs = _files(out / "opensearch" / indexes[1])
    assert [len(p.read_bytes().splitlines()) for p in hourly_docs] == [3]
    backup = out / pipeline.LOCAL_BUCKET / "opensearch-backup"
    failed = [p for p in _files(backup) if "AmazonOpenSearchService-failed" in p.as_posix()]
    [envelope] = [orjson.loads(line) for p in failed for line in p.read_bytes().splitlines()]
    assert envelope["esIndexName"] == indexes[1]
    all_docs = [p for p in _files(backup) if "failed" not in p.as_posix()]
    assert sum(len(p.read_bytes().splitlines()) for p in all_docs) == 3  # AllDocuments: os-all only


def test_restart_with_the_same_output_folder_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for run in range(2):
        server = ThreadedLocalFirehose(out)
        server.start()
        fh = server.botocore_client()
        fh.create_delivery_stream(**pipeline.s3_stream_request("kept"))
        fh.put_record_batch(DeliveryStreamName="kept", Records=_events(5, run=run))
        server.stop()
    objects = _files(out / pipeline.LOCAL_BUCKET)
    lines = [orjson.loads(line) for p in objects for line in p.read_bytes().splitlines()]
    assert sorted((d["run"], d["event_id"]) for d in lines) == sorted(
        (run, f"e{i}") for run in range(2) for i in range(5)
    )
    assert [e["records"] for e in _log(out)] == [5, 5]
