"""Delivered object bytes to records: NDJSON, gzip NDJSON, Parquet; and error-output envelopes.

Firehose concatenates records as they are, so an object is newline-delimited only when the
producer (or AppendDelimiterToRecord) added newlines; ``}{``-joined objects are split too.
Error output holds one JSON envelope per line with the original record in ``rawData``:
https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html
"""

from __future__ import annotations

import base64
import binascii
import gzip
from collections.abc import Iterator

import orjson

from producer.audit import parquet, trace
from producer.audit.findings import StreamFindings

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


def records(data: bytes) -> Iterator[bytes]:
    """The records in one delivered object, whatever its encoding."""
    if data.startswith(GZIP_MAGIC):
        data = gzip.decompress(data)
    if data.startswith(PARQUET_MAGIC):
        yield from parquet.rows_as_json(data)
        return
    for line in data.splitlines():
        if not line.strip():
            continue
        if b"}{" in line:
            # Records without a delimiter: split at the joins, keeping the braces.
            parts = line.replace(b"}{", b"}\n{").split(b"\n")
            yield from parts
        else:
            yield line


def error_envelopes(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(errorCode, original record) for each envelope in an error-output object."""
    for line in records(data):
        try:
            envelope = orjson.loads(line)
            raw = base64.b64decode(envelope.get("rawData", ""), validate=True)
        except (orjson.JSONDecodeError, AttributeError, binascii.Error, TypeError, ValueError):
            yield "unreadable-envelope", line
            continue
        # Lambda failures say errorCode, format-conversion failures lastErrorCode:
        # https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
        code = str(envelope.get("errorCode") or envelope.get("lastErrorCode") or "")
        # A packed record (--pack) holds several events, one a line: each is counted.
        for event in events_of(raw):
            yield code, event


def events_of(record: bytes) -> list[bytes]:
    """The events of one record as sent: one, or one a line for a packed record (--pack)."""
    return [line for line in record.split(b"\n") if line.strip()] or [record]


def tally(
    findings: StreamFindings, data: bytes, run_id: str, delivered_at: float | None
) -> tuple[int, float | None]:
    """Count one delivered object's records into ``findings``, whichever source it came from:
    the run's records, and the event time of the oldest of them (None if there is none)."""
    mine = 0
    oldest: float | None = None
    for record in records(data):
        found = trace.from_record(record, run_id)
        if found is None:
            findings.untraced_records += 1
        elif found.run_id != run_id:
            findings.other_runs += 1
        else:
            mine += 1
            findings.delivered(found.seq, found.event_time, delivered_at)
            if found.event_time is not None and (oldest is None or found.event_time < oldest):
                oldest = found.event_time
    return mine, oldest
