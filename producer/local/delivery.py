"""Buffering by BufferingHints and delivery into a folder laid out like S3.

An object is written when the buffer reaches SizeInMBs or the oldest buffered record is
IntervalInSeconds old, whichever comes first, and on shutdown.
https://docs.aws.amazon.com/firehose/latest/dev/create-configure.html (buffering hints)
Memory stays bounded by the buffer size: at most ``max_pending`` full buffers wait for the
writer, and ingest waits (backpressure) rather than queueing more.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from producer.local import keys, parquet
from producer.local.streams import LocalStream, OpenSearchTarget, S3Target
from producer.local.transform import Outcome, TransformRunner

STATE_DIR = "_firehose"
OPENSEARCH_DIR = "opensearch"


@dataclass(slots=True)
class _Buffer:
    chunks: list[bytes] = field(default_factory=list)
    # (records buffered after this add, its arrival time): one entry per call, not per record.
    marks: list[tuple[int, float]] = field(default_factory=list)
    size: int = 0
    records: int = 0
    first_arrival: float = 0.0
    last_arrival: float = 0.0


@dataclass(frozen=True, slots=True)
class _Object:
    stream: str
    chunks: list[bytes]
    marks: list[tuple[int, float]]
    records: int
    first_arrival: float
    last_arrival: float

    def arrivals(self) -> list[float]:
        out: list[float] = []
        done = 0
        for end, at in self.marks:
            out.extend([at] * (end - done))
            done = end
        return out


class DeliveryLog:
    """One JSON line per object written, so an audit can compute freshness and object sizes."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / STATE_DIR / "delivery-log.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, entry: dict[str, object]) -> None:
        with self.path.open("ab") as f:
            f.write(orjson.dumps(entry) + b"\n")


class ObjectWriter:
    """Writes objects atomically: staged under _firehose/staging, fsynced, then renamed into place,
    so no half-written object is ever visible under the bucket folders."""

    def __init__(self, output_dir: Path, log: DeliveryLog) -> None:
        self.output_dir = output_dir
        # One staging folder per server, so two servers sharing an output folder never touch
        # each other's files; a crash leaves only never-visible partial files behind.
        self.staging = output_dir / STATE_DIR / "staging" / uuid.uuid4().hex
        self.staging.mkdir(parents=True, exist_ok=True)
        self.log = log

    def close(self) -> None:
        """Remove this server's (empty) staging folder."""
        for stale in self.staging.iterdir():
            stale.unlink(missing_ok=True)
        self.staging.rmdir()

    def write(
        self,
        relative: str,
        data: bytes,
        *,
        stream: str,
        destination: str,
        records: int,
        first_arrival: float,
        last_arrival: float,
    ) -> Path:
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
                "stream": stream,
                "destination": destination,
                "key": relative,
                "records": records,
                "bytes": len(data),
                "first_arrival": first_arrival,
                "last_arrival": last_arrival,
                "delivered_at": time.time(),
            }
        )
        return final


@dataclass(slots=True)
class DeliveryCounts:
    objects: int = 0
    delivered_records: int = 0
    dropped_records: int = 0
    failed_records: int = 0


