"""The benchmark command runs end to end and reports sane fields (no timing assertions)."""

from __future__ import annotations

import json

from tests.helpers import run_cli


def test_bench_compare_reports_both_producers() -> None:
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
    assert set(report["medians"]) == {"loadgen", "reference"}
    for kind, m in report["medians"].items():
        assert m["events_per_s"] > 0, kind
        # Every event goes to both streams: records are twice the events (within a scrape).
        assert 1.5 < m["records_per_s"] / m["events_per_s"] < 2.5, kind
        assert 0 < m["cpu_us_per_record"] < 10_000, kind
        assert m["peak_rss_mb"] > 10, kind
        assert 0 < m["startup_s"] < 30, kind
    assert report["ratio_events_per_s"] > 0
    assert [t["kind"] for t in report["trials"]] == ["loadgen", "reference"]  # interleaved
    assert report["settings"]["streams"] == ["realtime-data-stream", "realtime-data-stream-opensearch"]


def test_bench_rejects_bad_settings() -> None:
    result = run_cli("bench", "--repeat", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
