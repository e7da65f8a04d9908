"""Parquet objects (record format conversion) as JSON rows; pyarrow is an optional extra.

Imported lazily so the rest of the audit works without it:
https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson

from producer.errors import UsageError

MISSING = (
    "reading Parquet objects needs pyarrow: pip install 'firehose-loadgen[parquet]' (or pip install pyarrow)"
)


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise UsageError(MISSING) from None
    return pq


def rows_as_json(data: bytes) -> Iterator[bytes]:
    pq = _pyarrow_parquet()
    table = pq.read_table(io.BytesIO(data))
    for row in table.to_pylist():
        yield orjson.dumps(row, default=str)
