"""Event to record bytes: JSON lines or CSV, plus the profile's share of malformed records.

Knows the record size limit, nothing about batches or streams.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import orjson

from producer.events.base import Event
from producer.events.malformed import MALFORMED_KINDS, MalformedKind, cut_short, missing_fields, string_amount
from producer.firehose import limits

RecordFormat = Literal["json", "csv"]
RECORD_FORMATS: tuple[RecordFormat, ...] = ("json", "csv")
# CSV records have no header (Firehose concatenates records, so a header per record would
# repeat in every object); this is the documented column order. Nested fields are left out.
CSV_COLUMNS = (
    "event_id",
    "user_id",
    "event_type",
    "amount",
    "product_id",
    "timestamp",
    "source",
    "session_id",
    "device_id",
    "run_id",
    "seq",
)
Encoder = Callable[[Event], bytes]


def encode_json_line(event: Event) -> bytes:
    """One JSON object and a newline: Firehose concatenates records as they are, so the
    newline is what makes delivered S3 objects newline-delimited JSON.

    The result is copied once: orjson builds each output in a ~4 KB buffer and shrinks it, and
    a held result then pins ~4.2 KB of heap for a ~0.5 KB event (measured: 50,000 events held
    by a stalled stream, 245 MiB RSS as returned, 58 MiB copied). The copy costs ~0.1 us."""
    return bytes(memoryview(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)))


# ``encode_json_line`` for a caller that keeps only a copy (the base64 held form of
# producer/firehose/wire.py): orjson's over-allocated result is freed at once, so no exact copy. A C
# partial, not a def: at 100,000+ events/s a Python call level is ~1% of the CPU.
encode_json_line_transient: Encoder = partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)


def _csv_field(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def encode_csv_line(event: Event) -> bytes:
    """The CSV_COLUMNS of ``event`` as one RFC 4180 line (quoted only where needed)."""
    get = event.get
    return (",".join([_csv_field(get(c)) for c in CSV_COLUMNS]) + "\n").encode()


def encoder_for(record_format: RecordFormat, transient: bool = False) -> Encoder:
    """``transient``: the caller keeps only a copy of each record (see
    encode_json_line_transient)."""
    if record_format == "csv":
        return encode_csv_line
    return encode_json_line_transient if transient else encode_json_line


def too_large(data: bytes) -> bool:
    return len(data) > limits.MAX_RECORD_BYTES


@dataclass(frozen=True, slots=True)
class MalformedSpec:
    """``share`` of records (0..1) come out broken, in one of ``kinds`` chosen evenly."""

    share: float = 0.0
    kinds: tuple[MalformedKind, ...] = MALFORMED_KINDS


def _trace_first(event: Event) -> Event:
    """The event with its trace fields (if any) first: a record cut short keeps its start."""
    if "seq" not in event:
        return event
    head = {"run_id": event.get("run_id"), "seq": event["seq"]}
    return head | {k: v for k, v in event.items() if k not in head}


class RecordEncoder:
    """Turns events into records, breaking ``spec.share`` of them on purpose."""

    def __init__(
        self, record_format: RecordFormat, spec: MalformedSpec, rng: random.Random, transient: bool = False
    ) -> None:
        self._encode = encoder_for(record_format, transient)
        self._share = spec.share
        self._kinds: Sequence[MalformedKind] = spec.kinds or MALFORMED_KINDS
        self._rng = rng
        self.malformed = 0

    @property
    def per_event(self) -> Encoder:
        """The function to call per event: ``encode``, or the plain encoder itself when no
        record is broken on purpose (a call level fewer on the generator's hot path)."""
        return self._encode if self._share <= 0.0 else self.encode

    def encode(self, event: Event) -> bytes:
        if self._share <= 0.0 or self._rng.random() >= self._share:
            return self._encode(event)
        self.malformed += 1
        kind = self._kinds[self._rng.randrange(len(self._kinds))]
        if kind == "string_amount":
            return self._encode(string_amount(event, self._rng))
        if kind == "missing_fields":
            return self._encode(missing_fields(event))
        return cut_short(self._encode(_trace_first(event)), self._rng)
