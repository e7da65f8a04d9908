"""The local Firehose publishes AWS/Firehose metrics to a CloudWatch-compatible endpoint (moto's
server on 127.0.0.1), read back with GetMetricStatistics and GetMetricData as the soak reads AWS;
a CloudWatch that cannot be reached is one warning line and delivery goes on."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from producer import pipeline
from producer.local.quotas import QuotaOverrides
from producer.local.server import LocalOptions
from tests.helpers import ThreadedLocalFirehose
from tests.integration.local_support import lambda_processing

PASS_THROUGH = """
def lambda_handler(event, context):
    records = event["records"]
    return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in records]}
"""


def _client(service: str, url: str) -> Any:
    return botocore.session.get_session().create_client(service, region_name="us-east-1", endpoint_url=url)


def _s3_with_lambda(name: str) -> dict[str, Any]:
    body = pipeline.s3_stream_request(name, interval_s=1)
    body["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"] = lambda_processing(interval_s="1")
    return body


def _opensearch_all_documents(name: str) -> dict[str, Any]:
    body = pipeline.opensearch_stream_request(name, interval_s=1)
    destination = body["AmazonopensearchserviceDestinationConfiguration"]
    destination["S3BackupMode"] = "AllDocuments"
    destination["S3Configuration"]["BufferingHints"] = {"SizeInMBs": 5, "IntervalInSeconds": 2}
    return body


def _statistics(cw: Any, stream: str, metric: str, start: datetime, end: datetime) -> dict[str, Any]:
    points = cw.get_metric_statistics(
        Namespace="AWS/Firehose",
        MetricName=metric,
        Dimensions=[{"Name": "DeliveryStreamName", "Value": stream}],
        StartTime=start,
        EndTime=end,
        Period=3600,
        Statistics=["Sum", "Maximum", "Minimum", "SampleCount"],
    )["Datapoints"]
    assert len(points) == 1, (metric, points)
    return dict(points[0])


def test_metrics_reach_cloudwatch_and_read_back(moto_url: str, tmp_path: Path) -> None:
    transform = tmp_path / "pass.py"
    transform.write_text(PASS_THROUGH)
    options = LocalOptions(
        output_dir=tmp_path / "out",
        transform_path=transform,
        quotas=QuotaOverrides(records_per_s=60),
        cloudwatch_endpoint_url=moto_url,
        cloudwatch_period_s=1.0,
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    server = ThreadedLocalFirehose(tmp_path / "out", options)
    server.start()
    try:
        fh = server.botocore_client()
        fh.create_delivery_stream(**_s3_with_lambda("cw-s3"))
        fh.create_delivery_stream(**_opensearch_all_documents("cw-os"))
        # 100 records against a 60 records/s quota: 60 accepted, 40 throttled.
        answer = fh.put_record_batch(DeliveryStreamName="cw-s3", Records=[{"Data": b'{"n": 1}\n'}] * 100)
        assert answer["FailedPutCount"] == 40
        fh.put_record_batch(DeliveryStreamName="cw-os", Records=[{"Data": b'{"n": 2}\n'}] * 10)
        time.sleep(3.5)  # a few 1 s periods: the S3 object (~2 s) and the backup (~2 s) are out
    finally:
        server.stop()  # publishes the last, partial period
    end = datetime.now(UTC) + timedelta(seconds=5)
    cw = _client("cloudwatch", moto_url)

    def stats(stream: str, metric: str) -> dict[str, Any]:
        return _statistics(cw, stream, metric, start, end)

    assert stats("cw-s3", "IncomingRecords")["Sum"] == 60
    assert stats("cw-s3", "IncomingBytes")["Sum"] == 60 * 9
    assert stats("cw-s3", "IncomingBytes")["Unit"] == "Bytes"
    assert stats("cw-s3", "ThrottledRecords")["Sum"] == 40
    assert stats("cw-s3", "IncomingPutRequests")["Sum"] == 1
    assert stats("cw-s3", "RecordsPerSecondLimit")["Maximum"] == 60
    assert stats("cw-s3", "BytesPerSecondLimit")["Maximum"] == 5 * 1024 * 1024
    assert stats("cw-s3", "DeliveryToS3.Records")["Sum"] == 60
    assert stats("cw-s3", "DeliveryToS3.Bytes")["Sum"] == 60 * 9
    assert stats("cw-s3", "DeliveryToS3.Success")["Minimum"] == 1
    freshness = stats("cw-s3", "DeliveryToS3.DataFreshness")
    # Processor 1 s + destination 1 s: the oldest record was about 2 s old when delivered.
    assert freshness["Unit"] == "Seconds" and 1.9 <= freshness["Maximum"] <= 4.5
    duration = stats("cw-s3", "ExecuteProcessing.Duration")
    assert duration["Unit"] == "Milliseconds" and duration["SampleCount"] >= 1
    assert stats("cw-s3", "ExecuteProcessing.Success")["Minimum"] == 1
    assert stats("cw-os", "DeliveryToAmazonOpenSearchService.Records")["Sum"] == 10
    assert stats("cw-os", "BackupToS3.Records")["Sum"] == 10
    assert stats("cw-os", "BackupToS3.DataFreshness")["Maximum"] >= 1.9
    # Published every period, zeros included, stamped at whole periods.
    points = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "incoming",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Firehose",
                        "MetricName": "IncomingRecords",
                        "Dimensions": [{"Name": "DeliveryStreamName", "Value": "cw-os"}],
                    },
                    "Period": 1,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=start,
        EndTime=end,
    )["MetricDataResults"][0]
    assert len(points["Timestamps"]) >= 3 and sum(points["Values"]) == 10
    assert all(t.microsecond == 0 for t in points["Timestamps"])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_cloudwatch_is_one_warning_and_delivery_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    # Refused connections; one attempt per call (botocore's retries would stretch each period).
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    options = LocalOptions(
        output_dir=tmp_path / "out",
        cloudwatch_endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        cloudwatch_period_s=0.5,
    )
    server = ThreadedLocalFirehose(tmp_path / "out", options)
    server.start()
    try:
        fh = server.botocore_client()
        fh.create_delivery_stream(**pipeline.s3_stream_request("no-cw", interval_s=1))
        with caplog.at_level(logging.WARNING, logger="producer.local.cloudwatch"):
            fh.put_record_batch(DeliveryStreamName="no-cw", Records=[{"Data": b"x\n"}] * 5)
            deadline = time.monotonic() + 15
            while server.server.deliveries["no-cw"].counts.delivered_records < 5:
                assert time.monotonic() < deadline, "delivery stalled behind the metrics"
                time.sleep(0.05)
            publisher = server.server.publisher
            assert publisher is not None
            while publisher.failed_periods < 3:
                assert time.monotonic() < deadline, "the publisher stopped trying"
                time.sleep(0.05)
    finally:
        server.stop()
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "producer.local.cloudwatch" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1, warnings
    assert "PutMetricData" in warnings[0] and "\n" not in warnings[0]
