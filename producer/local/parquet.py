"""Record format conversion (JSON -> Parquet) as the local Firehose does it for an S3 stream.

Firehose deserialises each record with the OpenX JSON SerDe, matches keys to the Glue table's
columns and serialises one Parquet object per buffer flush; a record it cannot convert goes to
the error prefix with error-output-type ``format-conversion-failed``:
https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion-error-handling.html
OpenX rules (keys lower-cased by default, CaseInsensitive):
https://docs.aws.amazon.com/firehose/latest/APIReference/API_OpenXJsonSerDe.html
ParquetSerDe compression (SNAPPY default, GZIP, UNCOMPRESSED):
https://docs.aws.amazon.com/firehose/latest/APIReference/API_ParquetSerDe.html
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

FORMAT_CONVERSION_FAILED = "format-conversion-failed"
COMPRESSIONS = {"SNAPPY": "snappy", "GZIP": "gzip", "UNCOMPRESSED": "none"}
# Records per Parquet row group: bounds the memory of converting one flush (see convert).
ROW_GROUP_RECORDS = 10_000


def _pyarrow() -> Any:
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    return pa


@functools.cache
def _scalars() -> dict[str, Any]:
    """Hive scalar types as Arrow types. pyarrow is imported when a stream converts, not when
    the program starts (it costs ~75 ms and ~30 MB at import, and most runs never convert)."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    return {
        "string": pa.string(),
        "varchar": pa.string(),
        "char": pa.string(),
        "tinyint": pa.int8(),
        "smallint": pa.int16(),
        "int": pa.int32(),
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
        "date": pa.date32(),
    }


class ConversionError(ValueError):
    """One record that does not fit the table's columns."""


class UnsupportedType(ValueError):
    """A Glue column type the local conversion does not implement."""


@dataclass(frozen=True, slots=True)
class ParquetFormat:
    """The Glue table's columns (name, Hive type) and the ParquetSerDe compression."""

    columns: tuple[tuple[str, str], ...]
    compression: str = "SNAPPY"
    case_insensitive: bool = True

    def schema(self) -> Any:
        pa = _pyarrow()
        return pa.schema([pa.field(name.lower(), hive_type(kind)) for name, kind in self.columns])


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def hive_type(kind: str) -> Any:
    """The Arrow type for a Glue (Hive) column type such as ``struct<a:int,b:array<string>>``."""
    text = kind.strip().lower()
    base = re.sub(r"\(.*\)$", "", text)  # varchar(10), char(3)
    pa = _pyarrow()
    scalars = _scalars()
    if base in scalars:
        return scalars[base]
    match = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", text)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if text.startswith("array<") and text.endswith(">"):
        return pa.list_(hive_type(text[6:-1]))
    if text.startswith("map<") and text.endswith(">"):
        key, value = _split_top(text[4:-1])
        return pa.map_(hive_type(key), hive_type(value))
    if text.startswith("struct<") and text.endswith(">"):
        fields = []
        for part in _split_top(text[7:-1]):
            name, _, sub = part.partition(":")
            fields.append(pa.field(name.strip(), hive_type(sub)))
        return pa.struct(fields)
    raise UnsupportedType(f"Glue column type {kind!r} is not supported by the local Firehose")


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _timestamp(value: Any) -> datetime:
    # OpenX accepts epoch numbers and ISO-8601 strings; a number above 1e11 is milliseconds.
    if isinstance(value, bool):
        raise ConversionError(f"cannot convert {value!r} to timestamp")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConversionError(f"cannot convert {value!r} to timestamp") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ConversionError(f"cannot convert {value!r} to timestamp")


