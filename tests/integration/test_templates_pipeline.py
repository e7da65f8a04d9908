"""Users' own events through the shipped pipeline in the sandbox: a 12-field template with an
entity pool and a conditional field, and a KDG template copied from KDG's help page unchanged.
Each gets its Glue columns from `profiles schema --format glue`, pasted into a copy of
deploy/pipeline.yaml that cfn-lint accepts; the S3 stream's Parquet rows hold the user's fields
and the audit finds every event once on both streams."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from producer.audit import objects
from tests.helpers import REPO, parquet_rows, run_cli, start_local_serve
from tests.unit.test_templates_kdg import KDG_JSON

SHIPPED = REPO / "deploy" / "pipeline.yaml"
# Buffers of a second, so the objects are written while the test waits for the run to end.
SHORT_BUFFERS = ("--param", "S3BufferIntervalSeconds=1", "--param", "OpenSearchBufferIntervalSeconds=1")

ORDERS = """
name: orders
description: a shop's orders, 12 fields
mix: {orders: 1}
generators:
  orders:
    kind: template
    pool: 200
    entities:
      customer:
        count: 50
        fields:
          user_id: {sequence: 1, format: "cust_{:03d}"}
          country: {faker: country_code}
          tier: {choice: {basic: 8, gold: 2}}
    sessions: {entity: customer, events: {min: 1, max: 6}, concurrent: 10}
    fields:
      event_id: {uuid: true}
      user_id: {entity: customer.user_id}
      session_id: {session: id}
      event_type: {choice: {view: 50, cart: 30, purchase: 20}}
      amount: {number: lognormal, mu: 4.0, sigma: 0.7, round: 2, when: {event_type: purchase}}
      product_id: {number: zipf, s: 1.1, n: 300, format: "sku-{:05d}"}
      quantity: {number: uniform, min: 1, max: 4, round: 0}
      timestamp: {timestamp: iso}
      country: {entity: customer.country}
      tier: {entity: customer.tier}
      email: {faker: email}
      device: {object: {os: {choice: [ios, android, web]}, app_version: {faker: numerify, args: ["#.##"]}}}
"""


def _pipeline_with_columns(profile: Path, copy: Path, transform: bool = True) -> str:
    """deploy/pipeline.yaml with the Glue table's columns replaced by `profiles schema`'s, as
    a user pastes them; without the recipe's transform when ``transform`` is False (it needs
    event_id, event_type and timestamp, which KDG's sensor events do not have)."""
    result = run_cli("profiles", "schema", str(profile), "--format", "glue")
    assert result.returncode == 0, result.stderr
    columns = result.stdout.rstrip("\n").split("\n")
    assert columns[0] == "Columns:"
    lines = SHIPPED.read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == "Columns:")
    end = start + 1
    while lines[end].strip().startswith("- {Name:"):
        end += 1
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    text = "\n".join([*lines[:start], *(indent + c for c in columns), *lines[end:]])
    if not transform:
        enabled = "ProcessingConfiguration:\n          Enabled: true"
        assert text.count(enabled) == 2
        text = text.replace(enabled, "ProcessingConfiguration:\n          Enabled: false")
    copy.write_text(text)
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", str(copy)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert orjson.loads(lint.stdout or "[]") == [], lint.stdout
    assert lint.returncode == 0, lint.stderr
    return result.stdout


