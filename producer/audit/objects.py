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

from producer.audit import parquet

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
        yield str(envelope.get("errorCode", "")), raw
