"""A `kind: template` generator: the profile's fields compiled once into draws from pools and
distributions, entities and sessions made at start-up, fields in condition order."""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from producer.events.base import Event, EventIds
from producer.firehose import limits
from producer.templates.entities import Entities, Sessions, build_entities
from producer.templates.fakerpools import (
    DEFAULT_LOCALE,
    DEFAULT_POOL_SIZE,
    MAX_POOL_SIZE,
    FakerPools,
    TemplateError,
    refuse_unknown,
)
from producer.templates.fields import MISSING, Compiled, Context, FieldType, State, compile_field

# Set on every event by the run (source: the generator's name, which routes and counts it;
# run_id/seq: the trace fields the audit reads), so a template may not define them.
RESERVED_FIELDS = ("source", "run_id", "seq")
TEMPLATE_KEYS = ("kind", "locale", "pool", "entities", "sessions", "fields")
# Events drawn when a template is checked: its smallest must fit in a record.
CHECK_EVENTS = 50
# Validation builds entities at this share of their count (at least one row each).
CHECK_SCALE = 0.01


class TemplateGenerator:
    """Events of one `kind: template` generator."""

    def __init__(
        self, source: str, next_event: Callable[[float], Event], types: dict[str, tuple[FieldType, bool]]
    ) -> None:
        self.source = source
        self.types = types  # field name: (type, always present), in the event's order
        self.next_event = next_event


def generate_code(
    source: str,
    order: list[str],
    compiled: Mapping[str, Compiled],
    ctx: Context,
    entities: Entities,
    sessions: Sessions | None,
) -> Callable[[float], Event]:
    """``next_event`` as one generated function: each field a statement, its draw inlined as
    an expression where it has one, conditions as ``if``. Measured on a 12-field template, a
    closure per field called in a loop took twice the time (the calls, not the draws)."""
    env: dict[str, Any] = dict(ctx.env)
    env.update(
        r=ctx.rng.random,
        gauss=ctx.rng.gauss,
        exp=math.exp,
        cut=bisect.bisect_right,
        INF=math.inf,
        MISSING=MISSING,
        SOURCE=source,
        st=State(),
    )
    lines = ["def next_event(now):"]
    fallback = any(c.expr is None or "(st)" in c.expr for c in compiled.values())
    slots = list(entities.types)
    if sessions is not None:
        env["sessions_next"] = sessions.next
        lines.append("    session = sessions_next()")
        lines.append(f"    row{slots.index(sessions.entity)} = session.row")
    for slot, name in enumerate(slots):
        if name in ctx.used_entities and (sessions is None or name != sessions.entity):
            env[f"pick{slot}"] = entities.pickers[name]
            lines.append(f"    row{slot} = pick{slot}()")
    referenced = set().union(*(c.deps for c in compiled.values()))  # fields conditions read
    local: dict[str, str] = {}  # field: the local holding its value (MISSING when absent)

    def inline(c: Compiled) -> bool:
        return c.expr is not None and "(st)" not in c.expr

    def condition(i: int, c: Compiled) -> str:
        tests = []
        for j, (key, values) in enumerate(c.checks):
            env[f"w{i}_{j}"] = values[0] if len(values) == 1 else values
            op = "==" if len(values) == 1 else "in"
            tests.append(f"{local.get(key) or f'e.get({key!r}, MISSING)'} {op} w{i}_{j}")
        return " and ".join(tests)

    # The fields up to the first that needs the State make one dict literal (a store per field
    # costs more); a conditional one is MISSING there when its condition fails, and deleted.
    head = 0
    while head < len(order) and inline(compiled[order[head]]):
        head += 1
    items, absent = [], []
    for i, name in enumerate(order[:head]):
        c = compiled[name]
        expr = f"({c.expr} if {condition(i, c)} else MISSING)" if c.checks else str(c.expr)
        if name in referenced:
            lines.append(f"    v{i} = {expr}")
            local[name] = expr = f"v{i}"
        items.append(f"{name!r}: {expr}")
        if c.checks:
            absent.append(name)
    if head == len(order):
        items.append("'source': SOURCE")
    lines.append("    e = {" + ", ".join(items) + "}")
    lines.extend(f"    if e[{name!r}] is MISSING: del e[{name!r}]" for name in absent)
    if fallback:
        lines.append("    st.event = e")
        lines.append("    st.now = now")
        if sessions is not None:
            lines.append("    st.session = session")
        for slot, name in enumerate(slots):
            if name in ctx.used_entities:
                lines.append(f"    st.rows[{name!r}] = row{slot}")
    for i, name in enumerate(order[head:], start=head):
        c = compiled[name]
        env[f"d{i}"] = c.draw
        if c.expr is None:
            # The draw applies the field's own condition.
            lines.append(f"    v = d{i}(st)")
            lines.append(f"    if v is not MISSING: e[{name!r}] = v")
            continue
        if c.checks:
            lines.append(f"    if {condition(i, c)}:")
            lines.append(f"        e[{name!r}] = {c.expr}")
        else:
            lines.append(f"    e[{name!r}] = {c.expr}")
    if head < len(order):
        lines.append("    e['source'] = SOURCE")
    lines.append("    return e")
    code = "\n".join(lines)
    exec(compile(code, f"<template {source}>", "exec"), env)
    function: Callable[[float], Event] = env["next_event"]
    return function


