"""What one stream of the local Firehose counts for CloudWatch, in AWS/Firehose's names and units.

https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html
Ingest counts on the event loop, the writer and the Lambda threads add delivery and processing
samples: every accumulator takes a lock. A period's figures are drained once, so each value is
published in exactly one period.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from producer.firehose.limits import DirectPutQuota

# Delivery-log destination labels -> the metric name prefix AWS uses for them.
DESTINATION_PREFIX = {
    "s3": "DeliveryToS3",
    "opensearch": "DeliveryToAmazonOpenSearchService",
    "s3-backup": "BackupToS3",
}


@dataclass(frozen=True, slots=True)
class StatisticSet:
    count: int
    total: float
    minimum: float
    maximum: float


class Samples:
    """Values since the last drain, published as one StatisticSet (Minimum, Maximum, Sum,
    SampleCount), so Average and Maximum read back as they would from AWS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._count = 0
        self._total = 0.0
        self._min = float("inf")
        self._max = float("-inf")

    def add(self, value: float) -> None:
        with self._lock:
            self._count += 1
            self._total += value
            self._min = min(self._min, value)
            self._max = max(self._max, value)

    def drain(self, extra: float | None = None) -> StatisticSet | None:
        """The period's samples (plus ``extra``, a sample taken now), then start over."""
        with self._lock:
            if extra is not None:
                self._count += 1
                self._total += extra
                self._min = min(self._min, extra)
                self._max = max(self._max, extra)
            if not self._count:
                return None
            out = StatisticSet(self._count, self._total, self._min, self._max)
            self._reset()
            return out


class Total:
    """A sum since the last drain (IncomingRecords, DeliveryToS3.Bytes, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, amount: int) -> None:
        with self._lock:
            self._value += amount

    def drain(self) -> int:
        with self._lock:
            value, self._value = self._value, 0
            return value


@dataclass(slots=True)
class DestinationMetrics:
    records: Total = field(default_factory=Total)
    bytes: Total = field(default_factory=Total)
    success: Samples = field(default_factory=Samples)  # 1 per object written
    freshness_s: Samples = field(default_factory=Samples)


@dataclass(slots=True)
class StreamMetrics:
    incoming_records: Total = field(default_factory=Total)
    incoming_bytes: Total = field(default_factory=Total)
    incoming_put_requests: Total = field(default_factory=Total)
    throttled_records: Total = field(default_factory=Total)
    destinations: dict[str, DestinationMetrics] = field(
        default_factory=lambda: {label: DestinationMetrics() for label in DESTINATION_PREFIX}
    )
    processing_ms: Samples = field(default_factory=Samples)
    processing_success: Samples = field(default_factory=Samples)

    def delivered(self, label: str, records: int, size: int, first_arrival: float, at: float) -> None:
        """An object written: its oldest record was the oldest one waiting, this old."""
        destination = self.destinations.get(label)
        if destination is None:
            return  # error objects are not deliveries
        destination.records.add(records)
        destination.bytes.add(size)
        destination.success.add(1.0)
        destination.freshness_s.add(max(0.0, at - first_arrival))

    def invoked(self, duration_s: float, ok: bool) -> None:
        """One Lambda invocation (all its attempts)."""
        self.processing_ms.add(duration_s * 1000.0)
        self.processing_success.add(1.0 if ok else 0.0)

    def datums(
        self,
        stream: str,
        quota: DirectPutQuota,
        waiting_since: dict[str, float | None],
        now: float,
        timestamp: datetime,
        storage_resolution: int,
    ) -> list[dict[str, Any]]:
        """PutMetricData MetricData for the period that ends now; ``waiting_since`` gives, per
        destination label, the arrival of the oldest record not yet delivered there (DataFreshness
        is "the age of the oldest record in Firehose"). The stream's ingest figures and limits
        are published every period, zeros included, so a reader can tell a quiet minute from
        one not published yet; delivery and processing figures when there were any."""
        dimensions = [{"Name": "DeliveryStreamName", "Value": stream}]
        out: list[dict[str, Any]] = []

        def value(name: str, amount: float, unit: str) -> None:
            out.append({"MetricName": name, "Value": float(amount), "Unit": unit})

        def stats(name: str, found: StatisticSet | None, unit: str) -> None:
            if found is not None:
                out.append(
                    {
                        "MetricName": name,
                        "StatisticValues": {
                            "SampleCount": float(found.count),
                            "Sum": found.total,
                            "Minimum": found.minimum,
                            "Maximum": found.maximum,
                        },
                        "Unit": unit,
                    }
                )

        value("IncomingRecords", self.incoming_records.drain(), "Count")
        value("IncomingBytes", self.incoming_bytes.drain(), "Bytes")
        value("IncomingPutRequests", self.incoming_put_requests.drain(), "Count")
        value("ThrottledRecords", self.throttled_records.drain(), "Count")
        value("BytesPerSecondLimit", quota.bytes_per_s, "Bytes/Second")
        value("RecordsPerSecondLimit", quota.records_per_s, "Count")
        value("PutRequestsPerSecondLimit", quota.requests_per_s, "Count")
        for label, destination in self.destinations.items():
            if label not in waiting_since:
                continue  # not a destination of this stream
            prefix = DESTINATION_PREFIX[label]
            oldest = waiting_since[label]
            success = destination.success.drain()
            if success is not None:
                value(f"{prefix}.Records", destination.records.drain(), "Count")
                value(f"{prefix}.Bytes", destination.bytes.drain(), "Bytes")
            stats(f"{prefix}.Success", success, "Count")
            extra = None if oldest is None else max(0.0, now - oldest)
            stats(f"{prefix}.DataFreshness", destination.freshness_s.drain(extra), "Seconds")
        stats("ExecuteProcessing.Duration", self.processing_ms.drain(), "Milliseconds")
        stats("ExecuteProcessing.Success", self.processing_success.drain(), "Count")
        for datum in out:
            datum["Dimensions"] = dimensions
            datum["Timestamp"] = timestamp
            datum["StorageResolution"] = storage_resolution
        return out
