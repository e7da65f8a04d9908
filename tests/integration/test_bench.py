"""The benchmark command runs end to end and reports sane fields (no timing assertions)."""

from __future__ import annotations

import json

from tests.helpers import run_cli


def test_bench_compare_reports_all_three_producers() -> None:
    result = run_cli(
        "bench",
        "--rate",
        "2000",
        "--duration",
        "2s",
        "--warmup",
        "1s",
        "--repeat",
        "1",
        "--compare",
        "--json",
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    kinds = ["loadgen", "reference", "stock-client"]
    assert list(report["medians"]) == kinds
    for kind, m in report["medians"].items():
        assert m["events_per_s"] > 0, kind
        # Every event goes to both streams: records are twice the events (within a scrape).
        assert 1.5 < m["records_per_s"] / m["events_per_s"] < 2.5, kind
        assert 0 < m["cpu_us_per_record"] < 10_000, kind
        assert m["peak_rss_mb"] > 10, kind
        assert -0.5 < m["rss_growth"] < 1.0, kind  # a number, not NaN (NaN fails both)
        assert 0 < m["startup_s"] < 30, kind
    for trial in report["trials"]:
        # Every producer exports loadgen_clock_seconds, so windows are on its own clock.
        assert trial["window_clock"] == "producer", trial["kind"]
        assert trial["windows"] and all(w > 0 for w in trial["windows"]), trial["kind"]
        assert len(trial["rss_mb"]) == len(trial["windows"]) + 1, trial["kind"]
        assert trial["peak_rss_mb"] >= 0.9 * max(trial["rss_mb"]), trial["kind"]  # both MB
    assert report["ratio_events_per_s"] > 0 and report["ratio_vs_stock_client_events_per_s"] > 0
    assert [t["kind"] for t in report["trials"]] == kinds  # interleaved
    assert report["settings"]["streams"] == ["realtime-data-stream", "realtime-data-stream-opensearch"]


def test_bench_rejects_bad_settings() -> None:
    result = run_cli("bench", "--repeat", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
