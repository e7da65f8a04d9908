"""Billed bytes are what the endpoint received, rounded up per record: the producer's count
against the books of a real server on 127.0.0.1 (tests/faultserver.py) that refuses records
and drops connections, so retries and possible duplicates are in play."""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from typing import Literal

import orjson
import pytest

from producer import pipeline
from producer.delivery.retry import RetryPolicy
from tests.faultserver import STREAM, Faults, FaultServer, deliver_to_one_stream
from tests.helpers import run_cli

EVENTS = 600
# Around every boundary the rounding has, and far past it (a record of many increments).
PADS = [0, 1, 400, 5_000, 5_088, 5_089, 5_090, 10_200, 10_300, 60_000]


def _expected(sizes: list[int]) -> int:
    return sum(5_120 * math.ceil(size / 5_120) for size in sizes)


def _record(i: int) -> bytes:
    # {"event_id":"eN","pad":"..."}: the padding puts records on both sides of 5,120 bytes.
    rng = random.Random(i)
    pad = rng.choice(PADS) + rng.randrange(3)
    return orjson.dumps({"event_id": f"e{i}", "pad": "x" * pad})


@pytest.mark.parametrize("sender", ["lean", "botocore"])
def test_billed_bytes_equal_the_endpoint_s_received_records_rounded_up(
    tmp_path: Path, sender: Literal["lean", "botocore"]
) -> None:
    # The lean sender holds records as base64 (its fast path must not misjudge sizes near 5 KB),
    # botocore as they are; both must count exactly what the endpoint took.
    faults = Faults(record_fail_rate=0.25, reset_rate=0.05, status_rate=0.05)
    with FaultServer(faults) as server:
        stats, reasons = asyncio.run(
            deliver_to_one_stream(
                server.url,
                sender,
                tmp_path / "dl.jsonl",
                EVENTS,
                RetryPolicy(max_attempts=30, base_s=0.001, cap_s=0.01),
                batch_records=50,
                record=_record,
            )
        )
        sizes = server.sizes[STREAM]
        resets = server.resets
    assert reasons == [] and stats.accepted == EVENTS == len(sizes)
    assert stats.failed_record_attempts > 0  # retries happened
    # Calls cut unanswered (a few calls in, by chance) make possible duplicates, billed once here.
    assert (stats.possible_duplicates > 0) == (resets > 0)
    assert max(sizes) > 5 * 5_120 and min(sizes) < 5_120  # the sizes span the increments
    assert stats.billed_bytes == _expected(sizes)
    assert stats.bytes_sent == sum(sizes)


def test_the_run_summary_bills_what_the_endpoint_received_and_prices_it(tmp_path: Path) -> None:
    faults = Faults(record_fail_rate=0.2)
    with FaultServer(faults) as server:
        result = run_cli(
            "run", "--endpoint-url", server.url, "--rate", "300", "--duration", "3s",
            "--no-metrics", "--log-format", "text",
            "--output-dir", str(tmp_path), "--summary-json", str(tmp_path / "s.json"),
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        summary = orjson.loads((tmp_path / "s.json").read_bytes())
        received = {name: list(server.sizes.get(name, [])) for name in pipeline.DEFAULT_STREAMS}
    total = 0
    for name in pipeline.DEFAULT_STREAMS:
        s = summary["streams"][name]
        assert s["accepted"] == len(received[name]) > 0
        assert s["billed_bytes"] == _expected(received[name])
        total += s["billed_bytes"]
    cost = summary["cost"]
    assert cost["region"] == "us-east-1" and cost["billed_bytes"] == total
    assert cost["estimated_cost_usd"] > 0 and cost["per_month_usd"] > cost["per_hour_usd"] > 0
    # The mixed profile's events are a few hundred bytes: the bill is many times the bytes.
    assert cost["billed_to_sent"] > 5
    assert set(cost["streams"]) == set(pipeline.DEFAULT_STREAMS)
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("cost: ")]
    assert "us-east-1 as published" in line and "/month" in line


def test_a_region_without_prices_is_named_not_guessed(tmp_path: Path) -> None:
    with FaultServer() as server:
        result = run_cli(
            "run", "--endpoint-url", server.url, "--region", "ap-nowhere-1", "--rate", "50",
            "--duration", "1s", "--no-metrics", "--quiet",
            "--output-dir", str(tmp_path), "--summary-json", str(tmp_path / "s.json"),
            timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cost = orjson.loads((tmp_path / "s.json").read_bytes())["cost"]
    assert cost["error"].startswith("no price table for ap-nowhere-1") and cost["billed_bytes"] > 0
    assert "estimated_cost_usd" not in cost