def coerce(value: Any, kind: Any) -> Any:
    pa = _pyarrow()
    """``value`` as the column type wants it; ConversionError if the SerDe would reject it."""
    if value is None:
        return None
    if pa.types.is_string(kind):
        if isinstance(value, dict | list):
            return orjson.dumps(value).decode()
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if pa.types.is_boolean(kind):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConversionError(f"cannot convert {value!r} to boolean")
    if pa.types.is_integer(kind):
        if isinstance(value, bool):
            raise ConversionError(f"cannot convert {value!r} to an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            number = int(value) if isinstance(value, int | str) else None
        except ValueError:
            number = None
        if number is None:
            raise ConversionError(f"cannot convert {value!r} to {kind}")
        bits = kind.bit_width
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise ConversionError(f"{number} does not fit {kind}")
        return number
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        if isinstance(value, bool):
            raise ConversionError(f"cannot convert {value!r} to {kind}")
        try:
            return float(value) if pa.types.is_floating(kind) else Decimal(str(value))
        except (ValueError, TypeError, InvalidOperation):
            raise ConversionError(f"cannot convert {value!r} to {kind}") from None
    if pa.types.is_timestamp(kind):
        return _timestamp(value)
    if pa.types.is_date(kind):
        return _timestamp(value).date()
    if pa.types.is_list(kind):
        if not isinstance(value, list):
            raise ConversionError(f"cannot convert {value!r} to an array")
        return [coerce(v, kind.value_type) for v in value]
    if pa.types.is_map(kind):
        if not isinstance(value, dict):
            raise ConversionError(f"cannot convert {value!r} to a map")
        return [(coerce(k, kind.key_type), coerce(v, kind.item_type)) for k, v in value.items()]
    if pa.types.is_struct(kind):
        if not isinstance(value, dict):
            raise ConversionError(f"cannot convert {value!r} to a struct")
        return {f.name: coerce(value.get(f.name), f.type) for f in kind}
    raise ConversionError(f"no conversion to {kind}")


def documents(record: bytes) -> list[Any]:
    """The JSON documents of one record: usually one; several when records were aggregated
    (firehose-loadgen --pack writes one a line), which conversion allows: "you can convert the
    format of your data even if you aggregate your records" (page above)."""
    try:
        return [orjson.loads(record)]
    except orjson.JSONDecodeError as exc:
        first_error = exc
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError:
        raise ConversionError(f"record is not valid JSON: {first_error}") from None
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if at == len(text):
            break
        try:
            doc, at = decoder.raw_decode(text, at)
        except ValueError:
            raise ConversionError(f"record is not valid JSON: {first_error}") from None
        docs.append(doc)
    if not docs:
        raise ConversionError(f"record is not valid JSON: {first_error}")
    return docs


def convert_record(record: bytes, schema: Any, case_insensitive: bool = True) -> list[dict[str, Any]]:
    """The rows of ``schema`` one record makes (one per JSON document in it); keys not in the
    table are ignored, missing ones become null (as the OpenX SerDe does). Any document that
    cannot be converted fails the whole record."""
    rows = []
    for doc in documents(record):
        if not isinstance(doc, dict):
            raise ConversionError("record is not a JSON object")
        if case_insensitive:
            doc = _lower_keys(doc)
        rows.append({f.name: coerce(doc.get(f.name), f.type) for f in schema})
    return rows


@dataclass(slots=True)
class Converted:
    """One flush: the Parquet object (None when no record converted) and the rejected records
    with the reason, in arrival order."""

    data: bytes | None
    rows: int
    failed: list[tuple[bytes, str]]


def convert(records: Sequence[bytes], fmt: ParquetFormat) -> Converted:
    """The records of one buffer flush as one Parquet object, written a row group of at most
    ROW_GROUP_RECORDS records at a time: the Python rows of a whole 128 MiB buffer would take
    over ten times its size in memory (measured: 34 MB of events grew RSS by 417 MB at once)."""
    pa = _pyarrow()
    import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

    schema = fmt.schema()
    failed: list[tuple[bytes, str]] = []
    sink = io.BytesIO()
    writer: Any = None
    count = 0
    try:
        for start in range(0, len(records), ROW_GROUP_RECORDS):
            rows: list[dict[str, Any]] = []
            for record in records[start : start + ROW_GROUP_RECORDS]:
                try:
                    rows.extend(convert_record(record, schema, fmt.case_insensitive))
                except ConversionError as exc:
                    failed.append((record, str(exc)))
            if not rows:
                continue
            if writer is None:
                writer = pq.ParquetWriter(sink, schema, compression=COMPRESSIONS[fmt.compression])
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            count += len(rows)
    finally:
        if writer is not None:
            writer.close()
    return Converted(sink.getvalue() if count else None, count, failed)


def failure_envelope(record: bytes, message: str, arrival: float, now: float, table: str) -> bytes:
    """The error record Firehose writes for a record it could not convert (fields as in the
    error-handling page above)."""
    return orjson.dumps(
        {
            "attemptsMade": 1,
            "arrivalTimestamp": int(arrival * 1000),
            "lastErrorCode": "DataFormatConversion.MalformedData",
            "lastErrorMessage": message,
            "attemptEndingTimestamp": int(now * 1000),
            "rawData": base64.b64encode(record).decode(),
            "dataCatalogTable": {"tableName": table},
        }
    )
