"""A stream's delivery pipeline (processor buffer, Lambda, destination and backup buffers; see
producer/local/buffers.py) and delivery into a folder laid out like S3.

Objects are written when a destination buffer is flushed by its hints, and on shutdown.
Memory stays bounded by the buffer sizes: at most ``max_pending`` full buffers wait for the
function or the writer, and ingest waits (backpressure) rather than queueing more.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from producer.local import keys, parquet
from producer.local.buffers import Buffer, BufferStage
from producer.local.metrics import StreamMetrics
from producer.local.streams import LocalStream, OpenSearchTarget, S3Target
from producer.local.transform import Outcome, TransformRunner

STATE_DIR = "_firehose"
OPENSEARCH_DIR = "opensearch"


@dataclass(frozen=True, slots=True)
class _Object:
    """A flushed destination or backup buffer on its way to the writer."""

    # The stream's configuration when the buffer was flushed: where and how the object is written.
    config: LocalStream
    # buffer.processed: the Lambda processor ran (the records are its output); else the writer
    # runs what processing remains (AppendDelimiterToRecord).
    buffer: Buffer
    backup: bool = False

    @property
    def first_arrival(self) -> float:
        return self.buffer.first_arrival

    @property
    def last_arrival(self) -> float:
        return self.buffer.last_arrival


@dataclass(frozen=True, slots=True)
class _LambdaBatch:
    """A flushed processor buffer on its way to the function."""

    config: LocalStream
    transform: TransformRunner
    buffer: Buffer


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
    """One stream's pipeline: the Lambda processor's buffer (when the stream has one), the
    function, then the destination's buffer (and the AllDocuments backup's), each by its own
    hints; full buffers go to a single writer task.

    Latency is about processor wait + Lambda time + destination wait, and the destination size
    counts transformed bytes (https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html).
    """

    def __init__(
        self,
        stream: LocalStream,
        writer: ObjectWriter,
        transform: TransformRunner | None = None,
        max_pending: int = 2,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self.stream = stream
        self.writer = writer
        self.transform = transform
        self.max_pending = max_pending
        self.counts = DeliveryCounts()
        self.metrics = metrics or StreamMetrics()
        name = stream.name
        self._processor = BufferStage(
            f"{name}:processor", lambda: self.stream.processor_hints(), self._to_lambda
        )
        self._destination = BufferStage(
            f"{name}:destination", lambda: self.stream.destination_hints(), self._to_writer
        )
        self._backup = BufferStage(
            f"{name}:backup", lambda: self.stream.backup_hints(), self._to_backup_writer
        )
        self._batches: asyncio.Queue[_LambdaBatch | None] = asyncio.Queue()
        self._objects: asyncio.Queue[_Object | None] = asyncio.Queue()
        self._pending = 0
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        for stage in (self._processor, self._destination, self._backup):
            stage.start()
        self._tasks = [
            asyncio.create_task(self._lambda_loop(), name=f"lambda:{self.stream.name}"),
            asyncio.create_task(self._write_loop(), name=f"writer:{self.stream.name}"),
        ]

    def apply(self, stream: LocalStream, transform: TransformRunner | None = None) -> None:
        """An UpdateDestination takes effect: buffers opened from now on use the new hints and
        objects flushed from now on the new configuration; open buffers keep their hints."""
        if self._closed:
            return
        if transform is None and self.transform is not None:
            # The Lambda processor was removed: what waits for it still goes through it.
            self._processor.flush()
        self.stream = stream
        self.transform = transform
        for stage in (self._processor, self._destination, self._backup):
            stage.rehint()

    async def close(self) -> None:
        """Deliver what is buffered, through every stage, and wait until every object is on disk."""
        self._closed = True
        lambda_loop, write_loop = self._tasks
        self._processor.flush()
        self._batches.put_nowait(None)
        await lambda_loop
        self._destination.flush()
        self._backup.flush()
        self._objects.put_nowait(None)
        await write_loop
        for stage in (self._processor, self._destination, self._backup):
            await stage.stop()

    # --- ingest -----------------------------------------------------------------------------

    @property
    def backlogged(self) -> bool:
        return self._pending >= self.max_pending

    async def wait_for_room(self) -> None:
        """Ingest awaits this when full buffers are waiting for the function or the writer
        (backpressure)."""
        while self._pending >= self.max_pending:
            self._room.clear()
            await self._room.wait()

    def add(self, records: list[bytes], size: int, arrival: float) -> None:
        if self.transform is not None:
            self._processor.add(records, size, arrival)
            return
        self._destination.add(records, size, arrival)
        if self.stream.backs_up_all():
            self._backup.add(records, size, arrival)

    def waiting_since(self) -> dict[str, float | None]:
        """Per destination label of this stream: the arrival of its oldest record not yet
        handed to the writer (DataFreshness), or None when nothing waits."""
        processor = self._processor.oldest_arrival()

        def oldest(stage: BufferStage) -> float | None:
            found = [at for at in (processor, stage.oldest_arrival()) if at is not None]
            return min(found, default=None)

        if not isinstance(self.stream.destination, OpenSearchTarget):
            return {"s3": oldest(self._destination)}
        out = {"opensearch": oldest(self._destination)}
        if self.stream.backs_up_all():
            out["s3-backup"] = oldest(self._backup)
        return out

    # --- between the stages -----------------------------------------------------------------

    def _queued(self) -> None:
        self._pending += 1

    def _done(self) -> None:
        self._pending -= 1
        self._room.set()

    def _to_lambda(self, buf: Buffer) -> None:
        assert self.transform is not None
        self._queued()
        self._batches.put_nowait(_LambdaBatch(self.stream, self.transform, buf))

    def _to_writer(self, buf: Buffer) -> None:
        self._queued()
        self._objects.put_nowait(_Object(self.stream, buf))

    def _to_backup_writer(self, buf: Buffer) -> None:
        self._queued()
        self._objects.put_nowait(_Object(self.stream, buf, backup=True))

    async def _lambda_loop(self) -> None:
        while (batch := await self._batches.get()) is not None:
            try:
                outcome = await asyncio.to_thread(self._invoke, batch)
                self.counts.dropped_records += outcome.dropped
                first = batch.buffer.first_arrival
                self._destination.add_processed(outcome.ok, outcome.ok_arrivals, outcome.failed, first)
                if self.stream.backs_up_all():
                    self._backup.add_processed(outcome.ok, outcome.ok_arrivals, [], first)
            finally:
                self._done()

    def _invoke(self, batch: _LambdaBatch) -> Outcome:
        """The function over one processor buffer (in a thread), then AppendDelimiterToRecord."""
        outcome = batch.transform.run(batch.buffer.chunks, batch.buffer.arrivals())
        processing = batch.config.processing
        if processing is not None and processing.delimiter is not None:
            delimiter = processing.delimiter
            outcome.ok = [record + delimiter for record in outcome.ok]
        return outcome

    async def _write_loop(self) -> None:
        while (obj := await self._objects.get()) is not None:
            try:
                await asyncio.to_thread(self._deliver, obj)
            finally:
                self._done()

    # --- the writer thread -------------------------------------------------------------------

    def _deliver(self, obj: _Object) -> None:
        outcome = self._process(obj)
        dest = obj.config.destination
        if obj.backup:
            assert isinstance(dest, OpenSearchTarget)
            # AllDocuments: every document also goes to the S3 backup, one per line.
            records = [r.rstrip(b"\r\n") + b"\n" for r in outcome.ok]
            if records:
                self._write_s3(dest.backup, obj, records, "s3-backup")
            return
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
            parquet.failure_envelope(record, message, obj.first_arrival, now, obj.config.name)
            for record, message in converted.failed
        ]
        self._write_errors(dest, obj, envelopes, parquet.FORMAT_CONVERSION_FAILED)
        self._write_errors(dest, obj, outcome.failed, keys.PROCESSING_FAILED)

    def _process(self, obj: _Object) -> Outcome:
        buf = obj.buffer
        processing = obj.config.processing
        if buf.processed or processing is None or processing.delimiter is None:
            return Outcome(ok=buf.chunks, ok_arrivals=buf.arrivals(), failed=buf.failed)
        delimiter = processing.delimiter
        return Outcome(ok=[record + delimiter for record in buf.chunks], ok_arrivals=buf.arrivals())

    def _key(self, config: LocalStream, target: S3Target, at: float, error_type: str | None = None) -> str:
        when = keys.utc(at)
        prefix = target.prefix
        if error_type is not None:
            # Without an ErrorOutputPrefix the error folder goes under the data prefix
            # (<Prefix><error-type>/YYYY/MM/DD/HH/); an expression Prefix always has one.
            # https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html
            prefix = target.error_prefix or target.prefix
        name = keys.object_name(config.name, config.version_id, when, target.gzip, target.file_extension)
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
        count = len(records) if records_count is None else records_count
        self.writer.write(
            self._key(obj.config, target, obj.first_arrival, error_type),
            data,
            stream=obj.config.name,
            destination=label,
            records=count,
            first_arrival=obj.first_arrival,
            last_arrival=obj.last_arrival,
        )
        self.counts.objects += 1
        self.metrics.delivered(label, count, len(data), obj.first_arrival, time.time())

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
            name = keys.object_name(obj.config.name, obj.config.version_id, at, False)
            body = b"".join(docs)
            self.writer.write(
                f"{OPENSEARCH_DIR}/{index}/{name}.json",
                body,
                stream=obj.config.name,
                destination="opensearch",
                records=len(docs),
                first_arrival=obj.first_arrival,
                last_arrival=obj.last_arrival,
            )
            self.counts.objects += 1
            self.counts.delivered_records += len(docs)
            self.metrics.delivered("opensearch", len(docs), len(body), obj.first_arrival, time.time())
        self._write_errors(dest.backup, obj, rejected, keys.OPENSEARCH_FAILED)
        self._write_errors(dest.backup, obj, outcome.failed, keys.PROCESSING_FAILED)


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
