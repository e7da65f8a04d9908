"""The local Firehose built from the CloudFormation template: stream names, buffering hints and
prefixes come from the template (with --param overrides), the inline transform runs in-process
and the S3 stream writes Parquet with the Glue table's columns."""

from __future__ import annotations

import io
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
import pytest

from producer.audit import objects
from producer.aws.cloudformation import load_template
from producer.errors import UsageError
from producer.local.server import LocalOptions
from producer.local.template import streams_from_template, write_local_config
from tests.helpers import REPO, ThreadedLocalFirehose, run_cli

SHIPPED = REPO / "deploy" / "pipeline.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "pipeline_with_run_columns.yaml"


def _s3(requests: list[dict[str, object]]) -> dict[str, object]:
    [s3] = [r for r in requests if "ExtendedS3DestinationConfiguration" in r]
    return s3


def test_a_param_changes_the_streams() -> None:
    template = load_template(SHIPPED.read_text())
    default = streams_from_template(template, {})
    changed = streams_from_template(template, {"StreamPrefix": "demo", "S3BufferIntervalSeconds": "120"})
    names = sorted(str(r["DeliveryStreamName"]) for r in changed.requests)
    assert names == ["demo", "demo-opensearch"]
    assert sorted(str(r["DeliveryStreamName"]) for r in default.requests) != names
    hints = _s3(changed.requests)["ExtendedS3DestinationConfiguration"]["BufferingHints"]  # type: ignore[index]
    assert hints["IntervalInSeconds"] == 120
    assert default.transform_code is not None and "def lambda_handler" in default.transform_code


def test_unsupported_intrinsic_is_one_clear_error() -> None:
    template = load_template(SHIPPED.read_text())
    stream = next(r for r in template["Resources"].values() if r["Type"].endswith("DeliveryStream"))
    stream["Properties"]["DeliveryStreamName"] = {"Fn::ImportValue": "x"}
    with pytest.raises(UsageError, match="Fn::ImportValue is not supported"):
        streams_from_template(template, {})


def test_serve_rejects_an_unknown_param(tmp_path: Path) -> None:
    result = run_cli(
        "local", "serve", "--port", "0", "--output", str(tmp_path), "--template", str(SHIPPED),
        "--param", "NoSuchParam=1",
    )  # fmt: skip
    assert result.returncode == 2
    assert "NoSuchParam" in result.stderr and "Traceback" not in result.stderr


def test_template_sandbox_writes_parquet_with_run_columns(tmp_path: Path) -> None:
    streams = streams_from_template(load_template(FIXTURE.read_text()), {"StreamPrefix": "tpl"})
    config, transform = write_local_config(streams, tmp_path / "state")
    out = tmp_path / "out"
    server = ThreadedLocalFirehose(
        out, LocalOptions(output_dir=out, stream_config=config, transform_path=transform)
    )
    server.start()
    events = [
        {
            "event_id": f"e{i}",
            "run_id": "run-1",
            "seq": i,
            "event_type": "purchase",
            "timestamp": "2026-12-04T04:00:00Z",
            "amount": 10.0 * i,
            "user_id": "u1",
        }
        for i in range(20)
    ]
    fh = server.botocore_client()
    fh.put_record_batch(DeliveryStreamName="tpl", Records=[{"Data": orjson.dumps(e) + b"\n"} for e in events])
    time.sleep(0.1)
    server.stop()  # shutdown flushes the buffer
    parquet_files = [p for p in out.rglob("*") if p.is_file() and "raw-data" in p.parts]
    assert len(parquet_files) == 1
    raw = parquet_files[0].read_bytes()
    rows = pq.read_table(io.BytesIO(raw)).to_pylist()
    assert [r["event_id"] for r in rows] == [f"e{i}" for i in range(20)]
    assert {r["run_id"] for r in rows} == {"run-1"}
    assert [r["seq"] for r in rows] == list(range(20))
    assert all(r["processed_timestamp"] and r["amount_category"] for r in rows)
    audited = [orjson.loads(r)["event_id"] for r in objects.records(raw)]
    assert len(audited) == len(set(audited)) == 20


def test_run_with_template_delivers_parquet_and_the_audit_balances(tmp_path: Path) -> None:
    # The done-when, in one process: run --template starts the embedded Firehose from the
    # template; the S3 stream's objects are Parquet with run_id/seq; the audit finds 0 missing.
    out = tmp_path / "out"
    result = run_cli(
        "run", "--template", str(FIXTURE), "--param", "StreamPrefix=tpl", "--stream", "tpl",
        "--rate", "100", "--duration", "2s", "--output-dir", str(out), "--quiet", "--no-metrics",
        "--summary-json", str(tmp_path / "summary.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    run_id = summary["run_id"]
    files = [p for p in (out / "realtime-data-bucket" / "raw-data").rglob("*") if p.is_file()]
    assert files and all(p.read_bytes().startswith(b"PAR1") for p in files)
    rows = [r for p in files for r in pq.read_table(p).to_pylist()]
    assert {r["run_id"] for r in rows} == {run_id}
    assert sorted(r["seq"] for r in rows) == list(range(len(rows)))
    assert all(r["processed_timestamp"] and r["amount_category"] for r in rows)
    audit = run_cli("audit", "--run-id", run_id, "--output-dir", str(out), "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = orjson.loads(audit.stdout)["streams"]["tpl"]
    assert (report["missing"], report["duplicates"]) == (0, 0)
    assert report["accepted"] == report["delivered_unique"] == len(rows) > 0
