"""`firehose-loadgen audit` against what a real local Firehose delivered for a traced run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from producer.audit import objects, trace
from producer.audit.runner import AuditReport, AuditRequest, run_audit
from tests.helpers import run_cli
from tests.integration.audit_support import OPENSEARCH, S3, delivery_log, event, traced_run


def _audit(out: Path, run_id: str) -> AuditReport:
    return asyncio.run(run_audit(AuditRequest(run_id=run_id, output_dir=out)))


def _by_stream(report: AuditReport) -> dict[str, dict[str, object]]:
    return {s.stream: s.to_dict() for s in report.streams}


def test_clean_run_is_reported_clean_with_latency_and_objects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with traced_run(out) as run:
        for _ in range(3):
            run.generate(400, pause_s=1.2)  # three buffers' worth at the 1 s interval
    report = _audit(out, run.run_id)
    assert report.clean
    for s in report.streams:
        assert (s.delivered_unique, s.missing, s.duplicates) == (1200, 0, 0), s.stream
        assert s.latency_s is not None and 0 < s.latency_s["p50"] <= s.latency_s["max"] < 10
        assert s.objects["count"] >= 3
    log = delivery_log(out)
    assert {e["stream"] for e in log} == {S3, OPENSEARCH}


def test_deleting_one_object_reports_exactly_its_records_missing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with traced_run(out) as run:
        for _ in range(3):
            run.generate(300, pause_s=1.2)
    s3_objects = [e for e in delivery_log(out) if e["stream"] == S3 and e["destination"] == "s3"]
    assert len(s3_objects) >= 2
    victim = s3_objects[len(s3_objects) // 2]
    path = out / victim["key"]
    seqs = sorted(t.seq for r in objects.records(path.read_bytes()) if (t := trace.from_record(r)))
    assert len(seqs) == victim["records"] > 0
    path.unlink()

    result = run_cli("audit", "--run-id", run.run_id, "--output-dir", str(out), "--json")
    assert result.returncode == 1, result.stderr  # findings
    audit = orjson.loads(result.stdout)["streams"]
    assert audit[S3]["missing"] == len(seqs)
    assert audit[S3]["missing_first"] == seqs[:10]
    assert audit[S3]["objects_gone"] == [victim["key"]]
    assert audit[S3]["delivered_unique"] == 900 - len(seqs)
    assert audit[OPENSEARCH]["missing"] == 0, "the other stream is untouched"


def test_malformed_records_are_processing_failed_not_missing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with traced_run(out, transform=True) as run:
        run.generate(200)
        # deploy/lambda/transform.py fails a non-numeric amount: ProcessingFailed, error prefix.
        bad = run.generate(25, amount="two hundred")
        run.generate(200)
    report = _by_stream(_audit(out, run.run_id))
    s3 = report[S3]
    assert s3["error_output"] == {"processing-failed": len(bad)}
    assert s3["missing"] == 0
    assert s3["delivered_unique"] == 400
    error_objects = [e for e in delivery_log(out) if e["destination"] == "s3-error:processing-failed"]
    assert sum(e["records"] for e in error_objects) == len(bad)
    # The OpenSearch stream has no transform: everything is delivered there.
    assert report[OPENSEARCH]["delivered_unique"] == 425


def test_records_resent_by_a_whole_call_retry_are_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with traced_run(out) as run:
        first = run.generate(300)
        # The fault: a PutRecordBatch that timed out on the client after the service accepted it,
        # resent whole (what a retry of the whole call does), on the S3 stream only.
        run.send(first[100:220], streams=[S3], resend=True)
        run.generate(100)
    report = _by_stream(_audit(out, run.run_id))
    assert report[S3]["duplicates"] == 120
    assert report[S3]["duplicates_first"] == list(range(100, 110))
    assert report[S3]["missing"] == 0
    assert report[OPENSEARCH]["duplicates"] == 0


def test_dead_lettered_records_are_not_expected(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with traced_run(out) as run:
        run.generate(50)
        given_up = [event(run.run_id, 50 + i) for i in range(5)]
        run.generated += 5  # generated, never accepted: the producer spooled them
        run.generate(50)
    run.write_summary(dead_letters=[(name, d) for name in run.streams for d in given_up])
    report = _audit(out, run.run_id)
    assert report.clean
    assert {s.stream: (s.accepted, s.dead_lettered, s.missing) for s in report.streams} == {
        S3: (100, 5, 0),
        OPENSEARCH: (100, 5, 0),
    }


def test_html_and_table_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with traced_run(out) as run:
        run.generate(100)
    html = tmp_path / "report.html"
    result = run_cli("audit", "--run-id", run.run_id, "--output-dir", str(out), "--html", str(html))
    assert result.returncode == 0, result.stderr
    assert S3 in result.stdout and "delivered exactly once" in result.stdout
    page = html.read_text()
    assert page.count("<svg") >= 4
    # Nothing to fetch: no scripts, stylesheets, images, fonts or frames.
    for fetch in ("<script", "<link", "src=", "href=", "url(", "@import", "<iframe"):
        assert fetch not in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run-id", "20990101T000000Z-nosuch"], "unknown run id"),
        (["--run-id", "x", "--output-dir", "/nonexistent/folder"], "no such folder"),
        (["--run-id", "../../etc/passwd"], "is not a run id"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "runs").mkdir()
    result = run_cli("audit", "--output-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_audit_of_a_real_run_is_clean(tmp_path: Path) -> None:
    """`run` then `audit` on the default local target. Needs `run` to stamp run_id and seq."""
    out = tmp_path / "out"
    ran = run_cli(
        "run", "--duration", "3s", "--rate", "300", "--output-dir", str(out), "--quiet", "--seed", "3"
    )
    assert ran.returncode == 0, ran.stderr
    (summary,) = (out / "runs").glob("*.json")
    run_id = orjson.loads(summary.read_bytes())["run_id"]
    result = run_cli("audit", "--run-id", run_id, "--output-dir", str(out), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = orjson.loads(result.stdout)
    assert report["clean"] is True
    for name, s in report["streams"].items():
        assert s["delivered_unique"] == s["accepted"] == report["events_generated"] > 600, name
        # A local run records the hints its streams were built with: deploy/pipeline.yaml's
        # defaults (S3: 300 s / 128 MiB for Parquet; OpenSearch: 60 s / 5 MiB).
        expected = (60.0, 5) if name.endswith("-opensearch") else (300.0, 128)
        assert (s["hints"]["interval_s"], s["hints"]["size_mib"]) == expected, name


def test_audit_of_a_run_without_trace_fields_says_why(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = run_cli(
        "run", "--duration", "1s", "--rate", "100", "--output-dir", str(out), "--quiet", "--no-trace-fields"
    )
    assert ran.returncode == 0, ran.stderr
    (summary,) = (out / "runs").glob("*.json")
    run_id = orjson.loads(summary.read_bytes())["run_id"]
    result = run_cli("audit", "--run-id", run_id, "--output-dir", str(out))
    assert result.returncode == 1
    assert "carries run_id/seq: was the run made with --no-trace-fields" in result.stdout
