"""Terminal table, JSON and HTML from hand-made reconciliations."""

from __future__ import annotations

import orjson

from producer.audit import output, report_html, report_text, svg
from producer.audit.findings import ObjectStat, StreamFindings
from producer.audit.hints import BufferHints
from producer.audit.reconcile import reconcile
from producer.audit.runinfo import RunInfo, StreamSent
from producer.audit.runner import AuditReport
from producer.audit.soak import soak_cost
from producer.summary import RunSummary
from producer.telemetry.cost import run_cost


def _report(label: str | None, lose: int = 0) -> AuditReport:
    run = RunInfo(
        "20260101T000000Z-abcdef",
        100,
        RunSummary(kind="run", target="", duration_s=0.0, streams={}),
        {"s": StreamSent(100, 0, 3, 4, 0)},
    )
    found = StreamFindings("s", "s3")
    for seq in range(lose, 100):
        found.delivered(seq, 1000.0 + seq / 100, 1001.5 + seq / 100)
    found.objects = [
        ObjectStat(f"k{i}", 50, 20_000 + i, 1001.0 + i, 1000.0 + i, 1000.9 + i, 1000.0) for i in range(2)
    ]
    audit = reconcile(run, found, BufferHints(1.0, 1))
    return AuditReport(run.run_id, "<mixed>", "local", 100, 1.0, [audit], label=label)


def test_table_lists_every_number_and_the_first_missing() -> None:
    text = report_text.render([_report(None, lose=3)])
    header, rule, row = text.splitlines()[1:4]
    assert set(rule.replace(" ", "")) == {"-"}
    assert header.split()[:6] == ["stream", "accepted", "delivered", "missing", "dups", "errors"]
    assert row.split()[:6] == ["s", "100", "97", "3", "0", "0"]
    assert "s: 3 missing, first seq: 0, 1, 2" in text
    assert text.rstrip().endswith("PROBLEMS: see below")


def test_comparison_json_and_table() -> None:
    reports = [_report("1s/1MiB"), _report("5s/1MiB")]
    body = orjson.loads(output.as_json(reports))
    assert [r["label"] for r in body["compare"]] == ["1s/1MiB", "5s/1MiB"]
    assert body["compare"][0]["streams"]["s"]["latency_s"]["p50"] == 1.5
    text = report_text.render(reports)
    assert "1s/1MiB  s" in text and "5s/1MiB  s" in text


def test_html_is_self_contained_and_escaped() -> None:
    page = report_html.render([_report(None)])
    assert "&lt;mixed&gt;" in page and "<mixed>" not in page
    assert page.count("<svg") >= 4
    for fetch in ("<script", "<link", "src=", "href=", "url(", "@import"):
        assert fetch not in page


def test_empty_chart_says_so() -> None:
    assert "no data" in svg.chart("Rate", {"s": []}, "x", "y")


def test_soak_prices_each_buffer_setting_with_the_objects_it_made() -> None:
    reports = [_report("1s/1MiB"), _report("5s/1MiB")]
    reports[1].streams[0].objects["count"] = 2_000
    for report in reports:
        report.cost = soak_cost(run_cost("us-east-1", {"s": 5_120 * 100}, 1.0, bytes_sent=40_000), report)
    first, second = (r.cost for r in reports)
    assert first is not None and second is not None
    assert first["objects"] == {"s": 2} and second["objects"] == {"s": 2_000}
    assert second["dynamic_partitioning_objects_usd"] == 0.01  # $0.005 per 1,000 objects
    text = report_text.render(reports)
    assert "5s/1MiB cost: 0.51 MB billed" in text and "2,000 S3 objects" in text
    assert orjson.loads(output.as_json(reports))["compare"][1]["cost"]["objects"] == {"s": 2_000}
    # No price table: the objects are counted, nothing is priced.
    unpriced = soak_cost(run_cost("xx-east-9", {"s": 5_120}, 1.0), reports[0])
    assert unpriced is not None and "dynamic_partitioning_objects_usd" not in unpriced
    assert soak_cost(None, reports[0]) is None
