"""Deliberately broken records, to exercise a pipeline's ProcessingFailed and error-output paths.

Three kinds, each a fault real producers ship:
- ``not_json``: a record cut short mid-object (a crashed writer, a bad proxy);
- ``string_amount``: ``"amount": "250.00 USD"``, a display string where a number belongs; not a
  bare ``"250"``, which a lenient transform (ours, deploy/lambda) rightly repairs;
- ``missing_fields``: no ``user_id``, ``event_type`` or ``timestamp`` (an old client); the
  transform needs ``event_type`` and ``timestamp`` and returns it as ProcessingFailed.
``event_id`` is always kept, so a failed record can still be traced.
"""

from __future__ import annotations

import random
from typing import Literal

from producer.events.base import Event

MalformedKind = Literal["not_json", "string_amount", "missing_fields"]
MALFORMED_KINDS: tuple[MalformedKind, ...] = ("not_json", "string_amount", "missing_fields")
DROPPED_FIELDS = ("user_id", "event_type", "timestamp")


def string_amount(event: Event, rng: random.Random) -> Event:
    """A copy with ``amount`` as a currency string; events without one get a plausible one."""
    broken = dict(event)
    amount = broken.get("amount")
    value = float(amount) if isinstance(amount, int | float) else float(rng.randrange(1, 500))
    broken["amount"] = f"{value:.2f} USD"
    return broken


def missing_fields(event: Event) -> Event:
    """A copy without the fields a consumer needs to route and partition the event."""
    return {k: v for k, v in event.items() if k not in DROPPED_FIELDS}


def cut_short(record: bytes, rng: random.Random) -> bytes:
    """The record truncated somewhere inside, newline kept so line framing still works.

    The cut falls after the trace fields (``run_id``, ``seq``) when the record has them, so an
    audit can still tell whose broken record it is."""
    body = record.rstrip(b"\n")
    seq_at = body.find(b'"seq":')
    keep = body.find(b",", seq_at) + 1 if seq_at >= 0 else 1
    cut = rng.randrange(max(1, keep), max(keep + 1, len(body) - 1))
    return body[:cut] + b"\n"
