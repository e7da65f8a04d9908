"""Event to record bytes. Knows the record size limit, nothing about batches."""

from __future__ import annotations

import orjson

from producer import limits
from producer.events import Event


def encode_json_line(event: Event) -> bytes:
    """One JSON object and a newline: Firehose concatenates records as they are, so the
    newline is what makes delivered S3 objects newline-delimited JSON."""
    return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)


def too_large(data: bytes) -> bool:
    return len(data) > limits.MAX_RECORD_BYTES
