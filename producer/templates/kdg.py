"""`kind: kdg`: a Kinesis Data Generator record template, run as it is.

KDG's record template is any text with ``{{helper}}`` / ``{{helper(args)}}`` placeholders (its
help page: https://awslabs.github.io/amazon-kinesis-data-generator/web/help.html). As KDG does,
newlines are removed from the template before it is rendered, so a JSON template written over
several lines makes one-line records. The helpers KDG documents map to seeded pools of Python Faker
values and to our distributions (kdghelpers.py); any other is refused, naming it.

A template that starts with ``{`` is JSON: each rendered record is parsed, gets the trace
fields (``run_id``, ``seq``) and ``source`` like every event, and is sent as one JSON line. Any
other template (CSV, an access log line) is sent as rendered, a newline added when it has
none so that delivered objects are a record a line; ``{{loadgen.run_id}}`` and
``{{loadgen.seq}}`` put the trace fields where the user wants them.
"""

from __future__ import annotations

import difflib
import json
import random
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from producer.events.base import MAX_TEXT_GAP, Event
from producer.templates.compiler import check_size, faker_pools
from producer.templates.fakerpools import TemplateError, refuse_unknown
from producer.templates.fields import FieldType, type_of
from producer.templates.kdghelpers import HELPERS, Helpers, Render, js_text

KDG_KEYS = ("kind", "template", "locale", "pool", "newline")
PLACEHOLDER = re.compile(r"\{\{(.+?)\}\}", re.DOTALL)
EXPRESSION = re.compile(r"\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\s*(?:\((.*)\))?\s*", re.DOTALL)
TEXT_FIELD = "_record"  # an internal field of a text record's event: the encoder renders it
RUN_ID = "loadgen.run_id"
SEQ = "loadgen.seq"
LOADGEN = (RUN_ID, SEQ)


def _args(text: str | None, where: str) -> list[Any]:
    """faker.js arguments as JSON values; JavaScript object keys without quotes and single
    quotes are accepted too (KDG templates in the wild use both)."""
    if text is None or not text.strip():
        return []
    try:
        parsed = json.loads(f"[{text}]")
    except ValueError:
        loose = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', text).replace("'", '"')
        try:
            parsed = json.loads(f"[{loose}]")
        except ValueError:
            raise TemplateError(f"{where}: arguments ({text.strip()}) are not JSON values") from None
    return list(parsed)


class Parsed:
    """The template cut into literal text and placeholders (helper name, arguments)."""

    def __init__(self, text: str, where: str) -> None:
        # As KDG does (producer.js getCleanedTemplate): trim, drop newlines, and read the old
        # {{current.timestamp}} as {{date.now}}.
        self.text = text.strip().replace("\n", "").replace("{{current.timestamp}}", "{{date.now}}")
        self.parts: list[str | tuple[str, list[Any]]] = []
        unknown: list[str] = []
        at = 0
        for match in PLACEHOLDER.finditer(self.text):
            if match.start() > at:
                self.parts.append(self.text[at : match.start()])
            expression = EXPRESSION.fullmatch(match.group(1))
            if expression is None:
                raise TemplateError(
                    f"{where}: {{{{{match.group(1).strip()}}}}} is not a helper call such as "
                    "{{random.number(100)}}"
                )
            name = expression.group(1)
            if name not in HELPERS and name not in LOADGEN:
                unknown.append(name)
            self.parts.append((name, _args(expression.group(2), f"{where}: {{{{{name}}}}}")))
            at = match.end()
        if at < len(self.text):
            self.parts.append(self.text[at:])
        if unknown:
            names = sorted(set(unknown))
            close = [m for n in names for m in difflib.get_close_matches(n, list(HELPERS), n=1, cutoff=0.7)]
            hint = f" (closest: {', '.join(dict.fromkeys(close))})" if close else ""
            raise TemplateError(
                f"{where}: KDG helper(s) not supported: {', '.join(names)}{hint}; see profiles/README.md "
                "for the list"
            )
        self.is_json = self.text.startswith("{") and not self.text.startswith("{{")


class TextRecord:
    """One rendered text record: the pieces, with the trace placeholders filled at encoding."""

    __slots__ = ("pieces", "spec")

    def __init__(self, pieces: list[str], spec: KdgGenerator) -> None:
        self.pieces = pieces
        self.spec = spec


def encode_text(event: Event) -> bytes:
    """A text record's bytes: its pieces with ``run_id``/``seq`` (set on the event by the run)
    in the trace placeholders' places."""
    record: TextRecord = event[TEXT_FIELD]
    pieces = record.pieces
    spec = record.spec
    if spec.run_slots or spec.seq_slots:
        run_id = str(event.get("run_id", ""))
        seq = event.get("seq")
        seq_text = "" if seq is None else str(seq)
        for i in spec.run_slots:
            pieces[i] = run_id
        for i in spec.seq_slots:
            pieces[i] = seq_text
    text = "".join(pieces)
    if spec.newline and not text.endswith("\n"):
        text += "\n"
    return text.encode()


