"""UpdateDestination against a local Firehose on 127.0.0.1, through aiobotocore as the soak calls it:
the version id bump, stale versions and wrong destination ids refused, every invalid value refused
(at update and at create), and new hints governing new buffers only, after the apply delay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from producer import pipeline
from producer.local.server import LocalFirehose, LocalOptions
from tests.integration.local_support import delivery_log, firehose_client, lambda_processing, next_object


def _processing(size_mb: str = "1", interval_s: str = "60") -> dict[str, Any]:
    return lambda_processing(size_mb, interval_s)


def _parquet_request(name: str) -> dict[str, Any]:
    body = pipeline.s3_stream_request(name, size_mib=64)
    body["ExtendedS3DestinationConfiguration"]["DataFormatConversionConfiguration"] = {
        "Enabled": True,
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}},
        "SchemaConfiguration": {"Columns": [{"Name": "event_id", "Type": "string"}]},
    }
    return body


def _partitioned_request(name: str, interval_s: int = 60) -> dict[str, Any]:
    body = pipeline.s3_stream_request(name, interval_s=interval_s, size_mib=64)
    body["ExtendedS3DestinationConfiguration"]["DynamicPartitioningConfiguration"] = {"Enabled": True}
    return body


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[LocalFirehose]:
    server = LocalFirehose(LocalOptions(output_dir=tmp_path / "out"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def fh(local: LocalFirehose) -> AsyncIterator[Any]:
    # The server's own checks are under test: botocore's client-side range checks are off.
    async with firehose_client(local.url, validate=False) as client:
        yield client


async def _describe(fh: Any, name: str) -> dict[str, Any]:
    answer = await fh.describe_delivery_stream(DeliveryStreamName=name)
    description: dict[str, Any] = answer["DeliveryStreamDescription"]
    return description


async def _update(fh: Any, name: str, **update: Any) -> None:
    description = await _describe(fh, name)
    await fh.update_destination(
        DeliveryStreamName=name,
        CurrentDeliveryStreamVersionId=description["VersionId"],
        DestinationId=description["Destinations"][0]["DestinationId"],
        **update,
    )


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


async def test_update_merges_and_bumps_the_version(fh: Any) -> None:
    await fh.create_delivery_stream(**pipeline.s3_stream_request("s3", interval_s=300, size_mib=5))
    before = await _describe(fh, "s3")
    assert before["VersionId"] == "1"
    await _update(
        fh,
        "s3",
        ExtendedS3DestinationUpdate={
            "BufferingHints": {"IntervalInSeconds": 60},
            "ProcessingConfiguration": _processing(),
        },
    )
    after = await _describe(fh, "s3")
    assert after["VersionId"] == "2"
    assert after["LastUpdateTimestamp"] > before["CreateTimestamp"]
    s3 = after["Destinations"][0]["ExtendedS3DestinationDescription"]
    # Merged member by member: the size the update left out and the prefix are kept.
    assert s3["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 60}
    assert s3["Prefix"] == before["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"]
    assert s3["ProcessingConfiguration"] == _processing()
    await _update(fh, "s3", S3DestinationUpdate={"BufferingHints": {"SizeInMBs": 7}})
    after = await _describe(fh, "s3")
    assert after["VersionId"] == "3"
    assert after["Destinations"][0]["S3DestinationDescription"]["BufferingHints"]["SizeInMBs"] == 7


async def test_opensearch_update_reaches_the_backup_configuration(fh: Any) -> None:
    await fh.create_delivery_stream(**pipeline.opensearch_stream_request("os"))
    await _update(
        fh,
        "os",
        AmazonopensearchserviceDestinationUpdate={
            "BufferingHints": {"SizeInMBs": 10, "IntervalInSeconds": 30},
            "S3Update": {"BufferingHints": {"SizeInMBs": 8, "IntervalInSeconds": 120}},
        },
    )
    os_desc = (await _describe(fh, "os"))["Destinations"][0]["AmazonopensearchserviceDestinationDescription"]
    assert os_desc["BufferingHints"] == {"SizeInMBs": 10, "IntervalInSeconds": 30}
    assert os_desc["S3DestinationDescription"]["BufferingHints"] == {"SizeInMBs": 8, "IntervalInSeconds": 120}
    assert os_desc["S3DestinationDescription"]["Prefix"] == "opensearch-backup/"


async def test_stale_version_is_refused(fh: Any) -> None:
    await fh.create_delivery_stream(**pipeline.s3_stream_request("s3"))
    await _update(fh, "s3", ExtendedS3DestinationUpdate={"BufferingHints": {"IntervalInSeconds": 30}})
    with pytest.raises(fh.exceptions.ConcurrentModificationException) as exc:
        await fh.update_destination(
            DeliveryStreamName="s3",
            CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"BufferingHints": {"IntervalInSeconds": 90}},
        )
    assert _code(exc) == ("ConcurrentModificationException", 400)
    description = await _describe(fh, "s3")
    assert description["VersionId"] == "2"
    hints = description["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"]
    assert hints["IntervalInSeconds"] == 30


async def test_unknown_destination_id_and_type_switch_are_refused(fh: Any) -> None:
    await fh.create_delivery_stream(**pipeline.s3_stream_request("s3"))
    with pytest.raises(fh.exceptions.InvalidArgumentException) as exc:
        await fh.update_destination(
            DeliveryStreamName="s3",
            CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000002",
            ExtendedS3DestinationUpdate={"BufferingHints": {"IntervalInSeconds": 90}},
        )
    assert "destinationId-000000000002" in str(exc.value)
    with pytest.raises(fh.exceptions.InvalidArgumentException, match="Switching between"):
        await _update(fh, "s3", AmazonopensearchserviceDestinationUpdate={"IndexName": "x"})
    with pytest.raises(fh.exceptions.ResourceNotFoundException):
        await _update(fh, "nope", ExtendedS3DestinationUpdate={})
    assert (await _describe(fh, "s3"))["VersionId"] == "1"


def _s3(**update: Any) -> dict[str, Any]:
    return {"ExtendedS3DestinationUpdate": update}


def _os(**update: Any) -> dict[str, Any]:
    return {"AmazonopensearchserviceDestinationUpdate": update}


# (stream kind, update, error code, words in the message)
INVALID = [
    ("s3", _s3(BufferingHints={"SizeInMBs": 129}), "ValidationException", "between 1 and 128"),
    ("s3", _s3(BufferingHints={"SizeInMBs": 0}), "ValidationException", "between 1 and 128"),
    ("s3", _s3(BufferingHints={"IntervalInSeconds": 901}), "ValidationException", "between 0 and 900"),
    ("parquet", _s3(BufferingHints={"SizeInMBs": 32}), "InvalidArgumentException", "at least 64"),
    ("os", _os(BufferingHints={"SizeInMBs": 101}), "ValidationException", "between 1 and 100"),
    ("os", _os(BufferingHints={"IntervalInSeconds": -1}), "ValidationException", "between 0 and 900"),
    ("os", _os(S3Update={"BufferingHints": {"IntervalInSeconds": 0}}), "InvalidArgumentException", "backup"),
    ("s3", _s3(ProcessingConfiguration=_processing(size_mb="0.1")), "InvalidArgumentException", "0.2 and 3"),
    ("s3", _s3(ProcessingConfiguration=_processing(size_mb="3.5")), "InvalidArgumentException", "0.2 and 3"),
    (
        "s3",
        _s3(ProcessingConfiguration=_processing(interval_s="901")),
        "InvalidArgumentException",
        "0 and 900",
    ),
    (
        "s3",
        _s3(ProcessingConfiguration=_processing(interval_s="soon")),
        "InvalidArgumentException",
        "0 and 900",
    ),
    ("partitioned", _s3(BufferingHints={"IntervalInSeconds": 0}), "InvalidArgumentException", "dynamic"),
    (
        "s3",
        _s3(BufferingHints={"IntervalInSeconds": 0}, DynamicPartitioningConfiguration={"Enabled": True}),
        "InvalidArgumentException",
        "dynamic",
    ),
]


@pytest.mark.parametrize(("kind", "update", "code", "words"), INVALID)
async def test_invalid_values_are_refused_and_change_nothing(
    local: LocalFirehose, fh: Any, tmp_path: Path, kind: str, update: dict[str, Any], code: str, words: str
) -> None:
    requests = {
        "s3": pipeline.s3_stream_request,
        "parquet": _parquet_request,
        "os": pipeline.opensearch_stream_request,
        "partitioned": _partitioned_request,
    }
    request = requests[kind]("target")
    if kind == "parquet":
        # The columns the local Firehose reads instead of Glue are no API member: a config file.
        config = tmp_path / "parquet.json"
        config.write_bytes(orjson.dumps(request))
        await local.create_streams_from_file(config)
    else:
        await fh.create_delivery_stream(**request)
    before = await _describe(fh, "target")
    with pytest.raises(ClientError) as exc:
        await _update(fh, "target", **update)
    assert _code(exc) == (code, 400)
    assert words in exc.value.response["Error"]["Message"]
    after = await _describe(fh, "target")
    assert after == before


@pytest.mark.parametrize(
    "request_body",
    [
        _partitioned_request("p", interval_s=0),
        pipeline.opensearch_stream_request("o")
        | {
            "AmazonopensearchserviceDestinationConfiguration": {
                **pipeline.opensearch_stream_request("o")["AmazonopensearchserviceDestinationConfiguration"],
                "S3Configuration": {
                    **pipeline.opensearch_stream_request("o")[
                        "AmazonopensearchserviceDestinationConfiguration"
                    ]["S3Configuration"],
                    "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 0},
                },
            }
        },
    ],
    ids=["dynamic-partitioning", "opensearch-backup"],
)
async def test_zero_interval_is_refused_at_create_where_aws_refuses_it(
    fh: Any, request_body: dict[str, Any]
) -> None:
    with pytest.raises(fh.exceptions.InvalidArgumentException, match="zero buffering"):
        await fh.create_delivery_stream(**request_body)


def _log(local: LocalFirehose) -> list[dict[str, Any]]:
    return delivery_log(local.options.output_dir)


async def _wait_for_objects(local: LocalFirehose, count: int) -> list[dict[str, Any]]:
    await next_object(local.options.output_dir, "s3", count - 1, timeout_s=10)
    return _log(local)


async def test_new_hints_govern_new_buffers_only(local: LocalFirehose, fh: Any) -> None:
    await fh.create_delivery_stream(**pipeline.s3_stream_request("live", interval_s=3))
    await fh.put_record_batch(DeliveryStreamName="live", Records=[{"Data": b"a\n"}])
    await _update(fh, "live", ExtendedS3DestinationUpdate={"BufferingHints": {"IntervalInSeconds": 1}})
    # The stream kept accepting data, into the buffer opened under the old 3 s interval.
    await fh.put_record_batch(DeliveryStreamName="live", Records=[{"Data": b"b\n"}])
    [first] = await _wait_for_objects(local, 1)
    await fh.put_record_batch(DeliveryStreamName="live", Records=[{"Data": b"c\n"}])
    second = (await _wait_for_objects(local, 2))[1]
    assert first["records"] == 2 and second["records"] == 1
    assert first["delivered_at"] - first["first_arrival"] >= 2.8, first
    assert second["delivered_at"] - second["first_arrival"] < 2.0, second
    assert "-2-" in second["key"].rsplit("/", 1)[-1], "objects after the update carry the new version"


async def test_apply_delay_keeps_the_old_hints_for_a_while(tmp_path: Path) -> None:
    options = LocalOptions(output_dir=tmp_path / "out", update_apply_delay_s=1.5)
    async with LocalFirehose(options) as local, firehose_client(local.url) as fh:
        await fh.create_delivery_stream(**pipeline.s3_stream_request("slow", interval_s=1))
        await _update(fh, "slow", ExtendedS3DestinationUpdate={"BufferingHints": {"IntervalInSeconds": 900}})
        described = (await _describe(fh, "slow"))["Destinations"][0]["ExtendedS3DestinationDescription"]
        assert described["BufferingHints"]["IntervalInSeconds"] == 900  # shown at once
        await fh.put_record_batch(DeliveryStreamName="slow", Records=[{"Data": b"early\n"}])
        [early] = await _wait_for_objects(local, 1)  # still the old 1 s interval
        assert early["delivered_at"] - early["first_arrival"] < 1.4
        await asyncio.sleep(1.6 - (time.time() - early["first_arrival"]))
        await fh.put_record_batch(DeliveryStreamName="slow", Records=[{"Data": b"late\n"}])
        await asyncio.sleep(1.5)
        assert len(_log(local)) == 1, "after the delay the 900 s interval governs"
    assert len(_log(local)) == 2, "stop delivers the buffered record"
