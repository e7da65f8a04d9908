"""The local Firehose built from the CloudFormation template: stream names, buffering hints and
prefixes come from the template (with --param overrides), the inline transform runs in-process
and the S3 stream writes Parquet with the Glue table's columns."""

from __future__ import annotations

import io
import signal
from pathlib import Path
from typing import Any

import botocore.session
import orjson
import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]
import pytest

from producer.audit import objects
from producer.aws.cloudformation import load_template
from producer.errors import UsageError
from producer.local.server import LocalOptions
from producer.local.streams import stream_from_request
from producer.local.template import streams_from_template, write_local_config
from tests.helpers import REPO, ThreadedLocalFirehose, parquet_rows, run_cli, start_local_serve

SHIPPED = REPO / "deploy" / "pipeline.yaml"
# Web shoppers who all buy, few sessions at a time: a 2 s run has purchases (the only events
# with an amount) on both sides of the recipe's 100 threshold.
BUYERS = """
name: buyers
description: every web session buys
mix: {web: 1.0}
generators:
  web:
    active_sessions: 5
    funnel: {view_to_cart: 1.0, cart_to_checkout: 1.0, checkout_to_purchase: 1.0}
rate: {shape: constant, rate: 100}
duration: 2s
"""


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
    # The template's ProcessorBufferSizeMB (0.9, kept under Lambda's 6 MB response) is what the
    # sandbox buffers for the transform, not the service default of 1 MB.
    processing = stream_from_request(_s3(default.requests), "us-east-1").processing
    assert processing is not None and processing.buffer_bytes == int(0.9 * 1024 * 1024)


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


def _check_recipe(rows: list[dict[str, Any]]) -> None:
    """The template's transform ran: processed_timestamp on every row; amount_category is the
    recipe's "high" above 100 else "low", and absent where the event has no amount."""
    assert rows and all(r["processed_timestamp"] and r["processing_status"] == "SUCCESS" for r in rows)
    for r in rows:
        expected = None if r["amount"] is None else ("high" if r["amount"] > 100 else "low")
        assert r["amount_category"] == expected, r


def test_template_sandbox_writes_parquet_with_run_columns(tmp_path: Path) -> None:
    streams = streams_from_template(load_template(SHIPPED.read_text()), {"StreamPrefix": "tpl"})
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
    server.stop()  # shutdown flushes the buffer (300 s interval otherwise): no timing involved
    parquet_files = [p for p in out.rglob("*") if p.is_file() and "raw-data" in p.parts]
    assert len(parquet_files) == 1
    raw = parquet_files[0].read_bytes()
    rows = pq.read_table(io.BytesIO(raw)).to_pylist()
    assert [r["event_id"] for r in rows] == [f"e{i}" for i in range(20)]
    assert {r["run_id"] for r in rows} == {"run-1"}
    assert [r["seq"] for r in rows] == list(range(20))
    _check_recipe(rows)
    assert {r["amount_category"] for r in rows} == {"high", "low"}
    audited = [orjson.loads(r)["event_id"] for r in objects.records(raw)]
    assert len(audited) == len(set(audited)) == 20


def _audit(out: Path, run_id: str) -> dict[str, Any]:
    audit = run_cli("audit", "--run-id", run_id, "--output-dir", str(out), "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report: dict[str, Any] = orjson.loads(audit.stdout)["streams"]
    return report


def test_run_builds_the_embedded_firehose_from_the_shipped_template(tmp_path: Path) -> None:
    # No --template: `run`'s default sandbox is deploy/pipeline.yaml; --param still applies.
    out = tmp_path / "out"
    profile = tmp_path / "buyers.yaml"
    profile.write_text(BUYERS)
    result = run_cli(
        "run", "--profile", str(profile), "--seed", "1", "--param", "StreamPrefix=tpl",
        "--param", "S3BufferIntervalSeconds=7", "--rate", "100", "--duration", "2s",
        "--output-dir", str(out), "--quiet", "--no-metrics", "--summary-json", str(tmp_path / "summary.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    run_id = summary["run_id"]
    assert sorted(summary["streams"]) == ["tpl", "tpl-opensearch"]
    # The hints the audit checks objects against are the template's, with the override.
    assert summary["buffer_hints"]["tpl"] == {"interval_s": 7.0, "size_mib": 128}
    rows = parquet_rows(out)
    assert {r["run_id"] for r in rows} == {run_id}
    assert sorted(r["seq"] for r in rows) == list(range(len(rows)))
    _check_recipe(rows)
    assert {r["amount_category"] for r in rows} >= {"high", "low"}
    report = _audit(out, run_id)["tpl"]
    assert (report["missing"], report["duplicates"]) == (0, 0)
    assert report["accepted"] == report["delivered_unique"] == len(rows) > 0


def test_serve_template_then_run_against_it(tmp_path: Path) -> None:
    # The done-when: `local serve --template deploy/pipeline.yaml`, then a `run` against
    # it; the S3 stream's objects are Parquet rows with the trace fields and the recipe's
    # enrichment, and the audit balances. A --param visibly changes the served streams.
    out = tmp_path / "out"
    proc, url = start_local_serve(
        "--output", str(out), "--template", str(SHIPPED), "--param", "StreamPrefix=served",
        "--param", "S3BufferIntervalSeconds=900",
    )  # fmt: skip
    try:
        fh = botocore.session.get_session().create_client(
            "firehose", region_name="us-east-1", endpoint_url=url,
            aws_access_key_id="test", aws_secret_access_key="test",
        )  # fmt: skip
        assert sorted(fh.list_delivery_streams()["DeliveryStreamNames"]) == ["served", "served-opensearch"]
        described = fh.describe_delivery_stream(DeliveryStreamName="served")["DeliveryStreamDescription"]
        s3 = described["Destinations"][0]["ExtendedS3DestinationDescription"]
        assert s3["BufferingHints"] == {"SizeInMBs": 128, "IntervalInSeconds": 900}
        profile = tmp_path / "buyers.yaml"
        profile.write_text(BUYERS)
        result = run_cli(
            "run", "--endpoint-url", url, "--stream", "served", "--stream", "served-opensearch",
            "--profile", str(profile), "--seed", "2", "--rate", "100", "--duration", "2s",
            "--output-dir", str(out), "--quiet", "--no-metrics", "--summary-json", str(tmp_path / "s.json"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        proc.send_signal(signal.SIGTERM)  # a clean stop delivers what is buffered
        assert proc.wait(60) == 0, proc.communicate()[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    run_id = orjson.loads((tmp_path / "s.json").read_bytes())["run_id"]
    rows = parquet_rows(out)
    assert {r["run_id"] for r in rows} == {run_id}
    assert sorted(r["seq"] for r in rows) == list(range(len(rows)))
    assert all(r["event_id"] for r in rows)
    _check_recipe(rows)
    assert {r["amount_category"] for r in rows} >= {"high", "low"}
    streams = _audit(out, run_id)
    for name in ("served", "served-opensearch"):
        assert (streams[name]["missing"], streams[name]["duplicates"]) == (0, 0), streams[name]
        assert streams[name]["accepted"] == streams[name]["delivered_unique"] > 0
    assert streams["served"]["accepted"] == len(rows)