class StreamDelivery:
    """Buffers one stream's records and hands full buffers to a single writer task."""

    def __init__(
        self,
        stream: LocalStream,
        writer: ObjectWriter,
        transform: TransformRunner | None = None,
        max_pending: int = 2,
    ) -> None:
        self.stream = stream
        self.writer = writer
        self.transform = transform
        dest = stream.destination
        self.limit_bytes = dest.buffer_bytes
        self.interval_s = dest.buffer_interval_s
        self.max_pending = max_pending
        self.counts = DeliveryCounts()
        self._buffer = _Buffer()
        self._objects: asyncio.Queue[_Object | None] = asyncio.Queue()
        self._pending = 0
        self._room = asyncio.Event()
        self._room.set()
        self._has_data = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._timer(), name=f"buffer-timer:{self.stream.name}"),
            asyncio.create_task(self._write_loop(), name=f"writer:{self.stream.name}"),
        ]

    @property
    def backlogged(self) -> bool:
        return self._pending >= self.max_pending

    async def wait_for_room(self) -> None:
        """Ingest awaits this when full buffers are waiting for the writer (backpressure)."""
        while self._pending >= self.max_pending:
            self._room.clear()
            await self._room.wait()

    def add(self, records: list[bytes], size: int, arrival: float) -> None:
        buf = self._buffer
        if not buf.records:
            buf.first_arrival = arrival
            self._has_data.set()
        buf.chunks.extend(records)
        buf.size += size
        buf.records += len(records)
        buf.marks.append((buf.records, arrival))
        buf.last_arrival = arrival
        if buf.size >= self.limit_bytes:
            self._flush()

    def _flush(self) -> None:
        buf = self._buffer
        if not buf.records:
            return
        self._pending += 1
        self._objects.put_nowait(
            _Object(self.stream.name, buf.chunks, buf.marks, buf.records, buf.first_arrival, buf.last_arrival)
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
            try:
                await asyncio.to_thread(self._deliver, obj)
            finally:
                self._pending -= 1
                self._room.set()

    # --- the writer thread -------------------------------------------------------------------

    def _deliver(self, obj: _Object) -> None:
        outcome = self._process(obj)
        self.counts.dropped_records += outcome.dropped
        dest = self.stream.destination
        if isinstance(dest, S3Target) and dest.parquet is not None:
            self._deliver_parquet(dest, dest.parquet, obj, outcome)
        elif isinstance(dest, S3Target):
            if outcome.ok:
                self._write_s3(dest, obj, outcome.ok, "s3")
                self.counts.delivered_records += len(outcome.ok)
            self._write_errors(dest, obj, outcome.failed, keys.PROCESSING_FAILED)
        else:
            self._write_opensearch(dest, obj, outcome)

    def _deliver_parquet(
        self, dest: S3Target, fmt: parquet.ParquetFormat, obj: _Object, outcome: Outcome
    ) -> None:
        # One Parquet object per buffer flush; records that do not convert go to the error
        # prefix as format-conversion-failed (see producer/local/parquet.py for the docs).
        converted = parquet.convert(outcome.ok, fmt)
        if converted.data is not None:
            self._write_s3(dest, obj, [converted.data], "s3", records_count=converted.rows)
            self.counts.delivered_records += converted.rows
        now = time.time()
        envelopes = [
            parquet.failure_envelope(record, message, obj.first_arrival, now, self.stream.name)
            for record, message in converted.failed
        ]
        self._write_errors(dest, obj, envelopes, parquet.FORMAT_CONVERSION_FAILED)
        self._write_errors(dest, obj, outcome.failed, keys.PROCESSING_FAILED)

    def _process(self, obj: _Object) -> Outcome:
        processing = self.stream.processing
        if processing is None or (self.transform is None and processing.delimiter is None):
            return Outcome(ok=obj.chunks)
        arrivals = obj.arrivals()
        if self.transform is not None:
            outcome = self.transform.run(obj.chunks, arrivals)
        else:
            outcome = Outcome(ok=obj.chunks, ok_arrivals=arrivals)
        if processing.delimiter is not None:
            delimiter = processing.delimiter
            outcome.ok = [record + delimiter for record in outcome.ok]
        return outcome

    def _key(self, target: S3Target, at: float, error_type: str | None = None) -> str:
        when = keys.utc(at)
        prefix = target.prefix
        if error_type is not None:
            # Without an ErrorOutputPrefix the error folder goes under the data prefix
            # (<Prefix><error-type>/YYYY/MM/DD/HH/); an expression Prefix always has one.
            # https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html
            prefix = target.error_prefix or target.prefix
        name = keys.object_name(
            self.stream.name, self.stream.version_id, when, target.gzip, target.file_extension
        )
        return f"{target.bucket}/{keys.expand_prefix(prefix, when, error_type)}{name}"

    def _write_s3(
        self,
        target: S3Target,
        obj: _Object,
        records: list[bytes],
        label: str,
        error_type: str | None = None,
        *,
        records_count: int | None = None,
    ) -> None:
        data = b"".join(records)
        if target.gzip:
            data = gzip.compress(data, compresslevel=6)
        self.writer.write(
            self._key(target, obj.first_arrival, error_type),
            data,
            stream=obj.stream,
            destination=label,
            records=len(records) if records_count is None else records_count,
            first_arrival=obj.first_arrival,
            last_arrival=obj.last_arrival,
        )
        self.counts.objects += 1

    def _write_errors(self, target: S3Target, obj: _Object, envelopes: list[bytes], error_type: str) -> None:
        if not envelopes:
            return
        self.counts.failed_records += len(envelopes)
        # Error records are JSON documents, one per line.
        self._write_s3(target, obj, [e + b"\n" for e in envelopes], f"s3-error:{error_type}", error_type)

    def _write_opensearch(self, dest: OpenSearchTarget, obj: _Object, outcome: Outcome) -> None:
        at = keys.utc(obj.first_arrival)
        index = keys.index_name(dest.index_name, dest.rotation, at)
        docs: list[bytes] = []
        rejected: list[bytes] = []
        arrivals = outcome.ok_arrivals or [obj.first_arrival] * len(outcome.ok)
        for record, arrival in zip(outcome.ok, arrivals, strict=True):
            doc = record.rstrip(b"\r\n")
            if _is_json_object(doc):
                docs.append(doc + b"\n")  # one document per line, whatever ending the producer used
            else:
                rejected.append(_opensearch_failure(doc, arrival, index))
        if docs:
            name = keys.object_name(self.stream.name, self.stream.version_id, at, False)
            self.writer.write(
                f"{OPENSEARCH_DIR}/{index}/{name}.json",
                b"".join(docs),
                stream=obj.stream,
                destination="opensearch",
                records=len(docs),
                first_arrival=obj.first_arrival,
                last_arrival=obj.last_arrival,
            )
            self.counts.objects += 1
            self.counts.delivered_records += len(docs)
        if dest.backup_all and outcome.ok:
            # AllDocuments: every document also goes to the S3 backup, as delivered.
            self._write_s3(dest.backup, obj, [r.rstrip(b"\r\n") + b"\n" for r in outcome.ok], "s3-backup")
        self._write_errors(dest.backup, obj, rejected, keys.OPENSEARCH_FAILED)
        self._write_errors(dest.backup, obj, outcome.failed, keys.PROCESSING_FAILED)

    async def close(self) -> None:
        """Deliver what is buffered and wait until every object is on disk."""
        self._flush()
        self._objects.put_nowait(None)
        timer, writer = self._tasks
        timer.cancel()
        await writer
        await asyncio.gather(timer, return_exceptions=True)


def _is_json_object(doc: bytes) -> bool:
    try:
        return isinstance(orjson.loads(doc), dict)
    except orjson.JSONDecodeError:
        return False


def _opensearch_failure(doc: bytes, arrival: float, index: str) -> bytes:
    # The envelope Firehose writes for a document the cluster rejected (fields as documented for
    # the Elasticsearch/OpenSearch destinations; errorCode/errorMessage values are best guesses).
    now_ms = int(time.time() * 1000)
    return orjson.dumps(
        {
            "attemptsMade": 1,
            "arrivalTimestamp": int(arrival * 1000),
            "errorCode": "400",
            "errorMessage": "mapper_parsing_exception: failed to parse, document is not a JSON object",
            "attemptEndingTimestamp": now_ms,
            "rawData": base64.b64encode(doc).decode(),
            "subsequenceNumber": 0,
            "esDocumentId": uuid.uuid4().hex,
            "esIndexName": index,
            "esTypeName": "",
        }
    )
