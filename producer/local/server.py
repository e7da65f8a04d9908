"""The HTTP front of the local Firehose: JSON 1.1 protocol, the operations the tool and the CLI use.

Protocol: ``POST /`` with ``X-Amz-Target: Firehose_20150804.<Operation>`` and
``Content-Type: application/x-amz-json-1.1``; errors as ``{"__type", "message"}``.
https://docs.aws.amazon.com/firehose/latest/APIReference/CommonErrors.html
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from producer.firehose import limits
from producer.local import errors, ingest
from producer.local.cloudwatch import CloudWatchPublisher
from producer.local.delivery import DeliveryLog, ObjectWriter, StreamDelivery
from producer.local.faults import FaultInjector, FaultSettings
from producer.local.metrics import StreamMetrics
from producer.local.quotas import QuotaOverrides, StreamQuota
from producer.local.streams import (
    ACCOUNT_ID,
    LocalStream,
    stream_from_request,
    stream_requests_from_file_data,
    validate_name,
)
from producer.local.transform import Handler, TransformRunner, find_transform, load_handler
from producer.local.update import updated_stream
from producer.shipped import shipped_roots

TARGET_PREFIX = "Firehose_20150804."
DATA_PLANE = frozenset({"PutRecord", "PutRecordBatch"})
CONTENT_TYPE = "application/x-amz-json-1.1"
# Bodies are accepted up to well past the 4 MiB data limit (base64 adds a third), so that an
# oversized call gets the service's own error rather than an HTTP 413.
MAX_BODY_BYTES = 16 * 1024 * 1024
# Whole-call throttling answer. The per-record text "Slow down." is the service's; for the
# whole-call 503 the service's exact text is not documented, so the same words are used.
THROTTLED_MESSAGE = ingest.SLOW_DOWN

log = logging.getLogger(__name__)
OperationHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | bytes]]


@dataclass(frozen=True, slots=True)
class LocalOptions:
    output_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    region: str = "us-east-1"
    faults: FaultSettings = field(default_factory=FaultSettings)
    quotas: QuotaOverrides = field(default_factory=QuotaOverrides)
    # A stream config file (CreateDeliveryStream request(s)) to create at start-up.
    stream_config: Path | None = None
    # The Lambda transform for streams with a Lambda processor; None looks for
    # deploy/lambda/transform.py under the working directory and the source checkout.
    transform_path: Path | None = None
    # Full buffers allowed to wait for the writer before ingest waits (memory bound).
    max_pending_objects: int = 2
    # Accept-everything mode for benchmarks: requests are validated and answered as usual, but
    # no quota applies and nothing is buffered or delivered, so the endpoint is never the limit.
    discard: bool = False
    # Seconds an UpdateDestination takes to govern delivery: Describe shows the new version at
    # once, buffering follows the old hints until then ("usually effective within a few
    # minutes": https://docs.aws.amazon.com/firehose/latest/APIReference/API_UpdateDestination.html).
    update_apply_delay_s: float = 0.0
    # A CloudWatch-compatible endpoint to publish the AWS/Firehose metrics to (None: none), and
    # the period of its data points (AWS: 1 minute).
    cloudwatch_endpoint_url: str | None = None
    cloudwatch_period_s: float = 60.0


# No stream of any region gets near this; the discard mode must never throttle.
UNLIMITED_QUOTA = limits.DirectPutQuota(10**9, 10**9, 10**15)


class _Dropped(Exception):
    """The connection was closed on purpose (fault injection)."""


class LocalFirehose:
    """An in-process Firehose endpoint. ``async with LocalFirehose(opts) as fh: fh.url``."""

    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self.streams: dict[str, LocalStream] = {}
        self.deliveries: dict[str, StreamDelivery] = {}
        self.quotas: dict[str, StreamQuota] = {}
        self.metrics: dict[str, StreamMetrics] = {}
        self.publisher: CloudWatchPublisher | None = None
        options.output_dir.mkdir(parents=True, exist_ok=True)
        self._writer = ObjectWriter(options.output_dir, DeliveryLog(options.output_dir))
        self._writer_closed = False
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.records_accepted: dict[str, int] = {}
        self.faults = FaultInjector()
        self.faults.set(options.faults)
        self._quota_overrides = options.quotas
        self._handlers: dict[Path, Handler] = {}
        self._ops: dict[str, OperationHandler] = {
            "CreateDeliveryStream": self._create,
            "DescribeDeliveryStream": self._describe,
            "ListDeliveryStreams": self._list,
            "DeleteDeliveryStream": self._delete,
            "UpdateDestination": self._update_destination,
            "PutRecord": self._put_record,
            "PutRecordBatch": self._put_record_batch,
        }

    async def __aenter__(self) -> LocalFirehose:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self.options.stream_config is not None:
            await self.create_streams_from_file(self.options.stream_config)
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        if self.options.cloudwatch_endpoint_url:
            self.publisher = CloudWatchPublisher(
                self.options.cloudwatch_endpoint_url,
                self.options.region,
                self.options.cloudwatch_period_s,
                functools.partial(_metric_data, self),
            )
            await self.publisher.start()
        log.info("local Firehose listening on %s, output in %s", self.url, self.options.output_dir)

    async def stop(self) -> None:
        """Stop accepting requests, then deliver every buffered record (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        deliveries = list(self.deliveries.values())
        for delivery in deliveries:
            await delivery.close()
        if self.publisher is not None:
            # After the last deliveries, so the last partial period has them.
            await self.publisher.stop()
            self.publisher = None
        self.deliveries.clear()
        if not self._writer_closed:
            self._writer_closed = True
            self._writer.close()

    async def create_streams_from_file(self, path: Path) -> list[str]:
        """Create every stream a config file describes; raises ValueError with the file named."""
        try:
            raw = await asyncio.to_thread(path.read_bytes)
            requests = stream_requests_from_file_data(orjson.loads(raw))
        except (OSError, orjson.JSONDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        names = []
        for request in requests:
            try:
                await self._create(request)
            except errors.FirehoseApiError as exc:
                raise ValueError(
                    f"{path}: stream {request.get('DeliveryStreamName')!r}: {exc.message}"
                ) from None
            names.append(str(request["DeliveryStreamName"]))
        return names

    def set_faults(self, settings: FaultSettings) -> None:
        """Change the fault knobs while serving (tests, demos); an outage window starts now."""
        self.faults.set(settings)

    def set_quotas(self, overrides: QuotaOverrides) -> None:
        """Change every stream's quota (and new streams'); buckets start full."""
        self._quota_overrides = overrides
        for name, stream in self.streams.items():
            self.quotas[name] = self._quota_for(stream)

    def _quota_for(self, stream: LocalStream) -> StreamQuota:
        if self.options.discard:
            return StreamQuota(UNLIMITED_QUOTA)
        return StreamQuota(self._quota_overrides.apply(limits.direct_put_quota(stream.region)))

    # --- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        try:
            target = request.headers.get("X-Amz-Target", "")
            operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
            handler = self._ops.get(operation)
            if handler is None:
                raise errors.UnknownOperation(None)
            if operation in DATA_PLANE:
                await self._inject_call_faults(request)
            try:
                payload = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                raise errors.Serialization(None) from None
            if not isinstance(payload, dict):
                raise errors.Serialization(None)
            result = await handler(payload)
            status = 200
            body = result if isinstance(result, bytes) else orjson.dumps(result)
            headers = {"x-amzn-RequestId": request_id}
        except errors.FirehoseApiError as exc:
            status, body = exc.status, orjson.dumps(exc.body())
            headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": exc.type_name}
        except _Dropped:
            return web.Response(status=500)  # never reaches the client: the socket is closed
        return web.Response(status=status, body=body, content_type=CONTENT_TYPE, headers=headers)

    async def _inject_call_faults(self, request: web.Request) -> None:
        delay = self.faults.delay_s()
        if delay:
            await asyncio.sleep(delay)
        if self.faults.drop_connection():
            # Close the socket without an answer: the client sees a dropped connection and
            # cannot know whether the call was accepted (here it was not).
            if request.transport is not None:
                request.transport.close()
            raise _Dropped
        if self.faults.in_outage():
            raise errors.ServiceUnavailable("Service Unavailable. Please try again later.")
        error = self.faults.call_error()
        if error == "InternalFailure":
            raise errors.InternalFailure("We encountered an internal error. Please try again.")
        if error is not None:
            raise errors.ServiceUnavailable(THROTTLED_MESSAGE)

    # --- control plane ---------------------------------------------------------------------

    def _stream_named(self, name: str) -> LocalStream:
        stream = self.streams.get(name)
        if stream is None:
            # The service's wording: https://github.com/turbot/steampipe-plugin-aws/issues/759
            raise errors.ResourceNotFound(f"Firehose {name} under account {ACCOUNT_ID} not found.")
        return stream

    def _stream(self, payload: dict[str, Any]) -> LocalStream:
        return self._stream_named(validate_name(payload.get("DeliveryStreamName")))

    def _transform_for(self, stream: LocalStream) -> TransformRunner | None:
        processing = stream.processing
        if processing is None or processing.lambda_arn is None:
            return None
        path = find_transform(self.options.transform_path, [Path.cwd(), *shipped_roots()])
        handler: Handler | None = None
        if path is None:
            log.warning("stream %s: no transform found; records pass through unchanged", stream.name)
        else:
            handler = self._handlers.get(path)
            if handler is None:
                handler = self._handlers[path] = load_handler(path)
        metrics = self.metrics.get(stream.name)
        return TransformRunner(
            handler,
            processing.lambda_arn,
            stream.arn,
            stream.region,
            processing.buffer_bytes,
            processing.retries,
            on_invocation=metrics.invoked if metrics is not None else None,
        )

    async def _create(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream = stream_from_request(payload, self.options.region)
        if stream.name in self.streams:
            raise errors.ResourceInUse(f"Firehose {stream.name} under account {ACCOUNT_ID} already exists.")
        self.metrics[stream.name] = metrics = StreamMetrics()
        delivery = StreamDelivery(
            stream, self._writer, self._transform_for(stream), self.options.max_pending_objects, metrics
        )
        delivery.start()
        self.streams[stream.name] = stream
        self.deliveries[stream.name] = delivery
        self.quotas[stream.name] = self._quota_for(stream)
        self.records_accepted[stream.name] = 0
        return {"DeliveryStreamARN": stream.arn}

    async def _update_destination(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(payload)
        updated = updated_stream(stream, payload)
        self.streams[stream.name] = updated
        delivery = self.deliveries[stream.name]
        transform = self._transform_for(updated)
        delay = self.options.update_apply_delay_s
        if delay > 0:
            # Updates apply in the order they were made: every one waits the same delay.
            asyncio.get_running_loop().call_later(delay, delivery.apply, updated, transform)
        else:
            delivery.apply(updated, transform)
        log.info("stream %s: destination updated, version %s", stream.name, updated.version_id)
        return {}

    async def _describe(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"DeliveryStreamDescription": self._stream(payload).describe()}

    async def _list(self, payload: dict[str, Any]) -> dict[str, Any]:
        names = sorted(self.streams)
        start = payload.get("ExclusiveStartDeliveryStreamName")
        if start:
            names = [n for n in names if n > start]
        limit = int(payload.get("Limit", 10))
        return {"DeliveryStreamNames": names[:limit], "HasMoreDeliveryStreams": len(names) > limit}

    async def _delete(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(payload)
        delivery = self.deliveries.pop(stream.name)
        del self.streams[stream.name]
        self.quotas.pop(stream.name, None)
        self.metrics.pop(stream.name, None)
        await delivery.close()
        return {}

    # --- data plane --------------------------------------------------------------------------

    async def _put_record(self, payload: dict[str, Any]) -> bytes:
        batch = ingest.parse_record(payload)
        stream = self._stream_named(batch.stream)
        quota = self.quotas[stream.name]
        if not quota.admit_call() or quota.admit_records(batch.sizes, batch.total) < 1:
            self._count_throttled(stream.name, 1)
            raise errors.ServiceUnavailable(THROTTLED_MESSAGE)
        if self.faults.failed_records(1)[0]:
            raise errors.ServiceUnavailable(THROTTLED_MESSAGE)
        await self._accept(stream, batch.records, batch.total)
        return ingest.record_body()

    async def _put_record_batch(self, payload: dict[str, Any]) -> bytes:
        batch = ingest.parse_batch(payload)
        stream = self._stream_named(batch.stream)
        ingest.check_batch_total(batch)
        quota = self.quotas[stream.name]
        count = len(batch.records)
        if not quota.admit_call():
            self._count_throttled(stream.name, count)
            raise errors.ServiceUnavailable(THROTTLED_MESSAGE)
        fit = quota.admit_records(batch.sizes, batch.total)
        self._count_throttled(stream.name, count - fit)
        injected = self.faults.failed_records(fit)
        if fit == count and not any(injected):
            await self._accept(stream, batch.records, batch.total)
            return ingest.all_accepted_body(count)
        throttled = ("ServiceUnavailableException", ingest.SLOW_DOWN)
        failures: list[tuple[str, str] | None] = [throttled if bad else None for bad in injected]
        failures.extend([throttled] * (count - fit))
        accepted = [r for r, f in zip(batch.records, failures, strict=True) if f is None]
        await self._accept(stream, accepted, sum(map(len, accepted)))
        return ingest.partial_body(failures)

    def _count_throttled(self, name: str, records: int) -> None:
        metrics = self.metrics.get(name)
        if metrics is not None and records:
            metrics.throttled_records.add(records)

    async def _accept(self, stream: LocalStream, records: list[bytes], size: int) -> None:
        metrics = self.metrics.get(stream.name)
        if metrics is not None:
            metrics.incoming_put_requests.add(1)
            metrics.incoming_records.add(len(records))
            metrics.incoming_bytes.add(size)
        if not records:
            return
        if self.options.discard:
            self.records_accepted[stream.name] += len(records)
            return
        delivery = self.deliveries[stream.name]
        delivery.add(records, size, time.time())
        self.records_accepted[stream.name] += len(records)
        if delivery.backlogged:
            await delivery.wait_for_room()


def _metric_data(
    firehose: LocalFirehose, stamp: datetime, now: float, resolution: int
) -> list[dict[str, Any]]:
    """Every stream's MetricData for the period that ends now (CloudWatchPublisher)."""
    out: list[dict[str, Any]] = []
    for name, metrics in firehose.metrics.items():
        delivery = firehose.deliveries.get(name)
        quota = firehose.quotas.get(name)
        if delivery is None or quota is None:
            continue
        out.extend(metrics.datums(name, quota.quota, delivery.waiting_since(), now, stamp, resolution))
    return out
