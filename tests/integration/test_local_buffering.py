"""The local Firehose's buffering stages, timed from its delivery log: the Lambda processor's buffer
before the function and the destination's after it (latency ~ processor wait + destination wait,
the destination's size counting transformed bytes), zero buffering, and the AllDocuments backup's
own hints. Short intervals, against a real server on 127.0.0.1 through aiobotocore."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from producer import pipeline
from producer.local.server import LocalFirehose, LocalOptions
from producer.local.template import prepare
from tests.helpers import REPO
from tests.integration.local_support import firehose_client, lambda_processing, next_object

SHIPPED = REPO / "deploy" / "pipeline.yaml"
# Delivery can never be earlier than the hints allow; how much later depends on the machine.
EARLY_S = 0.05
LATE_S = 2.0

GROW = """
import base64

def lambda_handler(event, context):
    # Every record comes back 8 times larger.
    return {"records": [
        {"recordId": r["recordId"], "result": "Ok",
         "data": base64.b64encode(base64.b64decode(r["data"]) * 8).decode()}
        for r in event["records"]
    ]}
"""


@asynccontextmanager
async def _serve(options: LocalOptions) -> AsyncIterator[tuple[LocalFirehose, Any]]:
    async with LocalFirehose(options) as local, firehose_client(local.url) as fh:
        yield local, fh


async def _next_object(
    local: LocalFirehose, destination: str, seen: int, timeout_s: float = 15.0
) -> dict[str, Any]:
    return await next_object(local.options.output_dir, destination, seen, timeout_s)


def _latency(entry: dict[str, Any]) -> float:
    return float(entry["delivered_at"] - entry["first_arrival"])


def _events(count: int, tag: str) -> list[dict[str, bytes]]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return [
        {
            "Data": orjson.dumps({"event_id": f"{tag}-{i}", "event_type": "page_view", "timestamp": now})
            + b"\n"
        }
        for i in range(count)
    ]


async def _describe_s3(fh: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    description = (await fh.describe_delivery_stream(DeliveryStreamName=name))["DeliveryStreamDescription"]
    return description, description["Destinations"][0]["ExtendedS3DestinationDescription"]


async def _set(fh: Any, name: str, processor_s: int, destination_s: int) -> None:
    """UpdateDestination as a soak applies a setting: the processor's interval and the S3 hints."""
    description, s3 = await _describe_s3(fh, name)
    processing = s3["ProcessingConfiguration"]
    for parameter in processing["Processors"][0]["Parameters"]:
        if parameter["ParameterName"] == "BufferIntervalInSeconds":
            parameter["ParameterValue"] = str(processor_s)
    await fh.update_destination(
        DeliveryStreamName=name,
        CurrentDeliveryStreamVersionId=description["VersionId"],
        DestinationId=description["Destinations"][0]["DestinationId"],
        ExtendedS3DestinationUpdate={
            "BufferingHints": {"IntervalInSeconds": destination_s},
            "ProcessingConfiguration": processing,
        },
    )


async def test_latency_is_processor_wait_plus_destination_wait(tmp_path: Path) -> None:
    # The shipped template (Lambda transform, Parquet); each setting applied by UpdateDestination.
    params = ["StreamPrefix=lat", "ProcessorBufferIntervalSeconds=1", "S3BufferIntervalSeconds=1"]
    config, transform, _ = prepare(SHIPPED, params, "us-east-1", tmp_path / "state")
    options = LocalOptions(output_dir=tmp_path / "out", stream_config=config, transform_path=transform)
    async with _serve(options) as (local, fh):
        measured = []
        for i, (processor_s, destination_s) in enumerate([(1, 1), (2, 1), (1, 2)]):
            if i:
                await _set(fh, "lat", processor_s, destination_s)
            answer = await fh.put_record_batch(DeliveryStreamName="lat", Records=_events(20, f"s{i}"))
            assert answer["FailedPutCount"] == 0
            entry = await _next_object(local, "s3", i)
            assert entry["records"] == 20, entry  # every event transformed and converted
            latency = _latency(entry)
            measured.append(latency)
            expected = processor_s + destination_s
            assert expected - EARLY_S <= latency <= expected + LATE_S, (processor_s, destination_s, latency)
        parquet = next(
            (local.options.output_dir / "realtime-data-bucket" / "raw-data").rglob("*.parquet"), None
        )
        assert parquet is None or parquet.read_bytes().startswith(b"PAR1")
    print("latency (processor 1 s + S3 1 s, 2 s + 1 s, 1 s + 2 s):", [f"{m:.2f}" for m in measured])


