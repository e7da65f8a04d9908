"""The soak's figures and answer: targets met or not, the cheapest setting meeting every one,
the S3 PUT model (multipart below 60 s), CloudWatch figures, and a CloudWatch that stalls or
resets the connection (a warning and missing figures, within the bound)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from producer.audit import cloudwatch, verdict
from producer.audit.soak import poll_cloudwatch
from producer.telemetry import cost
from tests.helpers import SilentServer


def _entry(label: str, p99: float, median_mib: float, hour: float, clean: bool = True) -> dict[str, Any]:
    streams = {"s": {"p99_s": p99, "object_median_bytes": median_mib * verdict.MIB, "objects": 3}}
    e: dict[str, Any] = {
        "label": label,
        "params": {"S3BufferIntervalSeconds": 1},
        "clean": clean,
        "streams": streams,
        "cost_per_hour_usd": hour,
    }
    targets = verdict.Targets(max_freshness_s=120, min_object_mib=32, max_cost_per_hour_usd=1.0)
    e["targets"] = verdict._check(e, targets)
    e["meets_targets"] = all(t["met"] for t in e["targets"].values())
    return e


def test_the_cheapest_setting_meeting_every_target_is_recommended() -> None:
    entries = [
        _entry("fast", p99=20, median_mib=8, hour=0.9),  # objects too small
        _entry("big", p99=100, median_mib=64, hour=0.5),
        _entry("bigger", p99=110, median_mib=96, hour=0.4),
        _entry("cheap-but-lossy", p99=100, median_mib=64, hour=0.1, clean=False),
    ]
    assert entries[0]["targets"]["min_object_mib"]["met"] is False
    answer = verdict.recommend(entries)
    assert answer["setting"] == "bigger"
    assert answer["line"].startswith("recommended: bigger") and "$0.4000/hour" in answer["line"]


def test_a_target_no_setting_met_is_named_with_the_closest_figure() -> None:
    entries = [_entry("a", p99=300, median_mib=64, hour=0.5), _entry("b", p99=200, median_mib=64, hour=0.5)]
    answer = verdict.recommend(entries)
    assert answer["setting"] is None and answer["unmet"] == ["max_freshness_s"]
    assert "no setting met --max-freshness (closest: p99 latency 200.0 s > 120 s)" in answer["line"]
    split = [_entry("a", p99=20, median_mib=8, hour=0.5), _entry("b", p99=300, median_mib=64, hour=0.5)]
    assert "no setting met them all" in verdict.recommend(split)["line"]


def test_s3_puts_per_object_multipart_below_60s() -> None:
    assert cost.s3_puts_per_object(60, 100 * verdict.MIB) == 1
    assert cost.s3_puts_per_object(300, 1) == 1
    # Below 60 s: initiate + ceil(size / 5 MiB) parts + complete.
    assert cost.s3_puts_per_object(30, 1) == 3
    assert cost.s3_puts_per_object(0, 12 * verdict.MIB) == 2 + 3
    priced = cost.requests_usd("us-east-1", 1000, 1_000_000)
    assert priced == {"s3_put_usd": 0.005, "lambda_requests_usd": 0.2}
    assert cost.requests_usd("xx-east-9", 1, 1) is None


def test_cloudwatch_figures_and_the_last_minute() -> None:
    metrics = {
        "DeliveryToS3.DataFreshness": [[0.0, 10.0], [60.0, 30.0], [120.0, 20.0]],
        "ExecuteProcessing.Duration": [[0.0, 100.0], [60.0, 300.0]],
        cloudwatch.INVOCATIONS: [[0.0, 4.0], [60.0, 6.0]],
        "IncomingBytes": [[0.0, 600.0], [60.0, 1200.0]],
        "BytesPerSecondLimit": [[0.0, 100.0]],
        "IncomingRecords": [[120.0, 5.0]],
    }
    figures = cloudwatch.figures(metrics)
    assert figures["freshness_p50_s"] == 20.0 and figures["freshness_max_s"] == 30.0
    assert figures["lambda_invocations"] == 10.0
    assert figures["incoming_bytes_per_s_peak"] == 20.0 and figures["limit_used"] == 0.2
    assert figures["backup_freshness_max_s"] is None  # no data: missing, not 0
    assert cloudwatch.published({"s": metrics}, end=150.0)
    assert not cloudwatch.published({"s": metrics}, end=185.0)


@pytest.fixture(params=["stall", "reset"])
def bad_cloudwatch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    server = SilentServer(request.param)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "t")
    yield server
    server.close()


def test_an_unreachable_cloudwatch_is_missing_figures_within_the_bound(bad_cloudwatch: SilentServer) -> None:
    started = time.monotonic()
    series, problem = asyncio.run(
        poll_cloudwatch("us-east-1", {"s": "s3"}, time.time() - 10, time.time(), wait_s=2.0, poll_s=0.5)
    )
    took = time.monotonic() - started
    assert series is None
    assert problem is not None and problem.startswith("unreachable") and "within 2s" in problem
    assert bad_cloudwatch.calls >= 1
    assert took < 2.0 + 3.0, took  # the bound, plus one call's own timeout at most


def test_chart_axes_below_one_have_ticks() -> None:
    """Median object sizes in MiB and costs per hour are often below 1: the axis needs ticks."""
    from producer.audit import svg

    drawn = svg.chart("cost", {"#1": [(0.0, 0.27)], "#2": [(1.0, 0.26)]}, "setting", "USD/hour", kind="bars")
    assert ">0.1<" in drawn and ">0.2<" in drawn, drawn
