"""The local Firehose's answers over HTTP: each validation error with the service's status, __type
and message, throttling and recovery, and faults, read through botocore like a producer would."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from producer import pipeline
from producer.local.faults import FaultSettings
from producer.local.quotas import QuotaOverrides
from tests.helpers import ThreadedLocalFirehose

STREAM = "api-stream"


def post(url: str, operation: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """A raw JSON 1.1 call, for bodies no SDK would send."""
    request = urllib.request.Request(
        url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"Firehose_20150804.{operation}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def client(url: str) -> Any:
    return botocore.session.get_session().create_client(
        "firehose",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )


def records(count: int, size: int = 10) -> list[dict[str, bytes]]:
    """Raw record data: botocore base64-encodes it on the wire."""
    return [{"Data": b"x" * size} for _ in range(count)]


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[ThreadedLocalFirehose]:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    client(server.url).create_delivery_stream(**pipeline.s3_stream_request(STREAM))
    try:
        yield server
    finally:
        server.stop()


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_more_than_500_records(endpoint: ThreadedLocalFirehose) -> None:
    with pytest.raises(ClientError) as exc:
        client(endpoint.url).put_record_batch(DeliveryStreamName=STREAM, Records=records(501))
    code, message, status = _error(exc)
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value at 'records' failed to satisfy constraint: "
        "Member must have length less than or equal to 500"
    )


def test_exactly_500_records_and_4_mib_are_accepted(endpoint: ThreadedLocalFirehose) -> None:
    endpoint.call(endpoint.server.set_quotas, QuotaOverrides(bytes_per_s=64 * 1024 * 1024))
    # 4 x 1,024,000 + 98,304 = 4,194,304 bytes: exactly 4 MiB, the largest call allowed.
    exactly_4_mib = records(4, 1_024_000) + records(1, 98_304)
    answer = client(endpoint.url).put_record_batch(DeliveryStreamName=STREAM, Records=exactly_4_mib)
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 5
    with pytest.raises(ClientError) as exc:
        client(endpoint.url).put_record_batch(
            DeliveryStreamName=STREAM, Records=[*exactly_4_mib, *records(1, 1)]
        )
    assert _error(exc)[0] == "InvalidArgumentException"
    answer = client(endpoint.url).put_record_batch(DeliveryStreamName=STREAM, Records=records(500))
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 500


def test_more_than_4_mib_in_a_call(endpoint: ThreadedLocalFirehose) -> None:
    with pytest.raises(ClientError) as exc:
        client(endpoint.url).put_record_batch(DeliveryStreamName=STREAM, Records=records(5, 1_000_000))
    assert _error(exc) == ("InvalidArgumentException", "Records size exceeds 4 MB limit", 400)


def test_a_record_over_1024000_bytes(endpoint: ThreadedLocalFirehose) -> None:
    batch = records(3) + records(1, 1_024_001)
    with pytest.raises(ClientError) as exc:
        client(endpoint.url).put_record_batch(DeliveryStreamName=STREAM, Records=batch)
    assert _error(exc) == (
        "ValidationException",
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' "
        "at 'records.4.member.data' failed to satisfy constraint: "
        "Member must have length less than or equal to 1024000",
        400,
    )
    ok = client(endpoint.url).put_record_batch(DeliveryStreamName=STREAM, Records=records(1, 1_024_000))
    assert ok["FailedPutCount"] == 0


def test_empty_records_list(endpoint: ThreadedLocalFirehose) -> None:
    status, body = post(endpoint.url, "PutRecordBatch", b'{"DeliveryStreamName":"api-stream","Records":[]}')
    assert status == 400
    assert body == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    }


def test_unknown_stream(endpoint: ThreadedLocalFirehose) -> None:
    with pytest.raises(ClientError) as exc:
        client(endpoint.url).put_record_batch(DeliveryStreamName="nope", Records=records(1))
    assert _error(exc) == (
        "ResourceNotFoundException",
        "Firehose nope under account 000000000000 not found.",
        400,
    )
    with pytest.raises(ClientError) as exc:
        client(endpoint.url).describe_delivery_stream(DeliveryStreamName="nope")
    assert _error(exc)[0] == "ResourceNotFoundException"


def test_malformed_body_and_bad_base64(endpoint: ThreadedLocalFirehose) -> None:
    assert post(endpoint.url, "PutRecordBatch", b"{not json") == (400, {"__type": "SerializationException"})
    status, body = post(
        endpoint.url, "PutRecordBatch", b'{"DeliveryStreamName":"api-stream","Records":[{"Data":"abc"}]}'
    )
    assert status == 400 and body["__type"] == "SerializationException"
    assert "can not be converted to a Blob" in body["message"]


def test_unknown_operation(endpoint: ThreadedLocalFirehose) -> None:
    assert post(endpoint.url, "StartDeliveryStreamEncryption", b"{}") == (
        400,
        {"__type": "UnknownOperationException"},
    )


def test_throttling_per_record_then_recovery(endpoint: ThreadedLocalFirehose) -> None:
    endpoint.call(endpoint.server.set_quotas, QuotaOverrides(records_per_s=100))
    fh = client(endpoint.url)
    first = fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(80))
    second = fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(80))
    assert first["FailedPutCount"] == 0
    assert 50 <= second["FailedPutCount"] <= 60  # ~20 tokens left, plus the refill since
    failed = [r for r in second["RequestResponses"] if "ErrorCode" in r]
    assert {(r["ErrorCode"], r["ErrorMessage"]) for r in failed} == {
        ("ServiceUnavailableException", "Slow down.")
    }
    # The accepted ones come first, in request order, each with a RecordId.
    entries = second["RequestResponses"]
    assert all("RecordId" in r for r in entries[: 80 - second["FailedPutCount"]])
    time.sleep(1.0)  # the bucket refills within a second
    recovered = fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(80))
    assert recovered["FailedPutCount"] == 0
    assert endpoint.server.records_accepted[STREAM] == 160 + 80 - second["FailedPutCount"]


def test_throttling_the_whole_call_on_requests_per_second(endpoint: ThreadedLocalFirehose) -> None:
    endpoint.call(endpoint.server.set_quotas, QuotaOverrides(requests_per_s=2))
    fh = client(endpoint.url)
    fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(1))
    fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(1))
    with pytest.raises(ClientError) as exc:
        fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(1))
    assert _error(exc) == ("ServiceUnavailableException", "Slow down.", 503)
    time.sleep(0.6)
    assert fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(1))["FailedPutCount"] == 0


def test_fault_knobs_from_a_test(endpoint: ThreadedLocalFirehose) -> None:
    fh = client(endpoint.url)
    endpoint.call(endpoint.server.set_faults, FaultSettings(record_failure_rate=1.0))
    answer = fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(5))
    assert answer["FailedPutCount"] == 5
    endpoint.call(
        endpoint.server.set_faults, FaultSettings(call_error_rate=1.0, call_error_type="InternalFailure")
    )
    with pytest.raises(ClientError) as exc:
        fh.put_record_batch(DeliveryStreamName=STREAM, Records=records(1))
    assert _error(exc)[0::2] == ("InternalFailure", 500)
    endpoint.call(endpoint.server.set_faults, FaultSettings(outage_start_s=0.0, outage_duration_s=0.3))
    with pytest.raises(ClientError) as exc:
        fh.put_record(DeliveryStreamName=STREAM, Record={"Data": b"x"})
    assert _error(exc)[0::2] == ("ServiceUnavailableException", 503)
    time.sleep(0.4)
    assert fh.put_record(DeliveryStreamName=STREAM, Record={"Data": b"x"})["RecordId"]


def test_put_record_answers_in_the_service_shape(endpoint: ThreadedLocalFirehose) -> None:
    answer = client(endpoint.url).put_record(DeliveryStreamName=STREAM, Record={"Data": b"hello\n"})
    assert answer["RecordId"] and answer["Encrypted"] is False
