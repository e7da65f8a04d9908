"""Buffering by BufferingHints and delivery into a folder laid out like S3.

An object is written when the buffer reaches SizeInMBs or the oldest buffered record is
IntervalInSeconds old, whichever comes first, and on shutdown.
https://docs.aws.amazon.com/firehose/latest/dev/create-configure.html (buffering hints)
"""

from __future__ import annotations

import asyncio
import gzip
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from producer.local import keys
from producer.local.streams import LocalStream, OpenSearchTarget, S3Target

STATE_DIR = "_firehose"


@dataclass(slots=True)
class _Buffer:
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    records: int = 0
    first_arrival: float = 0.0
    last_arrival: float = 0.0


@dataclass(frozen=True, slots=True)
class _Object:
    stream: str
    chunks: list[bytes]
    records: int
    first_arrival: float
    last_arrival: float


class DeliveryLog:
    """One JSON line per object written, so an audit can compute freshness and object sizes."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / STATE_DIR / "delivery-log.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, entry: dict[str, object]) -> None:
        with self.path.open("ab") as f:
            f.write(orjson.dumps(entry) + b"\n")


class ObjectWriter:
    """Writes objects atomically: staged under _firehose/staging, then renamed into place."""

    def __init__(self, output_dir: Path, log: DeliveryLog) -> None:
        self.output_dir = output_dir
        self.staging = output_dir / STATE_DIR / "staging"
        self.staging.mkdir(parents=True, exist_ok=True)
        self.log = log

    def write(self, relative: str, data: bytes, obj: _Object, destination: str) -> Path:
        final = self.output_dir / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.staging / uuid.uuid4().hex
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        self.log.append(
            {
                "stream": obj.stream,
                "destination": destination,
                "key": relative,
                "records": obj.records,
                "bytes": len(data),
                "first_arrival": obj.first_arrival,
                "last_arrival": obj.last_arrival,
                "delivered_at": time.time(),
            }
        )
        return final


class StreamDelivery:
    """Buffers one stream's records and hands full buffers to a single writer task."""

    def __init__(self, stream: LocalStream, writer: ObjectWriter) -> None:
        self.stream = stream
        self.writer = writer
        dest = stream.destination
        self.limit_bytes = dest.buffer_bytes
        self.interval_s = dest.buffer_interval_s
        self._buffer = _Buffer()
        self._objects: asyncio.Queue[_Object | None] = asyncio.Queue()
        self._has_data = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.objects_written = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._timer(), name=f"buffer-timer:{self.stream.name}"),
            asyncio.create_task(self._write_loop(), name=f"writer:{self.stream.name}"),
        ]

    def add(self, records: list[bytes], size: int, arrival: float) -> None:
        buf = self._buffer
        if not buf.records:
            buf.first_arrival = arrival
            self._has_data.set()
        buf.chunks.extend(records)
        buf.size += size
        buf.records += len(records)
        buf.last_arrival = arrival
        if buf.size >= self.limit_bytes:
            self._flush()

    def _flush(self) -> None:
        buf = self._buffer
        if not buf.records:
            return
        self._objects.put_nowait(
            _Object(self.stream.name, buf.chunks, buf.records, buf.first_arrival, buf.last_arrival)
        )
        self._buffer = _Buffer()
        self._has_data.clear()

    async def _timer(self) -> None:
        # One wake-up per buffer at its deadline; no polling.
        while True:
            await self._has_data.wait()
            first = self._buffer.first_arrival
            await asyncio.sleep(max(0.0, first + self.interval_s - time.time()))
            if self._buffer.records and self._buffer.first_arrival == first:
                self._flush()

    async def _write_loop(self) -> None:
        while (obj := await self._objects.get()) is not None:
            await asyncio.to_thread(self._deliver, obj)
            self.objects_written += 1

    def _deliver(self, obj: _Object) -> None:
        dest = self.stream.destination
        if isinstance(dest, S3Target):
            self._write_s3(dest, obj, b"".join(obj.chunks), "s3")
        else:
            self._write_opensearch(dest, obj)

    def _write_s3(self, dest: S3Target, obj: _Object, data: bytes, label: str) -> None:
        at = keys.utc(obj.first_arrival)
        key = keys.expand_prefix(dest.prefix, at) + keys.object_name(
            self.stream.name, self.stream.version_id, at, dest.gzip
        )
        if dest.gzip:
            data = gzip.compress(data, compresslevel=6)
        self.writer.write(f"{dest.bucket}/{key}", data, obj, label)

    def _write_opensearch(self, dest: OpenSearchTarget, obj: _Object) -> None:
        # One document per line, whatever line ending the producer used.
        docs = b"".join(chunk.rstrip(b"\n") + b"\n" for chunk in obj.chunks)
        at = keys.utc(obj.first_arrival)
        index = keys.index_name(dest.index_name, dest.rotation, at)
        name = keys.object_name(self.stream.name, self.stream.version_id, at, False)
        self.writer.write(f"opensearch/{index}/{name}.json", docs, obj, "opensearch")
        if dest.backup_all:
            self._write_s3(dest.backup, obj, docs, "s3-backup")

    async def close(self) -> None:
        """Deliver what is buffered and wait until every object is on disk."""
        self._flush()
        self._objects.put_nowait(None)
        timer, writer = self._tasks
        timer.cancel()
        await writer
        await asyncio.gather(timer, return_exceptions=True)
