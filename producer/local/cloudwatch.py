"""Publishes the local Firehose's AWS/Firehose metrics to a CloudWatch-compatible endpoint.

Firehose publishes 1-minute data points in namespace AWS/Firehose with dimension
DeliveryStreamName (https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html).
Here the period is configurable (60 s by default, like AWS; tests use 1 s): one PutMetricData
round per period, stamped with the period's start (aligned to multiples of the period, as AWS
aligns to the minute), and a last, partial period when the server stops. Periods under 60 s
are sent as high-resolution metrics (StorageResolution 1) so CloudWatch keeps them per second.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
A failed publish is one warning line; it never holds up or breaks delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from producer.aws import clients

NAMESPACE = "AWS/Firehose"
# "Each request is also limited to no more than 1000 different metrics."
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
MAX_DATUMS_PER_CALL = 1000
# A stalled endpoint must not hold up a period, nor the server's stop, for long; at stop, an
# endpoint that already failed gets a short last chance.
PUBLISH_TIMEOUT_S = 10.0
FAILING_STOP_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)
# (period start as a UTC datetime, now, StorageResolution) -> the MetricData of every stream.
Collect = Callable[[datetime, float, int], list[dict[str, Any]]]


def period_start(now: float, period_s: float) -> float:
    """The start of the period ``now`` falls in, aligned to multiples of the period."""
    return math.floor(now / period_s) * period_s


class CloudWatchPublisher:
    def __init__(
        self,
        endpoint_url: str,
        region: str,
        period_s: float,
        collect: Collect,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if period_s <= 0:
            raise ValueError(f"the CloudWatch period must be longer than 0s, got {period_s}")
        self.settings = clients.AwsSettings(region, endpoint_url)
        self.period_s = period_s
        self.collect = collect
        self.clock = clock
        self.published_calls = 0
        self.failed_periods = 0
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing: str | None = None

    @property
    def storage_resolution(self) -> int:
        return 1 if self.period_s < 60 else 60

    async def start(self) -> None:
        self._client = await self._stack.enter_async_context(clients.client("cloudwatch", self.settings))
        self._task = asyncio.create_task(self._loop(), name="cloudwatch-publisher")
        log.info("publishing AWS/Firehose metrics to %s every %gs", self.settings.endpoint_url, self.period_s)

    async def stop(self) -> None:
        """Publish the last, partial period, then close the client."""
        if self._task is None:
            return
        self._stopping.set()
        limit = (FAILING_STOP_TIMEOUT_S if self._failing is not None else PUBLISH_TIMEOUT_S) + 1.0
        done, _ = await asyncio.wait({self._task}, timeout=limit)
        if not done:
            self._task.cancel()
            if self._failing is None:
                log.warning("CloudWatch PutMetricData: the last period was not published within %gs", limit)
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        await self._stack.aclose()

    async def _loop(self) -> None:
        while True:
            now = self.clock()
            start = period_start(now, self.period_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), start + self.period_s - now)
            # On a stop the period is cut short; otherwise it just ended.
            await self.publish(start)
            if self._stopping.is_set():
                return

    async def publish(self, start: float) -> None:
        """Send the figures gathered since the last publish, stamped ``start``."""
        stamp = datetime.fromtimestamp(start, UTC)
        data = self.collect(stamp, self.clock(), self.storage_resolution)
        problem: str | None = None
        timeout = PUBLISH_TIMEOUT_S
        if self._stopping.is_set() and self._failing is not None:
            timeout = FAILING_STOP_TIMEOUT_S
        try:
            for i in range(0, len(data), MAX_DATUMS_PER_CALL):
                chunk = data[i : i + MAX_DATUMS_PER_CALL]
                await asyncio.wait_for(
                    self._client.put_metric_data(Namespace=NAMESPACE, MetricData=chunk), timeout
                )
                self.published_calls += 1
        except TimeoutError:
            problem = f"CloudWatch PutMetricData: no answer within {timeout:g}s"
        except clients.SDK_ERRORS as exc:
            problem = str(clients.explain(exc, "CloudWatch PutMetricData"))
        where = self.settings.endpoint_url
        if problem is not None:
            self.failed_periods += 1
        if problem is not None and self._failing is None:
            # One line when publishing starts failing, not one per period.
            log.warning("%s (%s); metrics are dropped until it works again", problem, where)
        elif problem is None and self._failing is not None:
            log.warning("CloudWatch PutMetricData works again (%s)", where)
        self._failing = problem
