"""Firehose data-transformation Lambda: enriches each JSON event for the reference pipeline.

Contract (every record comes back, with recordId, result and base64 data):
https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-status-model.html

deploy/pipeline.yaml embeds this file as inline code (deploy/sync_inline_code.py writes it, a
test checks it): standard library only.
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

# The recipe's enrichment: amount_category is "high" above this amount (strictly), else "low";
# events without an amount get no amount_category. processing_status is the recipe's "SUCCESS".
HIGH_AMOUNT = 100.0
PROCESSING_STATUS = "SUCCESS"


# Without these an event cannot be typed, timed or traced downstream (the Glue table's columns);
# user_id may be missing or empty: that is a guest.
REQUIRED_FIELDS = ("event_id", "event_type", "timestamp")


class BadRecord(ValueError):
    """The record cannot be enriched; it goes back as ProcessingFailed with its original data."""


def _now() -> str:
    # UTC in the events' own format (ms, Z): compact and sortable as text.
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


def _category(amount: float) -> str:
    return "high" if amount > HIGH_AMOUNT else "low"


def _reject_constant(name: str) -> float:
    # NaN/Infinity parse but are not JSON: no reader downstream would take them back.
    raise BadRecord(f"{name} is not a JSON number")


def enrich(event: dict[str, Any], processed_at: str) -> dict[str, Any]:
    """The event plus the pipeline's fields (amount_category only when there is an amount); a
    numeric-string amount becomes a number so the Parquet column (double) can hold it."""
    missing = [name for name in REQUIRED_FIELDS if not isinstance(event.get(name), str) or not event[name]]
    if missing:
        raise BadRecord(f"missing required field(s): {', '.join(missing)}")
    amount = _amount(event)
    out = dict(event)
    if amount is not None:
        out["amount"] = amount
    user_id = event.get("user_id")
    out["processed_timestamp"] = processed_at
    out["processing_status"] = PROCESSING_STATUS
    # Guests send an empty (or no) user_id.
    out["user_category"] = "registered" if isinstance(user_id, str) and user_id.strip() else "guest"
    if amount is not None:
        out["amount_category"] = _category(amount)
    else:
        out.pop("amount_category", None)  # a producer's own value must not pass as the pipeline's
    return out


def _documents(raw: bytes) -> list[Any]:
    """A record's JSON documents: one, or several (--pack: one a line; or ``}{``-joined)."""
    text = raw.decode("utf-8")
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    docs: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if at == len(text):
            break
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    if not docs:
        raise BadRecord("empty record")
    return docs


def _enriched(event: Any, processed_at: str) -> bytes:
    if not isinstance(event, dict):
        raise BadRecord(f"JSON {type(event).__name__}, not an object")
    # allow_nan=False: a float that overflowed to inf while parsing ("1e999") fails here.
    text = json.dumps(enrich(event, processed_at), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    # A lone surrogate ("\ud800") parses into str but has no UTF-8 encoding.
    return text.encode("utf-8") + b"\n"


def transform_record(record: dict[str, Any], processed_at: str) -> dict[str, Any]:
    """One response record: each event as compact JSON and a newline (S3 objects are NDJSON).
    A packed record comes back as one record, an event a line (one record out per record in;
    format conversion makes a row of each document). A bad event fails its whole record, so no
    event is dropped unseen."""
    record_id = record["recordId"]
    data = record.get("data", "")
    try:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRecord(f"not base64: {exc}") from None
        out = b"".join(_enriched(event, processed_at) for event in _documents(raw))
        encoded = base64.b64encode(out).decode("ascii")
    except (BadRecord, ValueError, OverflowError, RecursionError, TypeError) as exc:
        # One bad record must never fail the batch. ValueError: bad JSON or UTF-8, NaN;
        # OverflowError: a 400-digit amount; RecursionError: deeply nested JSON.
        LOG.warning("record %s failed: %s: %s", record_id, type(exc).__name__, str(exc)[:200])
        # ProcessingFailed must still carry data: Firehose writes it to the error prefix.
        return {"recordId": record_id, "result": "ProcessingFailed", "data": data}
    return {"recordId": record_id, "result": "Ok", "data": encoded}


def response_size(response: dict[str, Any]) -> int:
    """Bytes of the response as the Python runtime serializes it (json.dumps defaults)."""
    return len(json.dumps(response).encode("utf-8"))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    processed_at = _now()
    response = {"records": [transform_record(r, processed_at) for r in event["records"]]}
    size = response_size(response)
    if size > MAX_RESPONSE_BYTES:
        # Lambda would reject it anyway: fail loudly with the fix. Firehose retries, then writes
        # the batch under the processing-failed prefix.
        raise RuntimeError(
            f"response of {size} bytes for {len(event['records'])} records exceeds the {MAX_RESPONSE_BYTES}"
            " byte Lambda limit: lower the stream's ProcessorBufferSizeMB"
        )
    failed = sum(1 for r in response["records"] if r["result"] != "Ok")
    LOG.info("records=%d failed=%d response_bytes=%d", len(response["records"]), failed, size)
    return response
