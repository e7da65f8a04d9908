"""The soak's settings vocabulary (producer/audit/settings.py): parsing and AWS's rules, the
template's ranges, and the UpdateDestination requests built from a description."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from producer.audit import settings as vocabulary
from producer.errors import UsageError
from producer.local.template import SHIPPED_TEMPLATE
from producer.shipped import shipped_path

RANGES = vocabulary.template_ranges(shipped_path(SHIPPED_TEMPLATE))


def _lambda(interval: str = "60", size: str = "0.9") -> dict[str, Any]:
    return {
        "Enabled": True,
        "Processors": [
            {
                "Type": "Lambda",
                "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:0:function:t"},
                    {"ParameterName": "BufferSizeInMBs", "ParameterValue": size},
                    {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": interval},
                    {"ParameterName": "NumberOfRetries", "ParameterValue": "3"},
                ],
            }
        ],
    }


def s3_description() -> dict[str, Any]:
    return {
        "DeliveryStreamName": "realtime-data-stream",
        "VersionId": "3",
        "Destinations": [
            {
                "DestinationId": "destinationId-000000000001",
                "ExtendedS3DestinationDescription": {
                    "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 300},
                    "ProcessingConfiguration": _lambda(),
                    "DataFormatConversionConfiguration": {"Enabled": True},
                },
            }
        ],
    }


def opensearch_description() -> dict[str, Any]:
    return {
        "DeliveryStreamName": "realtime-data-stream-opensearch",
        "VersionId": "7",
        "Destinations": [
            {
                "DestinationId": "destinationId-000000000001",
                "AmazonopensearchserviceDestinationDescription": {
                    "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60},
                    "S3BackupMode": "AllDocuments",
                    "S3DestinationDescription": {
                        "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300}
                    },
                    "ProcessingConfiguration": _lambda(),
                },
            }
        ],
    }


def test_param_list_and_short_form() -> None:
    setting = vocabulary.parse(
        "S3BufferIntervalSeconds=60, S3BufferSizeMiB=64,ProcessorBufferIntervalSeconds=10", RANGES
    )
    assert setting.params == {
        "S3BufferIntervalSeconds": 60,
        "S3BufferSizeMiB": 64,
        "ProcessorBufferIntervalSeconds": 10,
    }
    assert setting.label == "S3BufferIntervalSeconds=60,S3BufferSizeMiB=64,ProcessorBufferIntervalSeconds=10"
    short = vocabulary.parse("2m/64", RANGES)
    assert short.params == {
        "S3BufferIntervalSeconds": 120,
        "S3BufferSizeMiB": 64,
        "OpenSearchBufferIntervalSeconds": 120,
        "OpenSearchBufferSizeMiB": 64,
    }
    # The template's largest S3 size (128) is a valid setting now.
    assert vocabulary.parse("S3BufferSizeMiB=128", RANGES).params["S3BufferSizeMiB"] == 128


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("S3BufferIntervalSecs=60", "did you mean S3BufferIntervalSeconds"),
        ("S3BufferIntervalSeconds", "expected PARAM=VALUE"),
        ("S3BufferIntervalSeconds=abc", "must be a number"),
        ("S3BufferIntervalSeconds=1.5", "whole number of s"),
        ("S3BufferIntervalSeconds=901", "AWS allows 0-900 s"),
        ("S3BufferSizeMiB=129", "AWS allows 1-128 MiB"),
        ("S3BufferSizeMiB=32", "the template allows 64-128 MiB"),
        ("OpenSearchBufferSizeMiB=101", "AWS allows 1-100 MiB"),
        ("OpenSearchBackupBufferIntervalSeconds=0", "zero buffering is not available for the S3 backup"),
        ("OpenSearchBackupBufferIntervalSeconds=30", "the template allows 60-900 s"),
        ("ProcessorBufferSizeMB=0.1", "AWS allows 0.2-3 MB"),
        ("ProcessorBufferSizeMB=2", "the template allows 0.2-0.9 MB"),
        ("S3BufferIntervalSeconds=60,S3BufferIntervalSeconds=30", "given twice"),
        ("2s/1", "the template allows 64-128 MiB"),
        ("soon/64", "not an interval"),
    ],
)
def test_bad_settings_are_one_line(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        vocabulary.parse(text, RANGES)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_stream_rules_need_the_description() -> None:
    streams = {
        "realtime-data-stream": s3_description(),
        "realtime-data-stream-opensearch": opensearch_description(),
    }
    # AWS allows 1 MiB, the Parquet stream does not (no template ranges here: AWS's rule alone).
    with pytest.raises(UsageError, match="converts to Parquet/ORC, which needs at least 64 MiB"):
        vocabulary.applies(vocabulary.parse("S3BufferSizeMiB=1"), streams)
    partitioned = s3_description()
    partitioned["Destinations"][0]["ExtendedS3DestinationDescription"]["DynamicPartitioningConfiguration"] = {
        "Enabled": True
    }
    with pytest.raises(UsageError, match="rules out zero buffering"):
        vocabulary.applies(vocabulary.parse("S3BufferIntervalSeconds=0"), {"s": partitioned})
    with pytest.raises(UsageError, match="none of the soak's streams"):
        vocabulary.applies(vocabulary.parse("OpenSearchBufferSizeMiB=5"), {"s": s3_description()})
    vocabulary.applies(
        vocabulary.parse("S3BufferIntervalSeconds=0,ProcessorBufferIntervalSeconds=0"), streams
    )


def test_apply_request_sets_only_what_the_setting_names() -> None:
    setting = vocabulary.parse(
        "S3BufferIntervalSeconds=60,ProcessorBufferIntervalSeconds=10,OpenSearchBackupBufferSizeMiB=16",
        RANGES,
    )
    s3 = vocabulary.apply_request("realtime-data-stream", s3_description(), setting.params)
    assert s3 is not None
    assert s3["CurrentDeliveryStreamVersionId"] == "3"
    assert s3["DestinationId"] == "destinationId-000000000001"
    update = s3["ExtendedS3DestinationUpdate"]
    assert update["BufferingHints"] == {"SizeInMBs": 128, "IntervalInSeconds": 60}
    params = {
        p["ParameterName"]: p["ParameterValue"]
        for p in update["ProcessingConfiguration"]["Processors"][0]["Parameters"]
    }
    assert params["BufferIntervalInSeconds"] == "10" and params["BufferSizeInMBs"] == "0.9"
    assert params["LambdaArn"].startswith("arn:aws:lambda")  # the processor list is sent whole
    assert set(update) == {"BufferingHints", "ProcessingConfiguration"}
    opensearch = vocabulary.apply_request(
        "realtime-data-stream-opensearch", opensearch_description(), setting.params
    )
    assert opensearch is not None
    os_update = opensearch["AmazonopensearchserviceDestinationUpdate"]
    assert os_update["S3Update"] == {"BufferingHints": {"SizeInMBs": 16, "IntervalInSeconds": 300}}
    assert "BufferingHints" not in os_update  # the OpenSearch hints were not named
    # A setting for the other stream only: nothing to send here.
    assert vocabulary.apply_request("s", s3_description(), {"OpenSearchBufferSizeMiB": 2}) is None


def test_restore_puts_back_the_sections_that_differ() -> None:
    original = s3_description()
    changed = copy.deepcopy(original)
    dest = changed["Destinations"][0]["ExtendedS3DestinationDescription"]
    dest["BufferingHints"]["IntervalInSeconds"] = 60
    changed["VersionId"] = "4"
    request = vocabulary.restore_request("realtime-data-stream", original, changed)
    assert request is not None
    assert request["CurrentDeliveryStreamVersionId"] == "4"
    assert request["ExtendedS3DestinationUpdate"] == {
        "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 300}
    }
    assert vocabulary.restore_request("realtime-data-stream", original, original) is None
    assert vocabulary.current(changed)["S3BufferIntervalSeconds"] == 60
    assert vocabulary.shows(changed, {"S3BufferIntervalSeconds": 60, "OpenSearchBufferSizeMiB": 9})


def test_every_parameter_is_a_template_parameter() -> None:
    assert set(vocabulary.PARAMS) <= set(RANGES)
    assert all(low is not None and high is not None for low, high in RANGES.values())


def test_a_stream_without_a_processor_has_no_processor_values() -> None:
    plain = s3_description()
    del plain["Destinations"][0]["ExtendedS3DestinationDescription"]["ProcessingConfiguration"]
    assert "ProcessorBufferIntervalSeconds" not in vocabulary.current(plain)
    assert "ProcessorBufferIntervalSeconds" in vocabulary.current(s3_description())
    with pytest.raises(UsageError, match="has no Lambda processor"):
        vocabulary.applies(vocabulary.parse("ProcessorBufferIntervalSeconds=5"), {"s": plain})
