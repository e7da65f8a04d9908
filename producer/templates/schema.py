"""A profile's own events as a Glue table's columns (CloudFormation YAML) or a JSON Schema, so a
pipeline's schema comes from the template that makes its events (`profiles schema`).

Glue column types are Hive types (https://docs.aws.amazon.com/athena/latest/ug/data-types.html);
Firehose's record format conversion reads the table's columns
(https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from producer.templates.fakerpools import TemplateError
from producer.templates.fields import BIGINT, STRING, FieldType

# Every event carries its generator's name; run_id and seq unless --no-trace-fields.
SOURCE_COLUMN = ("source", STRING)
TRACE_COLUMNS = (("run_id", STRING), ("seq", BIGINT))

Fields = dict[str, tuple[FieldType, bool]]  # name: (type, present in every event)


def merge(parts: Mapping[str, Fields], trace_fields: bool) -> Fields:
    """The fields of every generator in ``parts`` (by name), in first-seen order; a field two
    generators give different types is an error. Present in every event only if every
    generator always has it."""
    types: dict[str, FieldType] = {}
    seen_in: dict[str, str] = {}
    for generator, fields in parts.items():
        for name, (kind, _) in fields.items():
            if name in types and types[name] != kind:
                raise TemplateError(
                    f"generators: field {name!r} is {hive(types[name])} in {seen_in[name]!r} but "
                    f"{hive(kind)} in {generator!r}; one column needs one type"
                )
            types.setdefault(name, kind)
            seen_in.setdefault(name, generator)
    out: Fields = {
        name: (kind, all(name in f and f[name][1] for f in parts.values())) for name, kind in types.items()
    }
    out[SOURCE_COLUMN[0]] = (SOURCE_COLUMN[1], True)
    if trace_fields:
        for name, kind in TRACE_COLUMNS:
            out[name] = (kind, True)
    return out


def hive(kind: FieldType) -> str:
    if kind.kind == "struct":
        return "struct<" + ",".join(f"{name.lower()}:{hive(sub)}" for name, sub, _ in kind.fields) + ">"
    if kind.kind == "array":
        return f"array<{hive(kind.item or STRING)}>"
    return kind.kind


def glue_columns(fields: Fields) -> str:
    """``Columns:`` as the shipped template writes it (deploy/pipeline.yaml), ready to paste
    under a Glue table's StorageDescriptor. Names in lower case, as Glue stores them ("Athena
    table, view, database, and column names must be lower case": the OpenX JSON SerDe matches
    the events' keys to them case-insensitively,
    https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html)."""
    lines = ["Columns:"]
    seen: dict[str, str] = {}
    for name, (kind, _) in fields.items():
        if seen.setdefault(name.lower(), name) != name:
            raise TemplateError(
                f"generators: fields {seen[name.lower()]!r} and {name!r} differ only in case: one Glue column"
            )
        name = name.lower()
        text = hive(kind)
        shown = f'"{text}"' if any(c in text for c in "<>:,") else text
        lines.append(f"  - {{Name: {name}, Type: {shown}}}")
    return "\n".join(lines)


def _json_type(kind: FieldType) -> dict[str, Any]:
    if kind.kind == "struct":
        return {
            "type": "object",
            "properties": {name: _json_type(sub) for name, sub, _ in kind.fields},
            "required": [name for name, _, always in kind.fields if always],
        }
    if kind.kind == "array":
        return {"type": "array", "items": _json_type(kind.item or STRING)}
    return {
        "type": {"string": "string", "bigint": "integer", "double": "number", "boolean": "boolean"}[kind.kind]
    }


def json_schema(title: str, fields: Fields) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": {name: _json_type(kind) for name, (kind, _) in fields.items()},
        "required": [name for name, (_, always) in fields.items() if always],
    }
