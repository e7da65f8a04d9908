"""Record format conversion in the local Firehose: one Parquet object per flush with the table's
columns (OpenX JSON rules), records that do not convert under format-conversion-failed, and the
audit's reader of those objects."""

from __future__ import annotations

import base64
import io
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
import pytest

from producer import pipeline
from producer.audit import objects
from producer.local import parquet
from tests.helpers import ThreadedLocalFirehose

COLUMNS = [
    {"Name": "event_id", "Type": "string"},
    {"Name": "run_id", "Type": "string"},
    {"Name": "seq", "Type": "bigint"},
    {"Name": "amount", "Type": "double"},
    {"Name": "processed_timestamp", "Type": "timestamp"},
    {"Name": "customer", "Type": "struct<tier:string,visits:int>"},
]


def _request(name: str, compression: str = "SNAPPY", size_mib: int = 64) -> dict[str, Any]:
    request = pipeline.s3_stream_request(name, interval_s=900, size_mib=size_mib)
    request["ExtendedS3DestinationConfiguration"]["DataFormatConversionConfiguration"] = {
        "Enabled": True,
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": compression}}},
        "SchemaConfiguration": {"DatabaseName": "db", "TableName": "events", "Columns": COLUMNS},
    }
    return request


def _create(url: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    # Raw call: botocore would refuse the local-only SchemaConfiguration.Columns.
    req = urllib.request.Request(
        url,
        data=orjson.dumps(request),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "Firehose_20150804.CreateDeliveryStream",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("compression", ["SNAPPY", "GZIP", "UNCOMPRESSED"])
def test_s3_objects_are_parquet_with_the_table_columns(tmp_path: Path, compression: str) -> None:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    status, body = _create(server.url, _request("pq", compression))
    assert status == 200, body
    good = [
        {
            "Event_ID": f"e{i}",  # mixed case: OpenX lower-cases keys
            "run_id": "r1",
            "seq": str(i),  # a numeric string coerces to bigint
            "amount": 12,
            "processed_timestamp": "2026-12-04T04:00:00Z",
            "customer": {"Tier": "gold", "visits": 3},
            "not_a_column": "ignored",
        }
        for i in range(5)
    ]
    bad = [{"event_id": "x1", "seq": "not-a-number"}, {"event_id": "x2", "customer": "flat"}]
    records = [{"Data": orjson.dumps(doc) + b"\n"} for doc in good + bad]
    server.botocore_client().put_record_batch(DeliveryStreamName="pq", Records=records)
    server.stop()  # shutdown flushes the one buffer

    out = tmp_path / "out" / pipeline.LOCAL_BUCKET
    data_files = [p for p in _files(out) if "raw-data" in p.parts]
    error_files = [p for p in _files(out) if "errors" in p.parts]
    assert len(data_files) == 1, "one Parquet object per flush"
    raw = data_files[0].read_bytes()
    assert raw.startswith(b"PAR1")
    meta = pq.ParquetFile(io.BytesIO(raw)).metadata
    codec = meta.row_group(0).column(0).compression
    assert codec == {"SNAPPY": "SNAPPY", "GZIP": "GZIP", "UNCOMPRESSED": "UNCOMPRESSED"}[compression]
    table = pq.read_table(io.BytesIO(raw))
    assert table.column_names == [c["Name"] for c in COLUMNS]
    rows = table.to_pylist()
    assert [r["event_id"] for r in rows] == [f"e{i}" for i in range(5)]
    assert [r["seq"] for r in rows] == list(range(5))
    assert rows[0]["amount"] == 12.0
    assert rows[0]["customer"] == {"tier": "gold", "visits": 3}
    assert rows[0]["processed_timestamp"].isoformat() == "2026-12-04T04:00:00+00:00"

    assert len(error_files) == 1
    assert parquet.FORMAT_CONVERSION_FAILED in error_files[0].parts
    envelopes = [orjson.loads(line) for line in error_files[0].read_bytes().splitlines()]
    assert [orjson.loads(base64.b64decode(e["rawData"]))["event_id"] for e in envelopes] == ["x1", "x2"]
    assert all(e["lastErrorMessage"] for e in envelopes)

    # The audit reads the Parquet object back as one JSON row per accepted record.
    audited = [orjson.loads(r) for r in objects.records(raw)]
    assert [r["event_id"] for r in audited] == [f"e{i}" for i in range(5)]


def test_conversion_needs_a_64_mib_buffer(tmp_path: Path) -> None:
    server = ThreadedLocalFirehose(tmp_path / "out")
    server.start()
    status, body = _create(server.url, _request("small", size_mib=5))
    server.stop()
    assert status == 400
    assert "at least 64" in str(body)


def test_a_large_flush_is_one_object_of_several_row_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    # Memory stays bounded by converting a row group at a time; the object still holds every
    # convertible record in order, and the failures are reported in arrival order.
    monkeypatch.setattr(parquet, "ROW_GROUP_RECORDS", 4)
    fmt = parquet.ParquetFormat(columns=tuple((c["Name"], c["Type"]) for c in COLUMNS))
    docs = [{"event_id": f"e{i}", "seq": i if i % 5 else "bad"} for i in range(1, 11)]
    converted = parquet.convert([orjson.dumps(d) for d in docs], fmt)
    assert converted.data is not None and converted.rows == 8
    meta = pq.ParquetFile(io.BytesIO(converted.data)).metadata
    assert meta.num_row_groups == 3 and meta.num_rows == 8
    rows = pq.read_table(io.BytesIO(converted.data)).to_pylist()
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 6, 7, 8, 9]
    assert [orjson.loads(record)["event_id"] for record, _ in converted.failed] == ["e5", "e10"]
