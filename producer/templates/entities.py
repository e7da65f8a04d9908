"""Entities (users, devices, stores) made once at start-up, and sessions of several events each.

An entity's fields are drawn once, so every event that picks it carries the same values: 10,000
users keep their country and plan across all their events, and a dashboard's per-user
aggregations add up. Sessions interleave: each event advances one of ``concurrent`` open
sessions; a session that has had its events ends and a new one starts with a freshly picked
entity.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from producer.events.base import EventIds
from producer.templates.fakerpools import TemplateError, refuse_unknown
from producer.templates.fields import Context, FieldType, State, compile_field, zipf_ranks

MAX_ENTITIES = 1_000_000
MAX_CONCURRENT = 100_000


@dataclass(frozen=True, slots=True)
class Entities:
    """Each entity kind's rows and how one is picked."""

    rows: dict[str, tuple[dict[str, Any], ...]]
    pickers: dict[str, Callable[[], dict[str, Any]]]
    types: dict[str, dict[str, FieldType]]


def _whole(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TemplateError(f"{where}: a whole number {low:,} to {high:,}, got {value!r}")
    return value


def build_entities(spec: Any, where: str, ctx: Context, scale: float = 1.0) -> Entities:
    """``scale`` < 1 makes fewer rows (validation only checks the shape, quickly)."""
    if spec is None:
        return Entities({}, {}, {})
    if not isinstance(spec, Mapping):
        raise TemplateError(f"{where}: a mapping of entity name: {{count: N, fields: {{...}}}}")
    rows: dict[str, tuple[dict[str, Any], ...]] = {}
    pickers: dict[str, Callable[[], dict[str, Any]]] = {}
    types: dict[str, dict[str, FieldType]] = {}
    for name, body in spec.items():
        at = f"{where}.{name}"
        if not isinstance(body, Mapping) or "fields" not in body or "count" not in body:
            raise TemplateError(
                f"{at}: needs count and fields, e.g. {{count: 10000, fields: {{user_id: {{uuid: true}}}}}}"
            )
        refuse_unknown(body, ("count", "fields", "zipf"), at, "an entity")
        count = _whole(body["count"], f"{at}.count", 1, MAX_ENTITIES)
        fields = body["fields"]
        if not isinstance(fields, Mapping) or not fields:
            raise TemplateError(f"{at}.fields: a mapping of field name: field")
        entity_ctx = Context(ctx.rng, ctx.pools, in_entity=True, ids=ctx.ids)
        compiled = [(str(k), compile_field(v, f"{at}.fields.{k}", entity_ctx)) for k, v in fields.items()]
        ctx.ids = entity_ctx.ids
        state = State()
        made = max(1, int(count * scale))
        table = tuple({k: c.draw(state) for k, c in compiled} for _ in range(made))
        rows[str(name)] = table
        types[str(name)] = {k: c.type for k, c in compiled}
        pickers[str(name)] = _picker(table, body.get("zipf"), f"{at}.zipf", ctx.rng)
    return Entities(rows, pickers, types)


def _picker(
    table: tuple[dict[str, Any], ...], zipf: Any, where: str, rng: random.Random
) -> Callable[[], dict[str, Any]]:
    r = rng.random
    n = len(table)
    if zipf is None:
        return lambda: table[int(r() * n)]
    if isinstance(zipf, bool) or not isinstance(zipf, int | float) or not zipf > 0:
        raise TemplateError(
            f"{where}: the popularity exponent, a number > 0 (1.1: a few entities make most events)"
        )
    cum, total = zipf_ranks(float(zipf), n)
    cut = bisect.bisect_right
    return lambda: table[cut(cum, r() * total)]


class Session:
    __slots__ = ("index", "left", "row", "session_id")

    def __init__(self, session_id: str, row: dict[str, Any], length: int) -> None:
        self.session_id = session_id
        self.row = row
        self.index = -1  # advanced before each event: the first event is index 0
        self.left = length


class Sessions:
    """``concurrent`` open sessions of ``entity``; each event advances one picked at random."""

    def __init__(self, spec: Any, where: str, entities: Entities, rng: random.Random, ids: EventIds) -> None:
        if not isinstance(spec, Mapping) or "entity" not in spec:
            raise TemplateError(
                f"{where}: needs entity, e.g. {{entity: user, events: {{min: 1, max: 12}}, concurrent: 200}}"
            )
        refuse_unknown(spec, ("entity", "events", "concurrent"), where, "sessions")
        self.entity = str(spec["entity"])
        if self.entity not in entities.pickers:
            known = ", ".join(entities.pickers) or "none declared (add `entities:`)"
            raise TemplateError(f"{where}.entity: unknown entity {self.entity!r}; entities: {known}")
        events = spec.get("events", {"min": 1, "max": 10})
        if isinstance(events, int) and not isinstance(events, bool):
            events = {"min": events, "max": events}
        if not isinstance(events, Mapping) or set(events) - {"min", "max"}:
            raise TemplateError(f"{where}.events: events per session, a whole number or {{min: 1, max: 12}}")
        self._low = _whole(events.get("min", 1), f"{where}.events.min", 1, 1_000_000)
        high = _whole(events.get("max", self._low), f"{where}.events.max", 1, 1_000_000)
        if high < self._low:
            raise TemplateError(f"{where}.events: max is below min")
        self._spread = high - self._low + 1
        concurrent = _whole(spec.get("concurrent", 100), f"{where}.concurrent", 1, MAX_CONCURRENT)
        self._pick = entities.pickers[self.entity]
        self._r = rng.random
        self._ids = ids
        self._open = [self._new() for _ in range(concurrent)]

    def _new(self) -> Session:
        return Session(self._ids.next(), self._pick(), self._low + int(self._r() * self._spread))

    def next(self) -> Session:
        open_ = self._open
        slot = int(self._r() * len(open_))
        session = open_[slot]
        if session.left <= 0:
            session = open_[slot] = self._new()
        session.left -= 1
        session.index += 1
        return session
