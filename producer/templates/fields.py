"""One template field, compiled once into a function of the event being built.

A field is a mapping with one key saying what it is (``faker``, ``const``, ``choice``,
``number``, ``uuid``, ``sequence``, ``timestamp``, ``object``, ``list``, ``entity``,
``session``), that key's settings beside it, and optionally ``when`` (present only when other
fields hold given values) and ``format`` (a Python format string applied to the value). A
plain scalar is a constant. profiles/README.md documents every form.

Every draw on the per-event path is one C call where it can be (``int(random() * n)`` into a
pool, ``bisect`` into cumulative weights), because a template's event is a dozen of them.
"""

from __future__ import annotations

import bisect
import datetime
import difflib
import itertools
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from producer.durations import parse_duration
from producer.events.base import EventIds, Timestamps
from producer.templates.fakerpools import FakerPools, TemplateError, refuse_unknown


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a conditional field whose condition does not hold


class State:
    """What one event's fields may read: the event so far, the entity rows and session picked
    for it, and its wall-clock time."""

    __slots__ = ("event", "now", "rows", "session")

    def __init__(self) -> None:
        self.event: dict[str, Any] = {}
        self.now = 0.0
        self.rows: dict[str, dict[str, Any]] = {}
        self.session: Any = None


Draw = Callable[[State], Any]


@dataclass(frozen=True, slots=True)
class FieldType:
    """The JSON shape of a field's values, for Glue columns and JSON Schema."""

    kind: str  # string, bigint, double, boolean, struct, array
    fields: tuple[tuple[str, FieldType, bool], ...] = ()  # struct: (name, type, always present)
    item: FieldType | None = None  # array


STRING = FieldType("string")
BIGINT = FieldType("bigint")
DOUBLE = FieldType("double")
BOOLEAN = FieldType("boolean")


def type_of(values: Sequence[Any]) -> FieldType:
    """The one type that holds every value (string when they disagree)."""
    kinds = {_type_of_one(v) for v in values if v is not None}
    if not kinds:
        return STRING
    if kinds == {BIGINT, DOUBLE}:
        return DOUBLE
    if len(kinds) == 1:
        return kinds.pop()
    return STRING


def _type_of_one(value: Any) -> FieldType:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return BIGINT
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, dict):
        return FieldType("struct", tuple((str(k), _type_of_one(v), True) for k, v in value.items()))
    if isinstance(value, list):
        return FieldType("array", item=type_of(value))
    return STRING


@dataclass(slots=True)
class Compiled:
    draw: Draw
    type: FieldType
    always: bool = True  # False: the field has a condition (absent from some events)
    deps: set[str] = field(default_factory=set)  # top-level fields its conditions read
    # The value as a Python expression over names bound in Context.env (``now``, ``r``,
    # ``row<N>``, ``session``), for the generated next_event (compiler.py); None: call ``draw``.
    # Without the condition: ``checks`` holds it, (field, values) pairs that must all hold.
    expr: str | None = None
    checks: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    # When every value comes from a known sequence: the values, and ``expr`` as ``NAME[INDEX]``
    # with ``index`` the INDEX expression (``format`` then formats the values once, not per event).
    table: Sequence[Any] | None = None
    index: str | None = None


@dataclass(slots=True)
class Context:
    """What compiling needs: the per-event RNG, the Faker pools, the entities (for ``entity``
    references: name -> field -> type) and whether sessions exist."""

    rng: random.Random
    pools: FakerPools
    entity_fields: dict[str, dict[str, FieldType]] = field(default_factory=dict)
    has_sessions: bool = False
    ids: EventIds | None = None
    top_fields: tuple[str, ...] = ()
    in_entity: bool = False
    used_entities: set[str] = field(default_factory=set)
    env: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        """A name for ``value`` in the generated code's namespace."""
        name = f"k{len(self.env)}"
        self.env[name] = value
        return name

    def uuids(self) -> EventIds:
        if self.ids is None:
            self.ids = EventIds(self.rng)
        return self.ids