class KdgGenerator:
    """Records of one `kind: kdg` generator."""

    def __init__(self, source: str, parsed: Parsed, helpers: Helpers, newline: bool, where: str) -> None:
        self.source = source
        self.is_json = parsed.is_json
        self.newline = newline
        literal: list[str] = []
        self._dynamic: list[tuple[int, Render]] = []
        self.run_slots: list[int] = []
        self.seq_slots: list[int] = []
        for i, part in enumerate(parsed.parts):
            if isinstance(part, str):
                literal.append(part)
                continue
            name, args = part
            literal.append("")
            if name == RUN_ID:
                self.run_slots.append(i)
            elif name == SEQ:
                self.seq_slots.append(i)
            else:
                try:
                    self._dynamic.append((i, HELPERS[name](helpers, args)))
                except (ValueError, TypeError) as exc:
                    raise TemplateError(f"{where}: {{{{{name}}}}}: {exc}") from None
        self._literal = literal
        self.types: dict[str, tuple[FieldType, bool]] = {}

    def _pieces(self, now: float) -> list[str]:
        pieces = self._literal.copy()
        for i, render in self._dynamic:
            pieces[i] = js_text(render(now))
        return pieces

    def next_event(self, now: float) -> Event:
        pieces = self._pieces(now)
        if self.is_json:
            try:
                event = orjson.loads("".join(pieces))
            except orjson.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                # Keys of the run's own (source; run_id and seq when traced) replace the record's.
                event["source"] = self.source
                return event
            # Rendered values made it invalid JSON (a quote in a Faker value): sent as rendered,
            # as KDG would send it.
        return {"source": self.source, TEXT_FIELD: TextRecord(pieces, self)}


def _check_trace_places(parsed: Parsed, where: str) -> None:
    names = [p[0] if isinstance(p, tuple) else None for p in parsed.parts]
    has_run, has_seq = RUN_ID in names, SEQ in names
    if parsed.is_json and (has_run or has_seq):
        raise TemplateError(
            f"{where}: a JSON template gets run_id and seq as fields by itself; remove "
            "{{loadgen.run_id}}/{{loadgen.seq}}"
        )
    if has_run != has_seq:
        missing = SEQ if has_run else RUN_ID
        raise TemplateError(f"{where}: add {{{{{missing}}}}} too: the audit needs both run_id and seq")
    if has_run:
        run_at, seq_at = names.index(RUN_ID), names.index(SEQ)
        between = parsed.parts[run_at + 1 : seq_at]
        gap = "".join(p for p in between if isinstance(p, str))
        if (
            seq_at < run_at
            or len(between) > 1
            or not 1 <= len(gap) <= MAX_TEXT_GAP
            or any(c.isdigit() for c in gap)
        ):
            raise TemplateError(
                f"{where}: put {{{{loadgen.seq}}}} after {{{{loadgen.run_id}}}} with 1-{MAX_TEXT_GAP} "
                "characters and no digits between them (e.g. {{loadgen.run_id}},{{loadgen.seq}}): the audit "
                "finds the seq there"
            )


def compile_kdg(name: str, spec: Mapping[str, Any], seed: int | None, check: bool = False) -> KdgGenerator:
    where = f"generators.{name}"
    refuse_unknown(spec, KDG_KEYS, where, "a kdg generator")
    text = spec.get("template")
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(
            f"{where}.template: required: the KDG record template, e.g. "
            "'{{name.firstName}},{{internet.ip}}'"
        )
    newline = spec.get("newline", True)
    if not isinstance(newline, bool):
        raise TemplateError(f"{where}.newline: true or false")
    parsed = Parsed(text, f"{where}.template")
    _check_trace_places(parsed, f"{where}.template")
    rng = random.Random(seed)
    pools = faker_pools(spec, where, random.Random(rng.getrandbits(64)), check)
    helpers = Helpers(pools, random.Random(rng.getrandbits(64)), f"{where}.template")
    generator = KdgGenerator(name, parsed, helpers, newline, f"{where}.template")
    if parsed.is_json:
        samples = [generator.next_event(time.time()) for _ in range(20)]
        bad = next((s for s in samples if TEXT_FIELD in s), None)
        if bad is not None:
            rendered = "".join(bad[TEXT_FIELD].pieces)
            try:
                orjson.loads(rendered)
                problem = "not a JSON object"
            except orjson.JSONDecodeError as exc:
                problem = str(exc)
            raise TemplateError(
                f"{where}.template: starts with {{ but does not render a JSON object: {problem}"
            )
        generator.types = _json_types(samples)
    if check:
        check_size(where, lambda: _record(generator))
    return generator


def _record(generator: KdgGenerator) -> bytes:
    event = generator.next_event(time.time())
    if TEXT_FIELD in event:
        return encode_text(event)
    return orjson.dumps(event)


def _json_types(samples: list[Event]) -> dict[str, tuple[FieldType, bool]]:
    names: dict[str, None] = {}
    for sample in samples:
        names.update(dict.fromkeys(k for k in sample if k != "source"))
    return {
        name: (type_of([s[name] for s in samples if name in s]), all(name in s for s in samples))
        for name in names
    }