async def test_destination_size_counts_transformed_bytes(tmp_path: Path) -> None:
    handler = tmp_path / "grow.py"
    handler.write_text(GROW)
    options = LocalOptions(output_dir=tmp_path / "out", transform_path=handler)
    body = pipeline.s3_stream_request("grow", interval_s=900, size_mib=1)
    body["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"] = lambda_processing("0.2", "900")
    async with _serve(options) as (local, fh):
        await fh.create_delivery_stream(**body)
        # 300 KB in: the 0.2 MB processor buffer is full at once; 2.4 MB come out of the
        # function, over the 1 MiB destination size, so the object is written long before 900 s.
        await fh.put_record_batch(DeliveryStreamName="grow", Records=[{"Data": b"x" * 100_000}] * 3)
        entry = await _next_object(local, "s3", 0, timeout_s=10)
        assert entry["bytes"] == 2_400_000 and entry["records"] == 3
        assert _latency(entry) < 5.0


async def test_zero_buffering_delivers_within_seconds(tmp_path: Path) -> None:
    async with _serve(LocalOptions(output_dir=tmp_path / "out")) as (local, fh):
        await fh.create_delivery_stream(**pipeline.s3_stream_request("zero", interval_s=0))
        for i in range(2):
            await fh.put_record_batch(DeliveryStreamName="zero", Records=[{"Data": b"now\n"}])
            entry = await _next_object(local, "s3", i, timeout_s=5)
            assert 1.0 - EARLY_S <= _latency(entry) <= 1.0 + LATE_S


async def test_all_documents_backup_follows_its_own_hints(tmp_path: Path) -> None:
    body = pipeline.opensearch_stream_request("os", interval_s=1)
    destination = body["AmazonopensearchserviceDestinationConfiguration"]
    destination["S3BackupMode"] = "AllDocuments"
    destination["S3Configuration"]["BufferingHints"] = {"SizeInMBs": 5, "IntervalInSeconds": 3}
    async with _serve(LocalOptions(output_dir=tmp_path / "out")) as (local, fh):
        await fh.create_delivery_stream(**body)
        await fh.put_record_batch(DeliveryStreamName="os", Records=[{"Data": b'{"a": 1}\n'}] * 4)
        indexed = await _next_object(local, "opensearch", 0)
        backup = await _next_object(local, "s3-backup", 0)
        assert indexed["records"] == backup["records"] == 4
        assert 1.0 - EARLY_S <= _latency(indexed) <= 1.0 + LATE_S
        assert 3.0 - EARLY_S <= _latency(backup) <= 3.0 + LATE_S
        # The backup's hints change live too (S3Update), for the buffers opened after.
        description = (await fh.describe_delivery_stream(DeliveryStreamName="os"))[
            "DeliveryStreamDescription"
        ]
        await fh.update_destination(
            DeliveryStreamName="os",
            CurrentDeliveryStreamVersionId=description["VersionId"],
            DestinationId=description["Destinations"][0]["DestinationId"],
            AmazonopensearchserviceDestinationUpdate={
                "S3Update": {"BufferingHints": {"IntervalInSeconds": 1}}
            },
        )
        await fh.put_record_batch(DeliveryStreamName="os", Records=[{"Data": b'{"a": 2}\n'}])
        backup = await _next_object(local, "s3-backup", 1)
        assert 1.0 - EARLY_S <= _latency(backup) <= 1.0 + LATE_S


async def test_a_lambda_added_by_update_runs_for_the_records_after_it(tmp_path: Path) -> None:
    handler = tmp_path / "grow.py"
    handler.write_text(GROW)
    options = LocalOptions(output_dir=tmp_path / "out", transform_path=handler)
    async with _serve(options) as (local, fh):
        await fh.create_delivery_stream(**pipeline.s3_stream_request("later", interval_s=1))
        await fh.put_record_batch(DeliveryStreamName="later", Records=[{"Data": b"ab"}])
        assert (await _next_object(local, "s3", 0))["bytes"] == 2
        description, _ = await _describe_s3(fh, "later")
        await fh.update_destination(
            DeliveryStreamName="later",
            CurrentDeliveryStreamVersionId=description["VersionId"],
            DestinationId=description["Destinations"][0]["DestinationId"],
            ExtendedS3DestinationUpdate={"ProcessingConfiguration": lambda_processing(interval_s="0")},
        )
        await fh.put_record_batch(DeliveryStreamName="later", Records=[{"Data": b"ab"}])
        transformed = await _next_object(local, "s3", 1)
        assert transformed["bytes"] == 16
        # Zero buffering before the function (1 s) plus the destination's 1 s.
        assert 2.0 - EARLY_S <= _latency(transformed) <= 2.0 + LATE_S
