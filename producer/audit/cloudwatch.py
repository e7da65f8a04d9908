"""The streams' CloudWatch metrics for a run's window (AWS mode), one GetMetricData call per
page of queries. Names, namespace and dimension as documented:
https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html
Firehose publishes 1-minute data points, so the period is 60 s.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

NAMESPACE = "AWS/Firehose"
PERIOD_S = 60
# GetMetricData takes at most 500 queries per call.
MAX_QUERIES = 500
INVOCATIONS = "ExecuteProcessing.Duration:SampleCount"  # one Duration sample per Lambda call
COMMON = (
    ("IncomingRecords", "Sum"),
    ("IncomingBytes", "Sum"),
    ("BytesPerSecondLimit", "Maximum"),
    ("ThrottledRecords", "Sum"),
    ("ExecuteProcessing.Duration", "Average"),
    ("ExecuteProcessing.Duration", "SampleCount"),
    ("ExecuteProcessing.Success", "Average"),
)
S3 = (
    ("DeliveryToS3.DataFreshness", "Maximum"),
    ("DeliveryToS3.Success", "Average"),
    ("DeliveryToS3.Records", "Sum"),
)
OPENSEARCH = (
    ("DeliveryToAmazonOpenSearchService.DataFreshness", "Maximum"),
    ("DeliveryToAmazonOpenSearchService.Success", "Average"),
    ("DeliveryToAmazonOpenSearchService.Records", "Sum"),
    ("BackupToS3.DataFreshness", "Maximum"),
)


def metrics_for(destination: str) -> tuple[tuple[str, str], ...]:
    return COMMON + (OPENSEARCH if destination == "opensearch" else S3)


def key(metric: str, stat: str) -> str:
    """A series' name in the report: the metric, or METRIC:STAT for its second statistic."""
    return f"{metric}:{stat}" if (metric, stat) == ("ExecuteProcessing.Duration", "SampleCount") else metric


def queries(streams: Mapping[str, str]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """GetMetricData queries for ``{stream: destination}`` and the id -> (stream, series) map."""
    out: list[dict[str, Any]] = []
    ids: dict[str, tuple[str, str]] = {}
    for stream, destination in sorted(streams.items()):
        for metric, stat in metrics_for(destination):
            qid = f"m{len(out)}"
            ids[qid] = (stream, key(metric, stat))
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
    cloudwatch: Any, streams: Mapping[str, str], start: float, end: float
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


def published(series: dict[str, dict[str, list[list[float]]]], end: float) -> bool:
    """Whether every stream has its IncomingRecords point for the minute holding ``end`` (the
    run's last records): CloudWatch publishes a minute a few minutes after it ends."""
    last = end - end % PERIOD_S
    return bool(series) and all(
        any(t >= last for t, _ in metrics.get("IncomingRecords", [])) for metrics in series.values()
    )


def _p50(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def figures(metrics: dict[str, list[list[float]]]) -> dict[str, float | None]:
    """One stream's soak figures from its series: DataFreshness p50/max of the per-minute maxima
    (the destination's and the S3 backup's), the Lambda's Duration p50 and invocations, and the
    busiest minute's IncomingBytes per second against BytesPerSecondLimit. None: no data."""

    def values(name: str) -> list[float]:
        return [v for _, v in metrics.get(name, [])]

    fresh = values("DeliveryToS3.DataFreshness") or values("DeliveryToAmazonOpenSearchService.DataFreshness")
    backup = values("BackupToS3.DataFreshness")
    duration = values("ExecuteProcessing.Duration")
    calls = values(INVOCATIONS)
    incoming = values("IncomingBytes")
    limit = values("BytesPerSecondLimit")
    peak = max(incoming) / PERIOD_S if incoming else None
    return {
        "freshness_p50_s": _p50(fresh),
        "freshness_max_s": max(fresh) if fresh else None,
        "backup_freshness_p50_s": _p50(backup),
        "backup_freshness_max_s": max(backup) if backup else None,
        "processing_duration_p50_ms": _p50(duration),
        "lambda_invocations": sum(calls) if calls else None,
        "incoming_bytes_per_s_peak": peak,
        "bytes_per_second_limit": max(limit) if limit else None,
        "limit_used": peak / max(limit) if peak is not None and limit and max(limit) else None,
    }