def _audit_clean(out: Path, run_id: str) -> dict[str, Any]:
    audit = run_cli("audit", "--run-id", run_id, "--output-dir", str(out), "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    streams: dict[str, Any] = orjson.loads(audit.stdout)["streams"]
    for name, report in streams.items():
        assert (report["missing"], report["duplicates"]) == (0, 0), (name, report)
        assert report["accepted"] == report["delivered_unique"] > 0, (name, report)
    return streams


def test_a_12_field_template_runs_through_the_pipeline_its_schema_describes(tmp_path: Path) -> None:
    profile = tmp_path / "orders.yaml"
    profile.write_text(ORDERS)
    pipeline = tmp_path / "pipeline.yaml"
    glue = _pipeline_with_columns(profile, pipeline)
    assert '  - {Name: device, Type: "struct<os:string,app_version:string>"}' in glue
    out = tmp_path / "out"
    summary = tmp_path / "summary.json"
    result = run_cli(
        "run", "--profile", str(profile), "--template", str(pipeline), *SHORT_BUFFERS, "--seed", "1",
        "--rate", "200", "--duration", "2s", "--output-dir", str(out), "--quiet", "--no-metrics",
        "--summary-json", str(summary),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_id = orjson.loads(summary.read_bytes())["run_id"]
    rows = parquet_rows(out)
    assert sorted(r["seq"] for r in rows) == list(range(len(rows))) and len(rows) > 100
    assert {r["run_id"] for r in rows} == {run_id}
    user_fields = [
        "event_id", "user_id", "session_id", "event_type", "amount", "product_id", "quantity",
        "timestamp", "country", "tier", "email", "device",
    ]  # fmt: skip
    # The transform ran (the shipped Lambda, unchanged) and the conversion kept the user's columns.
    assert list(rows[0]) == [*user_fields, "source", "run_id", "seq"]
    customers: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for row in rows:
        assert (row["amount"] is not None) == (row["event_type"] == "purchase"), row
        assert row["product_id"].startswith("sku-") and 1 <= row["quantity"] <= 4
        assert row["device"]["os"] in ("ios", "android", "web") and row["source"] == "orders"
        customers[row["user_id"]].add((row["country"], row["tier"]))
    # An entity keeps its fields across its events; 50 customers at most.
    assert all(len(seen) == 1 for seen in customers.values()) and len(customers) <= 50
    assert {r["event_type"] for r in rows} == {"view", "cart", "purchase"}
    streams = _audit_clean(out, run_id)
    assert streams["realtime-data-stream"]["accepted"] == len(rows)


def test_a_kdg_template_from_its_help_page_runs_unchanged(tmp_path: Path) -> None:
    profile = tmp_path / "sensors.yaml"
    spec = {"mix": {"sensors": 1}, "generators": {"sensors": {"kind": "kdg", "template": KDG_JSON}}}
    profile.write_text(orjson.dumps(spec).decode())  # JSON is YAML
    pipeline = tmp_path / "pipeline.yaml"
    glue = _pipeline_with_columns(profile, pipeline, transform=False)
    # Glue keeps column names in lower case; the OpenX JSON SerDe matches keys case-insensitively.
    assert glue.splitlines()[1:4] == [
        "  - {Name: sensorid, Type: bigint}",
        "  - {Name: currenttemperature, Type: bigint}",
        "  - {Name: status, Type: string}",
    ]
    out = tmp_path / "out"
    proc, url = start_local_serve("--output", str(out), "--template", str(pipeline), *SHORT_BUFFERS)
    try:
        result = run_cli(
            "run", "--endpoint-url", url, "--profile", str(profile), "--seed", "2", "--rate", "200",
            "--duration", "2s", "--output-dir", str(out), "--quiet", "--no-metrics",
            "--summary-json", str(tmp_path / "s.json"),
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
    assert sorted(r["seq"] for r in rows) == list(range(len(rows))) and len(rows) > 100
    for row in rows:
        assert 0 <= row["sensorid"] <= 50 and 10 <= row["currenttemperature"] <= 150
        assert row["status"] in ("OK", "FAIL", "WARN") and row["run_id"] == run_id
    _audit_clean(out, run_id)


ACCESS_LOG = (
    '{{internet.ip}} - - [{{date.now("DD/MMM/YYYY:HH:mm:ss Z")}}] '
    '"GET /products/{{random.number(500)}}?trace={{loadgen.run_id}}/{{loadgen.seq}} HTTP/1.1" '
    '{{random.weightedArrayElement({"weights": [0.9, 0.1], "data": [200, 404]})}}'
)


def test_text_records_are_sent_as_rendered_and_the_audit_traces_them(tmp_path: Path) -> None:
    # An access-log line is not JSON: the shipped transform fails every one to the error prefix,
    # and the audit still accounts for each by the run id and seq the line carries.
    profile = tmp_path / "access.yaml"
    spec = {"mix": {"access": 1}, "generators": {"access": {"kind": "kdg", "template": ACCESS_LOG}}}
    profile.write_text(orjson.dumps(spec).decode())
    out = tmp_path / "out"
    summary = tmp_path / "s.json"
    result = run_cli(
        "run", "--profile", str(profile), *SHORT_BUFFERS, "--rate", "100", "--duration", "1s",
        "--output-dir", str(out), "--quiet", "--no-metrics", "--summary-json", str(summary),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_id = orjson.loads(summary.read_bytes())["run_id"]
    audit = run_cli("audit", "--run-id", run_id, "--output-dir", str(out), "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    for name, report in orjson.loads(audit.stdout)["streams"].items():
        assert report["accepted"] > 50, (name, report)
        assert report["error_output"] == {"processing-failed": report["accepted"]}, (name, report)
        assert (report["missing"], report["errors_untraced"], report["untraced_records"]) == (0, 0, 0)
    failed = [p for p in (out / "realtime-data-bucket" / "errors").rglob("*") if p.is_file()]
    raw = [r for p in failed for _, r in objects.error_envelopes(p.read_bytes())]
    assert raw and all(
        re.fullmatch(rb'\S+ - - \[.+\] "GET /products/\d+\?trace=[^/]+/\d+ HTTP/1.1" (200|404)', r)
        for r in raw
    )
