"""The AWS/Firehose data points one period yields: names, units, statistic sets, and each value
published in one period only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from producer.firehose.limits import DirectPutQuota
from producer.local.cloudwatch import period_start
from producer.local.metrics import StreamMetrics

QUOTA = DirectPutQuota(500_000, 2_000, 5 * 1024 * 1024)
STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def _by_name(data: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(d["MetricName"]): d for d in data}


def test_periods_are_aligned_like_minutes() -> None:
    assert period_start(3_599.9, 60) == 3_540
    assert period_start(3_600.0, 60) == 3_600
    assert period_start(10.7, 1) == 10


def test_a_period_publishes_what_happened_in_it_once() -> None:
    metrics = StreamMetrics()
    metrics.incoming_records.add(7)
    metrics.incoming_bytes.add(700)
    metrics.delivered("s3", 7, 650, first_arrival=100.0, at=103.0)
    metrics.delivered("s3-error:processing-failed", 1, 10, first_arrival=100.0, at=103.0)
    metrics.invoked(0.012, ok=True)
    metrics.invoked(0.020, ok=False)
    first = _by_name(metrics.datums("s", QUOTA, {"s3": 104.0}, 105.0, STAMP, 1))
    assert first["IncomingRecords"]["Value"] == 7 and first["IncomingBytes"]["Unit"] == "Bytes"
    assert first["DeliveryToS3.Records"]["Value"] == 7 and first["DeliveryToS3.Bytes"]["Value"] == 650
    # Freshness: the delivered object's oldest record (3 s) and the one still waiting (1 s).
    assert first["DeliveryToS3.DataFreshness"]["StatisticValues"] == {
        "SampleCount": 2.0, "Sum": 4.0, "Minimum": 1.0, "Maximum": 3.0,
    }  # fmt: skip
    assert first["DeliveryToS3.DataFreshness"]["Unit"] == "Seconds"
    assert first["ExecuteProcessing.Duration"]["Unit"] == "Milliseconds"
    assert first["ExecuteProcessing.Success"]["StatisticValues"]["Sum"] == 1.0
    assert first["BytesPerSecondLimit"]["Value"] == 5 * 1024 * 1024
    assert all(d["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": "s"}] for d in first.values())
    assert all(d["Timestamp"] == STAMP and d["StorageResolution"] == 1 for d in first.values())
    assert not any(name.startswith(("DeliveryToAmazonOpenSearch", "BackupToS3")) for name in first)
    second = _by_name(metrics.datums("s", QUOTA, {"s3": None}, 106.0, STAMP, 1))
    assert second["IncomingRecords"]["Value"] == 0, "a quiet period still says so"
    assert not any(name.startswith(("DeliveryToS3", "ExecuteProcessing")) for name in second)
