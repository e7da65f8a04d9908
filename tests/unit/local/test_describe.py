"""CreateDeliveryStream parsing and DescribeDeliveryStream output, checked against botocore's model."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.session
import pytest

from producer import pipeline
from producer.local.errors import InvalidArgument, Validation
from producer.local.streams import stream_from_request, stream_requests_from_file_data


def _check(value: Any, shape: Any, where: str) -> None:
    """Every member exists in the model, required members are present, types match."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), where
        for name in shape.required_members:
            assert name in value, f"{where}: missing required {name}"
        for name, item in value.items():
            assert name in shape.members, f"{where}: {name} is not in the model"
            _check(item, shape.members[name], f"{where}.{name}")
    elif kind == "list":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _check(item, shape.member, f"{where}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), where
        if shape.enum:
            assert value in shape.enum, f"{where}: {value!r} not in {shape.enum}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif kind == "boolean":
        assert isinstance(value, bool), where
    elif kind == "timestamp":
        assert isinstance(value, int | float | datetime.datetime), where


@pytest.fixture(scope="module")
def model() -> Any:
    return botocore.session.get_session().get_service_model("firehose")


@pytest.mark.parametrize(
    "request_body",
    [
        pipeline.s3_stream_request("s3-stream"),
        pipeline.opensearch_stream_request("os-stream"),
        {
            "DeliveryStreamName": "plain-s3",
            "S3DestinationConfiguration": {"RoleARN": "arn:aws:iam::1:role/r", "BucketARN": "arn:aws:s3:::b"},
        },
    ],
)
def test_describe_matches_the_service_model(model: Any, request_body: dict[str, Any]) -> None:
    stream = stream_from_request(request_body, "us-east-1")
    output = model.operation_model("DescribeDeliveryStream").output_shape
    _check({"DeliveryStreamDescription": stream.describe()}, output, "describe")
    description = stream.describe()
    assert description["DeliveryStreamStatus"] == "ACTIVE"
    [destination] = description["Destinations"]
    if "AmazonopensearchserviceDestinationConfiguration" in request_body:
        os_desc = destination["AmazonopensearchserviceDestinationDescription"]
        assert os_desc["IndexName"] == "realtime-events"
        assert os_desc["S3DestinationDescription"]["Prefix"] == "opensearch-backup/"
    else:
        s3 = destination["ExtendedS3DestinationDescription"]
        assert s3["BufferingHints"]["SizeInMBs"] >= 1 and "S3DestinationDescription" in destination


def test_expression_prefix_needs_an_error_prefix() -> None:
    body = pipeline.s3_stream_request("s")
    del body["ExtendedS3DestinationConfiguration"]["ErrorOutputPrefix"]
    with pytest.raises(InvalidArgument, match="ErrorOutputPrefix cannot be null or empty"):
        stream_from_request(body, "us-east-1")


def test_processing_in_the_plain_s3_configuration_is_rejected() -> None:
    body = {
        "DeliveryStreamName": "s",
        "S3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::1:role/r",
            "BucketARN": "arn:aws:s3:::b",
            "ProcessingConfiguration": {"Enabled": True, "Processors": []},
        },
    }
    with pytest.raises(InvalidArgument, match="ExtendedS3DestinationConfiguration"):
        stream_from_request(body, "us-east-1")


def test_buffer_interval_below_sixty_is_allowed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    stream = stream_from_request(pipeline.s3_stream_request("s", interval_s=1), "us-east-1")
    assert stream.destination.buffer_interval_s == 1.0
    assert "below the classic 60 s minimum" in caplog.text
    with pytest.raises(Validation, match="between 0 and 900"):
        stream_from_request(pipeline.s3_stream_request("s", interval_s=901), "us-east-1")


def test_lambda_processor_parameters_are_read() -> None:
    body = pipeline.s3_stream_request("s")
    body["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"] = {
        "Enabled": True,
        "Processors": [
            {
                "Type": "Lambda",
                "Parameters": [
                    {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:1:function:f"},
                    {"ParameterName": "BufferSizeInMBs", "ParameterValue": "0.5"},
                    {"ParameterName": "NumberOfRetries", "ParameterValue": "1"},
                ],
            },
            {"Type": "AppendDelimiterToRecord", "Parameters": []},
        ],
    }
    processing = stream_from_request(body, "us-east-1").processing
    assert processing is not None
    assert processing.lambda_arn == "arn:aws:lambda:us-east-1:1:function:f"
    assert processing.buffer_bytes == 512 * 1024 and processing.retries == 1
    assert processing.delimiter == b"\n"


def test_config_file_shapes() -> None:
    one = pipeline.s3_stream_request("a")
    assert stream_requests_from_file_data(one) == [one]
    assert stream_requests_from_file_data([one, one]) == [one, one]
    assert stream_requests_from_file_data({"DeliveryStreams": [one]}) == [one]
    with pytest.raises(ValueError, match="holds a CreateDeliveryStream request object or a list"):
        stream_requests_from_file_data("nope")
