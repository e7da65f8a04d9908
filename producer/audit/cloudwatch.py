"""The streams' CloudWatch metrics for a run's window (AWS mode), one GetMetricData call per
page of queries. Names, namespace and dimension as documented:
https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html
Firehose publishes 1-minute data points, so the period is 60 s.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

NAMESPACE = "AWS/Firehose"
PERIOD_S = 60
# GetMetricData takes at most 500 queries per call.
MAX_QUERIES = 500
COMMON = (("IncomingRecords", "Sum"), ("ThrottledRecords", "Sum"))
S3 = (
    ("DeliveryToS3.DataFreshness", "Maximum"),
    ("DeliveryToS3.Success", "Average"),
    ("DeliveryToS3.Records", "Sum"),
)
OPENSEARCH = (
    ("DeliveryToAmazonOpenSearchService.DataFreshness", "Maximum"),
    ("DeliveryToAmazonOpenSearchService.Success", "Average"),
    ("DeliveryToAmazonOpenSearchService.Records", "Sum"),
)


def metrics_for(destination: str) -> tuple[tuple[str, str], ...]:
    return COMMON + (OPENSEARCH if destination == "opensearch" else S3)


def queries(streams: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """GetMetricData queries for ``{stream: destination}`` and the id -> (stream, metric) map."""
    out: list[dict[str, Any]] = []
    ids: dict[str, tuple[str, str]] = {}
    for stream, destination in sorted(streams.items()):
        for metric, stat in metrics_for(destination):
            qid = f"m{len(out)}"
            ids[qid] = (stream, metric)
            out.append(
                {
                    "Id": qid,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": metric,
                            "Dimensions": [{"Name": "DeliveryStreamName", "Value": stream}],
                        },
                        "Period": PERIOD_S,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return out, ids


async def pull(
    cloudwatch: Any, streams: dict[str, str], start: float, end: float
) -> dict[str, dict[str, list[list[float]]]]:
    """``{stream: {metric: [[unix_s, value], ...]}}`` for the window, oldest point first."""
    all_queries, ids = queries(streams)
    series: dict[str, dict[str, list[list[float]]]] = {s: {} for s in streams}
    for page in _chunks(all_queries, MAX_QUERIES):
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "MetricDataQueries": page,
                # Widen to whole periods so the first and last minutes are not cut off.
                "StartTime": datetime.fromtimestamp(start - start % PERIOD_S, tz=UTC),
                "EndTime": datetime.fromtimestamp(end + PERIOD_S - end % PERIOD_S, tz=UTC),
                "ScanBy": "TimestampAscending",
            }
            if token:
                params["NextToken"] = token
            response = await cloudwatch.get_metric_data(**params)
            for result in response.get("MetricDataResults", []):
                stream, metric = ids[result["Id"]]
                points = series[stream].setdefault(metric, [])
                points.extend(
                    [t.timestamp(), float(v)]
                    for t, v in zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
                )
            token = response.get("NextToken")
            if not token:
                break
    for metrics in series.values():
        for points in metrics.values():
            points.sort()
    return series


def _chunks(items: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