KINDS = (
    "faker",
    "const",
    "choice",
    "number",
    "uuid",
    "sequence",
    "timestamp",
    "object",
    "list",
    "entity",
    "session",
)
COMMON = ("when", "format")
SETTINGS: dict[str, tuple[str, ...]] = {
    "faker": ("args", "pool"),
    "const": (),
    "choice": (),
    "number": ("min", "max", "mean", "stddev", "mu", "sigma", "s", "n", "round"),
    "uuid": (),
    "sequence": ("step",),
    "timestamp": ("late", "jitter"),
    "object": (),
    "list": ("count",),
    "entity": (),
    "session": (),
}
DISTRIBUTIONS = ("uniform", "normal", "lognormal", "zipf")
TIMESTAMP_FORMATS = ("iso", "epoch", "epoch_ms")
MAX_LIST_ITEMS = 10_000
MAX_ZIPF_N = 1_000_000
# Formatted values kept per field at most (a zipf over a million ranks formats them all once).
MAX_FORMATTED = 1_000_000


def compile_field(spec: Any, where: str, ctx: Context) -> Compiled:
    if not isinstance(spec, Mapping):
        return _const(spec, where, ctx)
    kinds = [k for k in KINDS if k in spec]
    if not kinds:
        raise TemplateError(
            f"{where}: a field needs one of: {', '.join(KINDS)} (or is a plain value, a constant)"
        )
    if len(kinds) > 1:
        raise TemplateError(f"{where}: a field is one kind of value, this one says {' and '.join(kinds)}")
    kind = kinds[0]
    allowed = (kind, *SETTINGS[kind], *COMMON)
    refuse_unknown(spec, allowed, where, f"a {kind} field")
    compiled = _BUILDERS[kind](spec, where, ctx)
    if "format" in spec:
        compiled = _formatted(compiled, spec["format"], where, ctx)
    if "when" in spec:
        if ctx.in_entity:
            raise TemplateError(
                f"{where}.when: entity fields cannot be conditional; put the condition on the event's field"
            )
        compiled = _conditional(compiled, spec["when"], where, ctx)
    return compiled


def _const(value: Any, where: str, ctx: Context) -> Compiled:
    if isinstance(value, Mapping) or (isinstance(value, list) and any(isinstance(v, Mapping) for v in value)):
        raise TemplateError(f"{where}: use `object:` for a nested object")
    if isinstance(value, float) and not math.isfinite(value):
        raise TemplateError(f"{where}: {value} is not a JSON number")
    kind = FieldType("array", item=type_of(value)) if isinstance(value, list) else type_of([value])
    return Compiled(lambda st: value, kind, expr=ctx.bind(value))


