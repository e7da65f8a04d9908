"""The HTTP front of the local Firehose: JSON 1.1 protocol, the six operations the tool uses.

Protocol: ``POST /`` with ``X-Amz-Target: Firehose_20150804.<Operation>`` and
``Content-Type: application/x-amz-json-1.1``; errors as ``{"__type", "message"}``.
https://docs.aws.amazon.com/firehose/latest/APIReference/CommonErrors.html
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from producer import limits
from producer.local import errors
from producer.local.delivery import DeliveryLog, ObjectWriter, StreamDelivery
from producer.local.faults import FaultInjector, FaultSettings
from producer.local.streams import ACCOUNT_ID, LocalStream, stream_from_request, validate_name

TARGET_PREFIX = "Firehose_20150804."
DATA_PLANE = frozenset({"PutRecord", "PutRecordBatch"})
CONTENT_TYPE = "application/x-amz-json-1.1"
# Bodies are accepted up to well past the 4 MiB data limit (base64 adds a third), so that an
# oversized call gets the service's own error rather than an HTTP 413.
MAX_BODY_BYTES = 16 * 1024 * 1024

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class LocalOptions:
    output_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    region: str = "us-east-1"
    faults: FaultSettings = field(default_factory=FaultSettings)


class _Dropped(Exception):
    """The connection was closed on purpose (fault injection)."""


class LocalFirehose:
    """An in-process Firehose endpoint. ``async with LocalFirehose(opts) as fh: fh.url``."""

    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self.streams: dict[str, LocalStream] = {}
        self.deliveries: dict[str, StreamDelivery] = {}
        options.output_dir.mkdir(parents=True, exist_ok=True)
        self._writer = ObjectWriter(options.output_dir, DeliveryLog(options.output_dir))
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.records_accepted: dict[str, int] = {}
        self.faults = FaultInjector()
        self.faults.set(options.faults)
        self._ops: dict[str, Handler] = {
            "CreateDeliveryStream": self._create,
            "DescribeDeliveryStream": self._describe,
            "ListDeliveryStreams": self._list,
            "DeleteDeliveryStream": self._delete,
            "PutRecord": self._put_record,
            "PutRecordBatch": self._put_record_batch,
        }

    async def __aenter__(self) -> LocalFirehose:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        log.info("local Firehose listening on %s, output in %s", self.url, self.options.output_dir)

    async def stop(self) -> None:
        """Stop accepting requests, then deliver every buffered record."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for delivery in self.deliveries.values():
            await delivery.close()
        self.deliveries.clear()

    async def _handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        try:
            target = request.headers.get("X-Amz-Target", "")
            if not target.startswith(TARGET_PREFIX):
                raise errors.UnknownOperation(f"Operation {target!r} is not a Firehose operation.")
            operation = target.removeprefix(TARGET_PREFIX)
            handler = self._ops.get(operation)
            if handler is None:
                raise errors.UnknownOperation(f"Operation {operation!r} is not supported.")
            if operation in DATA_PLANE:
                await self._inject_call_faults(request)
            try:
                payload = orjson.loads(await request.read())
            except orjson.JSONDecodeError as exc:
                raise errors.Serialization(f"Request body is not valid JSON: {exc}") from None
            if not isinstance(payload, dict):
                raise errors.Serialization("Request body must be a JSON object.")
            result = await handler(payload)
            status, body = 200, result
        except errors.FirehoseApiError as exc:
            status, body = exc.status, exc.body()
        except _Dropped:
            return web.Response(status=500)  # never reaches the client: the socket is closed
        headers = {"x-amzn-RequestId": request_id}
        if status != 200:
            headers["x-amzn-ErrorType"] = str(body["__type"])
        return web.Response(
            status=status, body=orjson.dumps(body), content_type=CONTENT_TYPE, headers=headers
        )

    def set_faults(self, settings: FaultSettings) -> None:
        """Change the fault knobs while serving (tests, demos); an outage window starts now."""
        self.faults.set(settings)

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
            raise errors.ServiceUnavailable("Slow down.")

    def _stream(self, payload: dict[str, Any]) -> LocalStream:
        name = validate_name(payload.get("DeliveryStreamName"))
        stream = self.streams.get(name)
        if stream is None:
            raise errors.ResourceNotFound(f"Firehose {name} under account {ACCOUNT_ID} not found.")
        return stream

    async def _create(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream = stream_from_request(payload, self.options.region)
        if stream.name in self.streams:
            raise errors.ResourceInUse(f"Firehose {stream.name} under account {ACCOUNT_ID} already exists.")
        delivery = StreamDelivery(stream, self._writer)
        delivery.start()
        self.streams[stream.name] = stream
        self.deliveries[stream.name] = delivery
        self.records_accepted[stream.name] = 0
        return {"DeliveryStreamARN": stream.arn}

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
        await delivery.close()
        return {}

    async def _put_record(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(payload)
        record = payload.get("Record")
        if not isinstance(record, dict):
            raise errors.Validation(
                "1 validation error detected: Value null at 'record' failed to satisfy constraint: "
                "Member must not be null"
            )
        data = _decode(record, "record.data")
        self._accept(stream, [data], len(data))
        return {"RecordId": _record_ids(1)[0], "Encrypted": False}

    async def _put_record_batch(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream = self._stream(payload)
        records = payload.get("Records")
        if not isinstance(records, list) or not records:
            raise errors.Validation(
                "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1"
            )
        if len(records) > limits.MAX_BATCH_RECORDS:
            raise errors.Validation(
                f"1 validation error detected: Value at 'records' failed to satisfy constraint: "
                f"Member must have length less than or equal to {limits.MAX_BATCH_RECORDS}"
            )
        decoded = [_decode(r, f"records.{i + 1}.member.data") for i, r in enumerate(records)]
        size = sum(len(d) for d in decoded)
        if size > limits.MAX_BATCH_BYTES:
            raise errors.InvalidArgument(
                f"Records size exceeds {limits.MAX_BATCH_BYTES} bytes (4 MiB) per PutRecordBatch call."
            )
        failed = self.faults.failed_records(len(decoded))
        if any(failed):
            accepted = [d for d, f in zip(decoded, failed, strict=True) if not f]
            self._accept(stream, accepted, sum(len(d) for d in accepted))
            ids = iter(_record_ids(len(accepted)))
            responses: list[dict[str, str]] = [
                {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
                if f
                else {"RecordId": next(ids)}
                for f in failed
            ]
            return {"FailedPutCount": sum(failed), "Encrypted": False, "RequestResponses": responses}
        self._accept(stream, decoded, size)
        return {
            "FailedPutCount": 0,
            "Encrypted": False,
            "RequestResponses": [{"RecordId": rid} for rid in _record_ids(len(decoded))],
        }

    def _accept(self, stream: LocalStream, records: list[bytes], size: int) -> None:
        self.deliveries[stream.name].add(records, size, time.time())
        self.records_accepted[stream.name] += len(records)


def _decode(record: Any, where: str) -> bytes:
    if not isinstance(record, dict) or not isinstance(record.get("Data"), str):
        raise errors.Validation(
            f"1 validation error detected: Value null at '{where}' failed to satisfy constraint: "
            "Member must not be null"
        )
    try:
        data = binascii.a2b_base64(record["Data"])
    except binascii.Error:
        raise errors.Serialization(f"Value at '{where}' is not valid base64.") from None
    if len(data) > limits.MAX_RECORD_BYTES:
        raise errors.Validation(
            f"1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim={len(data)} "
            f"cap={len(data)}]' at '{where}' failed to satisfy constraint: Member must have length "
            f"less than or equal to {limits.MAX_RECORD_BYTES}"
        )
    return data


def _record_ids(count: int) -> list[str]:
    # Real RecordIds are long opaque strings; a per-call random stem keeps them unique and cheap.
    stem = secrets.token_urlsafe(42)
    return [f"{stem}{i:04d}" for i in range(count)]
