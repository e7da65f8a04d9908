"""A Firehose endpoint on 127.0.0.1 that misbehaves on purpose, and keeps its own books.

It speaks just enough of the JSON API (DescribeDeliveryStream, PutRecordBatch) to be a target
for ``run --endpoint-url`` and for both send paths, over a raw asyncio socket so that it can
fail the way networks and services do, below what an HTTP framework lets a handler do:

- ``latency_s``: every answer waits this long (a slow endpoint);
- ``stall``: the request is read and never answered;
- ``dribble_every_s``: headers and then one byte of body every so often, forever;
- ``reset_rate``: a share of calls whose connection is closed after the request was read and
  before anything was accepted (the producer cannot know that, so counts possible duplicates);
- ``status_rate`` / ``status`` / ``status_code``: a share of calls answered with that HTTP
  status and error code (503 ServiceUnavailableException, 413, an unknown 4xx...);
- ``max_records``: calls with more records get ``status`` (a proxy with a smaller body limit);
- ``record_fail_rate``: a share of records failed inside a 200, half InternalFailure, half
  ServiceUnavailableException "Slow down.";
- ``zero_failed_count``: such answers say ``FailedPutCount: 0`` all the same;
- ``truncate``: the answer's RequestResponses lacks its last entry (nothing accepted);
- ``overlong``: it has one entry too many (nothing accepted);
- ``html_rate``: a share of calls answered 200 with an HTML page (a proxy's or balancer's);
- ``expired_token``: every call answered 400 ExpiredTokenException.

With ``tls`` (an SSLContext) it serves HTTPS, at ``https://127.0.0.1:PORT``.

What it accepted is in ``accepted[stream]``, a Counter of each record's ``event_id`` (or its raw
data when it is not an event), and each accepted record's size in bytes in ``sizes[stream]``, so
a test can compare the producer's summary with the endpoint.
Faults draw from a seeded RNG; settings may be changed between calls through ``faults``.
"""

from __future__ import annotations

import asyncio
import base64
import random
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from producer.delivery.channel import ChannelSettings, StreamChannel
from producer.delivery.packing import PackingStage
from producer.delivery.retry import RetryPolicy
from producer.delivery.spool import Spool, read_spool
from producer.firehose.client import ClientSettings, open_batch_client, open_client
from producer.telemetry.stats import Reason, StreamStats

STREAM = "realtime-data-stream"


@dataclass
class Faults:
    latency_s: float = 0.0
    stall: bool = False
    dribble_every_s: float = 0.0
    reset_rate: float = 0.0
    status_rate: float = 0.0
    status: int = 503
    status_code: str = "ServiceUnavailableException"
    max_records: int = 0
    record_fail_rate: float = 0.0
    zero_failed_count: bool = False
    truncate: bool = False
    overlong: bool = False
    html_rate: float = 0.0
    expired_token: bool = False
    streams: set[str] = field(
        default_factory=lambda: {"realtime-data-stream", "realtime-data-stream-opensearch"}
    )