def _build_const(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    return _const(spec["const"], f"{where}.const", ctx)


def _build_faker(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    name = spec["faker"]
    if not isinstance(name, str):
        raise TemplateError(f"{where}.faker: must be a Faker provider name such as name, email or city")
    raw = spec.get("args", [])
    args: Sequence[Any] = raw if isinstance(raw, list) else []
    kwargs: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if not isinstance(raw, list | Mapping):
        args = [raw]
    size = spec.get("pool")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1_000_000
    ):
        raise TemplateError(f"{where}.pool: must be a whole number of values, 1 to 1,000,000")
    pool = ctx.pools.pool(name, args, kwargs, f"{where}.faker", size)
    r = ctx.rng.random
    n = len(pool)
    index = f"int(r() * {n})"
    return Compiled(
        lambda st: pool[int(r() * n)],
        type_of(pool),
        expr=f"{ctx.bind(pool)}[{index}]",
        table=pool,
        index=index,
    )


def _weights(raw: Any, where: str) -> tuple[list[Any], list[float]]:
    if isinstance(raw, list) and raw:
        return list(raw), [1.0] * len(raw)
    if isinstance(raw, Mapping) and raw:
        values, weights = [], []
        for value, weight in raw.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
                raise TemplateError(f"{where}.{value}: a weight must be a number >= 0, got {weight!r}")
            values.append(value)
            weights.append(float(weight))
        if sum(weights) <= 0:
            raise TemplateError(f"{where}: the weights must add up to more than 0")
        return values, weights
    raise TemplateError(
        f"{where}: a list of values, or a mapping of value: weight, e.g. {{view: 60, buy: 5}}"
    )


def bounds(weights: Sequence[float]) -> tuple[list[float], float]:
    """Cumulative weights for ``bisect_right(bounds, random() * total)``, and the total. The last
    bound is infinity: ``random() * total`` may round up to the total, and must still fall on
    the last value that has a weight rather than past the end."""
    cum = list(itertools.accumulate(weights))
    total = cum[-1]
    cum[-1] = math.inf
    return cum, total


def weighted_draw(values: Sequence[Any], weights: Sequence[float], rng: random.Random) -> Callable[[], Any]:
    """A draw of one of ``values`` by weight: one random() and one bisect (both C)."""
    r = rng.random
    vals = tuple(values)
    if len(set(weights)) == 1:
        n = len(vals)
        return lambda: vals[int(r() * n)]
    cum, total = bounds(weights)
    cut = bisect.bisect_right
    return lambda: vals[cut(cum, r() * total)]


def _build_choice(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    values, weights = _weights(spec["choice"], f"{where}.choice")
    for v in values:
        if isinstance(v, Mapping | list):
            raise TemplateError(
                f"{where}.choice: choices are plain values; use `object:` fields for structure"
            )
    draw = weighted_draw(values, weights, ctx.rng)
    if len(set(weights)) == 1:
        index = f"int(r() * {len(values)})"
    else:
        cum, total = bounds(weights)
        index = f"cut({ctx.bind(cum)}, r() * {total!r})"
    table = tuple(values)
    expr = f"{ctx.bind(table)}[{index}]"
    return Compiled(lambda st: draw(), type_of(values), expr=expr, table=table, index=index)


def _number(spec: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = spec.get(key, default)
    if value is None:
        raise TemplateError(f"{where}: needs `{key}`")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TemplateError(f"{where}.{key}: must be a number, got {value!r}")
    return float(value)


def zipf_ranks(s: float, n: int) -> tuple[list[float], float]:
    """``bounds`` of ranks 1..n with P(k) proportional to 1 / k**s."""
    return bounds([1.0 / k**s for k in range(1, n + 1)])


def _build_number(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    dist = spec["number"]
    if dist not in DISTRIBUTIONS:
        raise TemplateError(
            f"{where}.number: unknown distribution {dist!r}; allowed: {', '.join(DISTRIBUTIONS)}"
        )
    allowed = {
        "uniform": ("min", "max", "round"),
        "normal": ("mean", "stddev", "min", "max", "round"),
        "lognormal": ("mu", "sigma", "min", "max", "round"),
        "zipf": ("s", "n", "min"),
    }[dist]
    extra = [k for k in SETTINGS["number"] if k in spec and k not in allowed]
    if extra:
        raise TemplateError(f"{where}.{extra[0]}: not a setting of {dist}; it takes {', '.join(allowed)}")
    rng = ctx.rng
    r = rng.random
    places = spec.get("round")
    if places is not None and (
        isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 15
    ):
        raise TemplateError(f"{where}.round: decimal places, a whole number 0-15 (0 makes whole numbers)")
    lo = spec.get("min")
    hi = spec.get("max")
    raw: Callable[[], float]
    if dist == "uniform":
        low, high = _number(spec, "min", where), _number(spec, "max", where)
        if high < low:
            raise TemplateError(f"{where}: max ({high:g}) is below min ({low:g})")
        span = high - low
        if places == 0:
            # Whole numbers min..max inclusive, each equally likely.
            first, count = math.ceil(low), math.floor(high) - math.ceil(low) + 1
            if count < 1:
                raise TemplateError(f"{where}: no whole number between min and max")
            return Compiled(
                lambda st: first + int(r() * count),
                BIGINT,
                expr=f"({first} + int(r() * {count}))",
                table=range(first, first + count),
                index=f"int(r() * {count})",
            )
        raw = lambda: low + r() * span  # noqa: E731
        raw_expr = f"({low!r} + r() * {span!r})"
    elif dist == "normal":
        mean, sd = _number(spec, "mean", where), _number(spec, "stddev", where)
        if sd < 0:
            raise TemplateError(f"{where}.stddev: must be >= 0")
        gauss = rng.gauss
        raw = lambda: gauss(mean, sd)  # noqa: E731
        raw_expr = f"gauss({mean!r}, {sd!r})"
    elif dist == "lognormal":
        mu, sigma = _number(spec, "mu", where), _number(spec, "sigma", where)
        if sigma < 0:
            raise TemplateError(f"{where}.sigma: must be >= 0")
        # exp(gauss) is lognormvariate's own definition, at gauss's (faster) speed.
        gauss = rng.gauss
        raw = lambda: math.exp(gauss(mu, sigma))  # noqa: E731
        raw_expr = f"exp(gauss({mu!r}, {sigma!r}))"
    else:  # zipf: ranks 1..n (shifted to start at min), rank k with weight 1/k**s
        s = _number(spec, "s", where, 1.1)
        n = spec.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_ZIPF_N:
            raise TemplateError(f"{where}.n: the number of ranks, a whole number 1 to {MAX_ZIPF_N:,}")
        if s <= 0:
            raise TemplateError(f"{where}.s: the exponent must be > 0 (1.1 is typical)")
        cum, total = zipf_ranks(s, n)
        cut = bisect.bisect_right
        start = int(_number(spec, "min", where, 1))
        index = f"cut({ctx.bind(cum)}, r() * {total!r})"
        return Compiled(
            lambda st: start + cut(cum, r() * total),
            BIGINT,
            expr=f"({start} + {index})",
            table=range(start, start + n),
            index=index,
        )
    low_clip = None if lo is None or dist == "uniform" else _number(spec, "min", where)
    high_clip = None if hi is None or dist == "uniform" else _number(spec, "max", where)
    if low_clip is not None or high_clip is not None:
        inner = raw
        floor = -math.inf if low_clip is None else low_clip
        ceil = math.inf if high_clip is None else high_clip
        raw = lambda: min(max(inner(), floor), ceil)  # noqa: E731
        raw_expr = f"min(max({raw_expr}, {floor!r}), {ceil!r})".replace("inf", "INF")
    if places is None:
        return Compiled(lambda st: raw(), DOUBLE, expr=raw_expr)
    if places == 0:
        return Compiled(lambda st: round(raw()), BIGINT, expr=f"round({raw_expr})")
    return Compiled(lambda st: round(raw(), places), DOUBLE, expr=f"round({raw_expr}, {places})")


def _build_uuid(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    if spec["uuid"] is not True:
        raise TemplateError(f"{where}.uuid: write `uuid: true`")
    ids = ctx.uuids()
    return Compiled(lambda st: ids.next(), STRING, expr=f"{ctx.bind(ids.next)}()")


def _build_sequence(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    start, step = spec["sequence"], spec.get("step", 1)
    for key, value in (("sequence", start), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TemplateError(f"{where}.{key}: must be a whole number, got {value!r}")
    counter = itertools.count(start, step)
    return Compiled(lambda st: next(counter), BIGINT, expr=f"next({ctx.bind(counter)})")


def seconds(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise TemplateError(f"{where}: {exc}") from None
    raise TemplateError(f"{where}: must be a duration such as 2s, 10m or 1h, got {value!r}")


class TimeFormat:
    """Wall-clock seconds to text (UTC), cached per second: strftime per event would cost more
    than the rest of the event."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._cache: dict[int, str] = {}
        self._subsecond = "%f" in fmt or fmt == "iso"

    def __call__(self, ts: float) -> str:
        second = math.floor(ts)
        prefix = self._cache.get(second)
        if prefix is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            if self._fmt == "iso":
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            elif "%f" in self._fmt:
                prefix = ""
            else:
                prefix = time.strftime(self._fmt, time.gmtime(second))
            self._cache[second] = prefix
        if not self._subsecond:
            return prefix
        if self._fmt == "iso":
            return f"{prefix}.{int((ts - second) * 1000):03d}Z"
        return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime(self._fmt)


def time_renderer(fmt: Any, where: str) -> tuple[Callable[[float], Any], FieldType]:
    if fmt == "epoch":
        return int, BIGINT
    if fmt == "epoch_ms":
        return lambda ts: int(ts * 1000), BIGINT
    if fmt == "iso" or (isinstance(fmt, str) and "%" in fmt):
        if fmt != "iso":
            try:
                time.strftime(fmt, time.gmtime(0))
            except ValueError as exc:
                raise TemplateError(f"{where}: not a strftime format: {exc}") from None
        return TimeFormat(fmt), STRING
    raise TemplateError(
        f"{where}: {', '.join(TIMESTAMP_FORMATS)}, or a strftime format such as '%Y-%m-%d %H:%M:%S'"
    )


def _build_timestamp(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    render, kind = time_renderer(spec["timestamp"], f"{where}.timestamp")
    r = ctx.rng.random
    jitter = seconds(spec["jitter"], f"{where}.jitter") if "jitter" in spec else 0.0
    late_share = late_min = late_span = 0.0
    if "late" in spec:
        late = spec["late"]
        if (
            not isinstance(late, Mapping)
            or "share" not in late
            or "max" not in late
            or set(late) - {"share", "min", "max"}
        ):
            raise TemplateError(
                f"{where}.late: {{share: 0.05, min: 5s, max: 10m}}: that share of events is late by min..max"
            )
        share = late["share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise TemplateError(f"{where}.late.share: a share between 0 and 1")
        late_share = float(share)
        late_min = seconds(late.get("min", 0), f"{where}.late.min")
        late_span = seconds(late["max"], f"{where}.late.max") - late_min
        if late_span < 0:
            raise TemplateError(f"{where}.late: max is below min")
    if not jitter and not late_share:
        if spec["timestamp"] == "iso":
            render = Timestamps().format  # remembers its last answer: a tick's events share now
        return Compiled(lambda st: render(st.now), kind, expr=f"{ctx.bind(render)}(now)")

    def draw(st: State) -> Any:
        ts = st.now
        if jitter:
            ts += (r() * 2.0 - 1.0) * jitter
        if late_share and r() < late_share:
            ts -= late_min + r() * late_span
        return render(ts)

    return Compiled(draw, kind, expr=f"{ctx.bind(draw)}(st)")


def _build_object(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    body = spec["object"]
    if not isinstance(body, Mapping) or not body:
        raise TemplateError(f"{where}.object: a mapping of field name: field")
    parts = [(str(k), compile_field(v, f"{where}.object.{k}", ctx)) for k, v in body.items()]
    deps = set().union(*(c.deps for _, c in parts))
    draws = tuple((name, c.draw) for name, c in parts)

    def draw(st: State) -> Any:
        out = {}
        for name, fn in draws:
            value = fn(st)
            if value is not MISSING:
                out[name] = value
        return out

    kind = FieldType("struct", tuple((name, c.type, c.always) for name, c in parts))
    expr = None
    if all(c.expr is not None and not c.checks for _, c in parts):
        expr = "{" + ", ".join(f"{name!r}: {c.expr}" for name, c in parts) + "}"
    return Compiled(draw, kind, deps=deps, expr=expr)


def _build_list(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    item = compile_field(spec["list"], f"{where}.list", ctx)
    count = spec.get("count", 1)
    if isinstance(count, int) and not isinstance(count, bool):
        low = high = count
    elif isinstance(count, Mapping) and set(count) <= {"min", "max"} and "max" in count:
        low, high = count.get("min", 0), count["max"]
    else:
        raise TemplateError(f"{where}.count: a whole number, or {{min: 1, max: 5}}")
    if (
        not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
        or not 0 <= low <= high <= MAX_LIST_ITEMS
    ):
        raise TemplateError(f"{where}.count: whole numbers with 0 <= min <= max <= {MAX_LIST_ITEMS:,}")
    fn = item.draw
    r = ctx.rng.random
    spread = high - low + 1

    def draw(st: State) -> Any:
        return [fn(st) for _ in range(low + int(r() * spread))]

    return Compiled(draw, FieldType("array", item=item.type), deps=item.deps)


def _build_entity(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    ref = spec["entity"]
    name, _, attr = str(ref).partition(".")
    if ctx.in_entity:
        raise TemplateError(f"{where}.entity: entity fields cannot refer to entities")
    if name not in ctx.entity_fields:
        known = ", ".join(sorted(ctx.entity_fields)) or "none declared (add `entities:`)"
        raise TemplateError(f"{where}.entity: unknown entity {name!r}; entities: {known}")
    fields = ctx.entity_fields[name]
    if attr not in fields:
        raise TemplateError(
            f"{where}.entity: entity {name!r} has no field {attr!r}; its fields: {', '.join(fields)}"
        )
    ctx.used_entities.add(name)
    slot = list(ctx.entity_fields).index(name)
    return Compiled(lambda st: st.rows[name][attr], fields[attr], expr=f"row{slot}[{attr!r}]")


def _build_session(spec: Mapping[str, Any], where: str, ctx: Context) -> Compiled:
    what = spec["session"]
    if not ctx.has_sessions:
        raise TemplateError(f"{where}.session: the template has no `sessions:`")
    if what == "id":
        return Compiled(lambda st: st.session.session_id, STRING, expr="session.session_id")
    if what == "index":
        return Compiled(lambda st: st.session.index, BIGINT, expr="session.index")
    raise TemplateError(
        f"{where}.session: `id` (the session's uuid) or `index` (the event's number in it, from 0)"
    )


def _formatted(compiled: Compiled, fmt: Any, where: str, ctx: Context) -> Compiled:
    if not isinstance(fmt, str) or "{" not in fmt:
        raise TemplateError(f"{where}.format: a Python format string with one {{}}, e.g. 'user_{{:06d}}'")
    try:
        fmt.format(0)
    except (ValueError, IndexError, KeyError) as exc:
        try:
            fmt.format("x")
        except (ValueError, IndexError, KeyError):
            raise TemplateError(
                f"{where}.format: {fmt!r} is not a format string with one {{}}: {exc}"
            ) from None
    inner = compiled.draw
    render = fmt.format
    if compiled.table is not None and compiled.index is not None and len(compiled.table) <= MAX_FORMATTED:
        # Values from a known sequence are formatted once here: str.format per event cost more
        # than the draw (a zipf product id "P{:06d}" was a third of a 12-field event).
        try:
            table = tuple(render(v) for v in compiled.table)
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"{where}.format: {fmt!r} does not fit the values: {exc}") from None
        at = f"{ctx.bind(table)}[{compiled.index}]"
        formatted = Compiled(lambda st: render(inner(st)), STRING, compiled.always, compiled.deps, at)
        formatted.table, formatted.index = table, compiled.index
        return formatted

    def draw(st: State) -> Any:
        value = inner(st)
        return value if value is MISSING else render(value)

    expr = None if compiled.expr is None else f"{ctx.bind(render)}({compiled.expr})"
    return Compiled(draw, STRING, compiled.always, compiled.deps, expr, compiled.checks)


def _conditional(compiled: Compiled, when: Any, where: str, ctx: Context) -> Compiled:
    if not isinstance(when, Mapping) or not when:
        raise TemplateError(
            f"{where}.when: a mapping of field: value (or a list of values), e.g. {{event_type: purchase}}"
        )
    checks: list[tuple[str, tuple[Any, ...]]] = []
    for name, wanted in when.items():
        name = str(name)
        if name not in ctx.top_fields:
            close = difflib.get_close_matches(name, ctx.top_fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(ctx.top_fields)}"
            raise TemplateError(
                f"{where}.when.{name}: the condition reads a field the event does not have{hint}"
            )
        values = tuple(wanted) if isinstance(wanted, list) else (wanted,)
        checks.append((name, values))
    inner = compiled.draw
    if len(checks) == 1:
        [(key, values)] = checks
        if len(values) == 1:
            [value] = values

            def one(st: State) -> Any:
                return inner(st) if st.event.get(key, MISSING) == value else MISSING

            draw = one
        else:

            def any_of(st: State) -> Any:
                return inner(st) if st.event.get(key, MISSING) in values else MISSING

            draw = any_of
    else:

        def every(st: State) -> Any:
            event = st.event
            for key, values in checks:
                if event.get(key, MISSING) not in values:
                    return MISSING
            return inner(st)

        draw = every
    return Compiled(
        draw, compiled.type, False, compiled.deps | {name for name, _ in checks}, compiled.expr, tuple(checks)
    )


_BUILDERS: dict[str, Callable[[Mapping[str, Any], str, Context], Compiled]] = {
    "faker": _build_faker,
    "const": _build_const,
    "choice": _build_choice,
    "number": _build_number,
    "uuid": _build_uuid,
    "sequence": _build_sequence,
    "timestamp": _build_timestamp,
    "object": _build_object,
    "list": _build_list,
    "entity": _build_entity,
    "session": _build_session,
}