def _pool_size(spec: Mapping[str, Any], where: str) -> int:
    size = spec.get("pool", DEFAULT_POOL_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_POOL_SIZE:
        raise TemplateError(f"{where}.pool: values per Faker pool, a whole number 1 to {MAX_POOL_SIZE:,}")
    return size


def faker_pools(spec: Mapping[str, Any], where: str, rng: random.Random, check: bool) -> FakerPools:
    locale = spec.get("locale", DEFAULT_LOCALE)
    if not isinstance(locale, str):
        raise TemplateError(f"{where}.locale: a Faker locale such as en_US")
    size = _pool_size(spec, where)
    # Checking a profile calls each provider a few times, not pool-size times.
    return FakerPools(locale, rng.getrandbits(64), min(size, 8) if check else size, where)


def order_fields(deps: Mapping[str, set[str]], where: str) -> list[str]:
    """The fields in the order they are declared, moved only where a condition needs a field
    made first; a cycle of conditions is an error naming it."""
    done: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise TemplateError(
                f"{where}: a cycle of conditions: {' -> '.join(cycle)}; a field cannot depend on itself"
            )
        state[name] = 1
        for dep in deps[name]:
            visit(dep, [*path, name])
        state[name] = 2
        done.append(name)

    for name in deps:
        visit(name, [])
    return done


def compile_template(
    name: str, spec: Mapping[str, Any], seed: int | None, check: bool = False
) -> TemplateGenerator:
    where = f"generators.{name}"
    refuse_unknown(spec, TEMPLATE_KEYS, where, "a template")
    fields = spec.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        raise TemplateError(
            f"{where}.fields: required: a mapping of field name: field, e.g. {{event_id: {{uuid: true}}}}"
        )
    names = tuple(str(k) for k in fields)
    for reserved in RESERVED_FIELDS:
        if reserved in names:
            raise TemplateError(
                f"{where}.fields.{reserved}: a field the run sets itself (source: the generator's name; "
                "run_id, seq: the trace fields); rename it"
            )
    rng = random.Random(seed)
    pools = faker_pools(spec, where, random.Random(rng.getrandbits(64)), check)
    draws = random.Random(rng.getrandbits(64))
    ctx = Context(draws, pools, has_sessions="sessions" in spec, top_fields=names, ids=EventIds(draws))
    entities = build_entities(spec.get("entities"), f"{where}.entities", ctx, CHECK_SCALE if check else 1.0)
    ctx.entity_fields = entities.types
    sessions = None
    if "sessions" in spec:
        sessions = Sessions(spec["sessions"], f"{where}.sessions", entities, draws, ctx.uuids())
    compiled: dict[str, Compiled] = {n: compile_field(fields[n], f"{where}.fields.{n}", ctx) for n in names}
    order = order_fields({n: c.deps for n, c in compiled.items()}, f"{where}.fields")
    types = {n: (compiled[n].type, compiled[n].always) for n in names}
    generator = TemplateGenerator(name, generate_code(name, order, compiled, ctx, entities, sessions), types)
    if check:
        check_size(where, lambda: orjson.dumps(generator.next_event(time.time())))
    return generator


def check_size(where: str, record: Callable[[], bytes]) -> None:
    """Refuse a template whose every event is over Firehose's record limit (the smallest of
    CHECK_EVENTS drawn)."""
    smallest = min(len(record()) for _ in range(CHECK_EVENTS))
    if smallest > limits.MAX_RECORD_BYTES:
        raise TemplateError(
            f"{where}: its smallest event is {smallest:,} bytes, over Firehose's record limit of "
            f"{limits.MAX_RECORD_BYTES:,} bytes (1,000 KiB); make lists or text shorter"
        )
