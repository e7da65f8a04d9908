"""`firehose-loadgen soak` on the embedded local Firehose with short buffer intervals."""

from __future__ import annotations

import math
import time
from pathlib import Path

import botocore.session
import orjson

from producer import pipeline
from producer.audit.hints import BufferHints
from producer.audit.soak import LoadOptions, SoakPlan, soak_local
from tests.helpers import run_cli
from tests.integration.audit_support import TracedRun, new_run_id

RATE = 200  # events/s
LOAD_S = 4.0


def traced_sender(
    load: LoadOptions, endpoint: str | None, region: str | None, out: Path, summary: Path
) -> int:
    """Stands in for the run command until it stamps run_id/seq: steady traced load for LOAD_S."""
    assert endpoint is not None and endpoint.startswith("http://127.0.0.1:")
    client = botocore.session.get_session().create_client(
        "firehose",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    run = TracedRun(out, new_run_id(), load.streams, endpoint, client)
    started = time.monotonic()
    while time.monotonic() - started < LOAD_S:
        run.generate(RATE // 10, pause_s=0.1)
    run.write_summary()
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_bytes((out / "runs" / f"{run.run_id}.json").read_bytes())
    return 0


def test_soak_waits_for_the_flush_and_compares_buffer_settings(tmp_path: Path) -> None:
    settings = (BufferHints(1.0, 1), BufferHints(2.0, 1))
    lines: list[str] = []
    plan = SoakPlan(
        LoadOptions("mixed", None, None, pipeline.DEFAULT_STREAMS, 0, True),
        tmp_path / "out",
        settings,
        flush_margin_s=1.0,
        log=lines.append,
        run_load=traced_sender,
    )
    reports = soak_local(plan)
    assert [r.label for r in reports] == ["1s/1MiB", "2s/1MiB"]
    assert any("waiting 3s" in line for line in lines), lines  # largest interval 2 s + 1 s margin
    counts = {}
    for report, hints in zip(reports, settings, strict=True):
        assert report.clean, report.to_dict()
        for s in report.streams:
            assert s.missing == 0 and s.duplicates == 0
            assert s.delivered_unique == s.accepted > 0
            assert s.hints is not None and s.hints["interval_s"] == hints.interval_s
            assert s.hints["consistent"], s.hints
            # Steady load over LOAD_S seconds: about one object per interval.
            expected = LOAD_S / hints.interval_s
            assert math.floor(expected) - 1 <= s.objects["count"] <= math.ceil(expected) + 1, s.objects
            counts[(hints.interval_s, s.stream)] = s.objects["count"]
    # A longer interval makes fewer, larger objects for the same load.
    for name in pipeline.DEFAULT_STREAMS:
        assert counts[(2.0, name)] < counts[(1.0, name)]


def test_soak_command_30s_reports_nothing_missing(tmp_path: Path) -> None:
    """The real command end to end. Needs `run` to stamp run_id and seq on every event."""
    out = tmp_path / "out"
    stem = tmp_path / "report"
    duration_s, interval_s = 30, 2
    result = run_cli(
        "soak",
        "--profile", "mixed",
        "--duration", f"{duration_s}s",
        "--rate", "100",
        "--compare", f"{interval_s}s/1",
        "--flush-margin", "2s",
        "--output-dir", str(out),
        "--report", str(stem),
        "--quiet",
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = orjson.loads(stem.with_suffix(".json").read_bytes())
    assert stem.with_suffix(".html").is_file()
    assert report["clean"] is True
    for name in pipeline.DEFAULT_STREAMS:
        s = report["streams"][name]
        assert s["accepted"] == report["events_generated"] > 2000
        assert (s["missing"], s["duplicates"]) == (0, 0)
        assert s["delivered_unique"] == s["accepted"]
        assert s["hints"]["consistent"], s["hints"]
        count = s["objects"]["count"]
        assert duration_s // (interval_s + 1) <= count <= duration_s // interval_s + 2, count
        # The setting's cost: the mixed profile's records are under 5 KB, so 5,120 bytes each.
        assert report["cost"]["objects"][name] == count
        assert report["cost"]["streams"][name]["billed_bytes"] == 5_120 * s["accepted"]
    assert report["cost"]["estimated_cost_usd"] > 0 and "dynamic_partitioning_objects_usd" in report["cost"]
