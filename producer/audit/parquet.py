"""Parquet objects (record format conversion) as JSON rows, with pyarrow (a main dependency:
the embedded Firehose writes Parquet too):
https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson

from producer.errors import UsageError


def rows_as_json(data: bytes) -> Iterator[bytes]:
    """Each row of one Parquet object as a JSON record; a damaged object is one clear error."""
    # Imported here: pyarrow costs ~75 ms and ~30 MB at import, and most commands never read Parquet.
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

    try:
        # One thread: objects are small, and pyarrow's reader threads still running at interpreter
        # exit aborted an audit once after its report was printed ("terminate called without an
        # active exception", exit -6, seen in 1 of 3 full test runs).
        table = pq.read_table(io.BytesIO(data), use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        # pyarrow's messages end in a newline (and may span lines): keep the first line.
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"an object with the Parquet magic is not readable Parquet: {detail}") from None
    for row in table.to_pylist():
        yield orjson.dumps(row, default=str)
