"""The trace fields every event carries, and pulling them out of a delivered record.

``run_id`` is the run's id (the summary's ``run_id``); ``seq`` is the event's 0-based number in
the run, the same in every stream the event goes to. A record that is not valid JSON (a
malformed record cut short on purpose) may still hold both near its start, so a regular
expression tries the raw bytes before the record is counted as untraced.

A text record (a KDG template of CSV or a log line, profiles/README.md) carries them where its
``{{loadgen.run_id}}`` and ``{{loadgen.seq}}`` placeholders put them: the run id, then a short
separator without digits, then the seq. Only an audit that knows the run id it looks for can
find them there (``run_id`` argument).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import orjson

from producer.events.base import MAX_TEXT_GAP, parse_time

RUN_ID_FIELD = "run_id"
SEQ_FIELD = "seq"
# When the event was made. Late mobile events carry the phone's (earlier) time in ``timestamp``
# and the moment they were sent in ``received_at``; the pipeline's latency starts at sending.
EVENT_TIME_FIELDS = ("received_at", "timestamp")

_RUN_ID_RE = re.compile(rb'"run_id"\s*:\s*"([^"\\]{1,128})"')
_SEQ_RE = re.compile(rb'"seq"\s*:\s*(\d{1,18})')


@dataclass(frozen=True, slots=True)
class Trace:
    run_id: str
    seq: int
    event_time: float | None  # Unix seconds; None when the record has no readable time


def from_event(event: dict[str, Any]) -> Trace | None:
    run_id = event.get(RUN_ID_FIELD)
    seq = event.get(SEQ_FIELD)
    if not isinstance(run_id, str) or not isinstance(seq, int) or isinstance(seq, bool):
        return None
    when = None
    for name in EVENT_TIME_FIELDS:
        when = parse_time(event.get(name))
        if when is not None:
            break
    return Trace(run_id, seq, when)


def from_record(record: bytes, run_id: str | None = None) -> Trace | None:
    """The trace of one record (a JSON object, the readable start of a broken one, or a text
    record of run ``run_id``)."""
    try:
        event = orjson.loads(record)
    except orjson.JSONDecodeError:
        found = from_raw(record)
        if found is None and run_id is not None:
            return from_text(record, run_id)
        return found
    if isinstance(event, dict):
        return from_event(event)
    return None if run_id is None else from_text(record, run_id)


@functools.lru_cache(maxsize=8)
def _text_pattern(run_id: str) -> re.Pattern[bytes]:
    return re.compile(re.escape(run_id.encode()) + rb"[^0-9\n]{1,%d}?(\d{1,18})(?!\d)" % MAX_TEXT_GAP)


def from_text(record: bytes, run_id: str) -> Trace | None:
    """The trace of a text record: ``run_id``, a separator without digits, the seq."""
    found = _text_pattern(run_id).search(record)
    return None if found is None else Trace(run_id, int(found.group(1)), None)


def from_raw(record: bytes) -> Trace | None:
    run = _RUN_ID_RE.search(record)
    seq = _SEQ_RE.search(record)
    if run is None or seq is None:
        return None
    return Trace(run.group(1).decode("utf-8", "replace"), int(seq.group(1)), None)