class FaultServer:
    """Runs on its own thread and loop; ``url`` once started. Use as a context manager."""

    def __init__(
        self, faults: Faults | None = None, seed: int = 7, tls: ssl.SSLContext | None = None
    ) -> None:
        self.faults = faults or Faults()
        self._tls = tls
        self.accepted: dict[str, Counter[str]] = {}
        self.sizes: dict[str, list[int]] = {}
        self.calls = 0
        self.resets = 0  # calls whose connection was closed unanswered
        self.url = ""
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> FaultServer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls), self._loop
        ).result(10)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def total(self, stream: str) -> int:
        with self._lock:
            return sum(self.accepted.get(stream, Counter()).values())

    # -- the wire --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._answer(headers.get("x-amz-target", ""), body, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _answer(self, target: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        f = self.faults
        request: dict[str, Any] = orjson.loads(body) if body else {}
        stream = str(request.get("DeliveryStreamName", ""))
        if target.endswith(".DescribeDeliveryStream"):
            if stream not in f.streams:
                return await _send(writer, 400, _error("ResourceNotFoundException", f"{stream} not found"))
            return await _send(writer, 200, _description(stream))
        if not target.endswith(".PutRecordBatch"):
            return await _send(writer, 400, _error("UnknownOperationException", target))
        with self._lock:
            self.calls += 1
            draw = self._rng.random
            reset = draw() < f.reset_rate
            status = draw() < f.status_rate
            html = draw() < f.html_rate
        records = request.get("Records", [])
        if f.latency_s:
            await asyncio.sleep(f.latency_s)
        if f.stall:
            await asyncio.sleep(3600)
        if f.dribble_every_s:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(f.dribble_every_s)
        if reset:
            with self._lock:
                self.resets += 1
            return False
        if f.expired_token:
            return await _send(writer, 400, _error("ExpiredTokenException", "The security token has expired"))
        if html:
            return await _send(writer, 200, b"<html><body>Service temporarily unavailable</body></html>")
        if status or (f.max_records and len(records) > f.max_records):
            return await _send(writer, f.status, _error(f.status_code, "injected"))
        entries: list[dict[str, str]] = []
        failed = 0
        accepted: list[str] = []
        sizes: list[int] = []
        for record in records:
            with self._lock:
                fail = self._rng.random() < f.record_fail_rate
                slow = self._rng.random() < 0.5
            if fail or f.truncate or f.overlong:
                failed += 1
                if slow:
                    entries.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
                else:
                    entries.append({"ErrorCode": "InternalFailure", "ErrorMessage": "injected"})
                continue
            data = base64.b64decode(record["Data"])
            accepted.append(_key(data))
            sizes.append(len(data))
            entries.append({"RecordId": f"r{len(accepted)}"})
        if f.truncate:
            entries = entries[:-1]
        elif f.overlong:
            entries.append({"RecordId": "extra"})
        else:
            with self._lock:
                self.accepted.setdefault(stream, Counter()).update(accepted)
                self.sizes.setdefault(stream, []).extend(sizes)
        answer = {
            "FailedPutCount": 0 if f.zero_failed_count else failed,
            "Encrypted": False,
            "RequestResponses": entries,
        }
        return await _send(writer, 200, orjson.dumps(answer))


def _key(data: bytes) -> str:
    try:
        return str(orjson.loads(data)["event_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return data.decode("utf-8", "replace")


def _error(code: str, message: str) -> bytes:
    return orjson.dumps({"__type": code, "message": message})


def _description(stream: str) -> bytes:
    return orjson.dumps(
        {
            "DeliveryStreamDescription": {
                "DeliveryStreamName": stream,
                "DeliveryStreamARN": f"arn:aws:firehose:us-east-1:000000000000:deliverystream/{stream}",
                "DeliveryStreamStatus": "ACTIVE",
                "DeliveryStreamType": "DirectPut",
                "VersionId": "1",
                "Destinations": [],
                "HasMoreDestinations": False,
            }
        }
    )


async def _send(writer: asyncio.StreamWriter, status: int, body: bytes) -> bool:
    reason = {200: "OK", 400: "Bad Request", 413: "Payload Too Large", 503: "Service Unavailable"}.get(
        status, "X"
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        f"x-amzn-RequestId: fault-server\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
    return True


async def deliver_to_one_stream(
    url: str,
    sender: Literal["lean", "botocore"],
    spool_path: Path,
    events: int,
    policy: RetryPolicy,
    batch_records: int,
    connect_timeout_s: float = 2.0,
    read_timeout_s: float = 5.0,
    call_timeout_s: float = 5.0,
    record: Callable[[int], bytes] = lambda i: orjson.dumps({"event_id": f"e{i}"}),
    pack_bytes: int = 0,
) -> tuple[StreamStats, list[str]]:
    """Offer ``events`` records (``record(i)``, by default ``{"event_id": "eN"}``) to one stream
    at ``url`` through the real client and channel, close with a generous drain, and check the
    books. Returns the stream's stats and the reasons in its spool."""
    spool = Spool(spool_path)
    stats = StreamStats(STREAM)
    settings = ClientSettings(
        region="us-east-1",
        endpoint_url=url,
        allow_local_credentials=True,
        connect_timeout_s=connect_timeout_s,
        read_timeout_s=read_timeout_s,
    )
    async with open_client(settings) as client, open_batch_client(client, sender, settings) as batch:
        channel_settings = ChannelSettings(
            linger_s=0.02, max_batch_records=batch_records, call_timeout_s=call_timeout_s
        )
        plain = StreamChannel(STREAM, batch, policy, spool, stats, channel_settings, random.Random(1))
        channel = PackingStage(plain, pack_bytes, channel_settings.linger_s) if pack_bytes else plain
        channel.start()
        for i in range(events):
            wait = channel.offer(record(i))
            if wait is not None:
                await wait
        await channel.close(60.0, Reason.DRAIN_TIMEOUT, "drain over")
    spool.close()
    reasons = [e.reason for e in read_spool(spool.path)] if spool.path.exists() else []
    assert stats.sent == stats.accepted + stats.dead_lettered and stats.lost == 0, stats.summary()
    return stats, reasons
