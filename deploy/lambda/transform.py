"""Firehose data-transformation Lambda: enriches each JSON event for the reference pipeline.

Contract (every record comes back, with recordId, result and base64 data):
https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-status-model.html

deploy/pipeline.yaml embeds this file verbatim as the function's inline code (handler
``index.lambda_handler``); tests/unit/test_pipeline_template.py fails if the two differ and
``python deploy/sync_inline_code.py`` rewrites the template from this file. Standard library only,
because inline code cannot bring dependencies.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

# Synchronous invocation payload limit, request and response each ("6 MB"); the runtime counts
# the serialized JSON. Binary MiB is the conservative reading.
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_RESPONSE_BYTES = 6 * 1024 * 1024

# amount_category thresholds (inclusive lower bounds, in the event's currency units).
HIGH_AMOUNT = 100.0
MEDIUM_AMOUNT = 50.0


# Without these an event cannot be typed, timed or traced downstream (the Glue table's columns);
# user_id may be missing or empty: that is a guest.
REQUIRED_FIELDS = ("event_id", "event_type", "timestamp")


class BadRecord(ValueError):
    """The record cannot be enriched; it goes back as ProcessingFailed with its original data."""


def _now() -> str:
    # Timezone-aware UTC in the events' own format (ms precision, Z): compact, and sortable as text.
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _amount(event: dict[str, Any]) -> float | None:
    """The event's amount as a number; None when it has none. Numeric strings ("250") are
    accepted because some producers send them; anything else is a bad record, never a guess."""
    if "amount" not in event or event["amount"] is None:
        return None
    raw = event["amount"]
    if isinstance(raw, bool):  # bool is an int subclass: True must not become 1.0
        raise BadRecord(f"amount is a boolean: {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise BadRecord(f"amount is not a number: {raw[:40]!r}") from None
    else:
        raise BadRecord(f"amount has type {type(raw).__name__}")
    if not math.isfinite(value) or value < 0:
        raise BadRecord(f"amount out of range: {raw!r}")
    return value


def _category(amount: float | None) -> str:
    if amount is None:
        return "none"
    if amount >= HIGH_AMOUNT:
        return "high"
    return "medium" if amount >= MEDIUM_AMOUNT else "low"


def enrich(event: dict[str, Any], processed_at: str) -> dict[str, Any]:
    """The event plus the pipeline's four fields; a numeric-string amount becomes a number so the
    Parquet column (double) can hold it."""
    missing = [name for name in REQUIRED_FIELDS if not isinstance(event.get(name), str) or not event[name]]
    if missing:
        raise BadRecord(f"missing required field(s): {', '.join(missing)}")
    amount = _amount(event)
    out = dict(event)
    if amount is not None:
        out["amount"] = amount
    user_id = event.get("user_id")
    out["processed_timestamp"] = processed_at
    out["processing_status"] = "processed"
    # Guests send an empty (or no) user_id.
    out["user_category"] = "registered" if isinstance(user_id, str) and user_id.strip() else "guest"
    out["amount_category"] = _category(amount)
    return out


def transform_record(record: dict[str, Any], processed_at: str) -> dict[str, Any]:
    """One response record. Output is compact JSON ending in a newline, so S3 objects are
    newline-delimited JSON rather than ``}{``-joined."""
    record_id = record["recordId"]
    data = record.get("data", "")
    try:
        try:
            event = json.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            raise BadRecord(f"not base64 JSON: {exc}") from None
        if not isinstance(event, dict):
            raise BadRecord(f"JSON {type(event).__name__}, not an object")
        line = json.dumps(enrich(event, processed_at), separators=(",", ":"), ensure_ascii=False)
    except BadRecord as exc:
        LOG.warning("record %s failed: %s", record_id, exc)
        # ProcessingFailed must still carry data: Firehose writes it to the error prefix.
        return {"recordId": record_id, "result": "ProcessingFailed", "data": data}
    encoded = base64.b64encode(line.encode("utf-8") + b"\n").decode("ascii")
    return {"recordId": record_id, "result": "Ok", "data": encoded}


def response_size(response: dict[str, Any]) -> int:
    """Bytes of the response as the Python runtime serializes it (json.dumps defaults)."""
    return len(json.dumps(response).encode("utf-8"))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processed_at = _now()
    response = {"records": [transform_record(r, processed_at) for r in event["records"]]}
    size = response_size(response)
    if size > MAX_RESPONSE_BYTES:
        # Lambda would reject the payload anyway; fail loudly with the fix. Firehose retries, then
        # writes the batch under the processing-failed error prefix (and the error queue sees it).
        raise RuntimeError(
            f"response of {size} bytes for {len(event['records'])} records exceeds the {MAX_RESPONSE_BYTES}"
            " byte Lambda limit: lower the stream's ProcessorBufferSizeMB"
        )
    failed = sum(1 for r in response["records"] if r["result"] != "Ok")
    LOG.info("records=%d failed=%d response_bytes=%d", len(response["records"]), failed, size)
    return response
