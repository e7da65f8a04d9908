"""run --check against a real local Firehose (quota, outage), and one run spread over shard
processes: --results-url file:// and s3:// (moto's server), merge, audit, a killed shard, and
the run-wide abort marker."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer import pipeline
from producer.cli.main import main
from producer.local.faults import FaultSettings
from producer.local.quotas import QuotaOverrides
from producer.telemetry.histogram import RELATIVE_ERROR, LogHistogram
from tests.helpers import REPO, CliResult, ThreadedLocalFirehose, run_cli

STREAM = "checks-stream"
QUIET = ("--quiet", "--no-metrics", "--linger", "50ms")


@pytest.fixture
def server(local_firehose: ThreadedLocalFirehose) -> ThreadedLocalFirehose:
    local_firehose.botocore_client().create_delivery_stream(**pipeline.stream_request(STREAM))
    return local_firehose


def _run_args(server: ThreadedLocalFirehose, out: Path, *extra: str) -> list[str]:
    return ["run", "--endpoint-url", server.url, "--stream", STREAM, "--output-dir", str(out), *QUIET, *extra]


def _start(*args: str, raw: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI in the background; with ``raw``, through tests/raw_latency.py."""
    head = ["-m", "tests.raw_latency", str(raw)] if raw is not None else ["-m", "producer"]
    return subprocess.Popen(
        [sys.executable, *head, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def _shard(
    server: ThreadedLocalFirehose, tmp: Path, url: str, run_id: str, i: int, n: int, *extra: str, **kw: object
) -> subprocess.Popen[str]:
    args = _run_args(server, tmp / f"shard{i}", "--rate", "60", "--run-id", run_id, "--results-url", url)
    return _start(*args, "--shard-index", str(i), "--shard-count", str(n), *extra, **kw)  # type: ignore[arg-type]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """The CLI's entry point in this process (no interpreter start-up): merge and audit."""

    def call(*args: str) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["firehose-loadgen", *args])
        with pytest.raises(SystemExit) as ended:
            main()
        out = capsys.readouterr()
        return CliResult(int(ended.value.code or 0), out.out, out.err)

    return call


def _summary(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def test_a_failed_check_exits_5_with_its_value_in_the_summary(
    server: ThreadedLocalFirehose, tmp_path: Path
) -> None:
    server.server.set_quotas(QuotaOverrides(records_per_s=40))
    result = run_cli(
        *_run_args(
            server, tmp_path, "--rate", "100", "--duration", "1s", "--summary-json", str(tmp_path / "s.json")
        ),
        "--check",
        "throttled_ratio<0.01",
        "--check",
        "put_latency_p99<30s",
    )
    assert result.returncode == 5, result.stderr
    summary = _summary(tmp_path / "s.json")
    throttled, latency = summary["checks"]
    assert throttled["expression"] == "throttled_ratio<0.01" and throttled["ok"] is False
    stream = summary["streams"][STREAM]
    attempts = stream["accepted"] + stream["failed_record_attempts"]
    assert throttled["value"] == pytest.approx(stream["throttled_records"] / attempts, abs=1e-6)
    assert throttled["value"] > 0.01 and latency["ok"] is True
    assert stream["sent"] == stream["accepted"]  # throttled, retried, all accepted: only the check fails
    assert "check throttled_ratio<0.01: " in result.stdout and "FAILED" in result.stdout


def test_an_abort_check_ends_the_run_early_through_the_drain(
    server: ThreadedLocalFirehose, tmp_path: Path
) -> None:
    check = "accepted_ratio>0.9 for 3s abort"
    started = time.monotonic()
    proc = _start(
        *_run_args(
            server, tmp_path, "--rate", "100", "--duration", "60s", "--summary-json", str(tmp_path / "s.json")
        ),
        "--check",
        check,
    )
    # Once a first window has passed (350 records: 3.5s), every call fails for 2.5s: the
    # 3-second window falls below 0.9, the run stops generating, drains once the outage is
    # over, and its books balance.
    while server.call(lambda: server.server.records_accepted.get(STREAM, 0)) < 350:
        assert proc.poll() is None and time.monotonic() - started < 60, proc.communicate()
        time.sleep(0.1)
    server.server.set_faults(FaultSettings(outage_start_s=0.0, outage_duration_s=2.5))
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 5, err
    assert took < 30, took
    summary = _summary(tmp_path / "s.json")
    assert summary["aborted"]["check"] == check
    assert f"aborting: check {check!r} failed" in err
    (verdict,) = summary["checks"]
    assert verdict["ok"] is False and verdict["value"] < 0.9 and verdict["failed_at_s"] < 30
    for s in summary["streams"].values():
        assert s["sent"] > 0 and s["sent"] == s["accepted"] + s["dead_lettered"] and s["lost"] == 0
    assert summary["schedule"]["shortfall_events"] == 0


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_three_shards_merge_into_one_run_that_audits_clean_and_a_killed_shard_is_named(
    server: ThreadedLocalFirehose, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    results = tmp_path / "results"
    url, run_id = f"file://{results}", "ci-run-1"
    procs = [
        _shard(server, tmp_path, url, run_id, i, 3, "--duration", "1s", raw=tmp_path / f"raw{i}.json")
        for i in range(3)
    ]
    # Alongside: shard 1 of another run, SIGKILLed while it sends.
    killed = _shard(server, tmp_path, url, "ci-run-killed", 1, 3, "--duration", "60s")
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert killed.poll() is None
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    merged_out = server.output_dir
    merged = cli(
        "merge", "--run-id", run_id, "--results-url", url, "--expect", "3", "--output-dir", str(merged_out),
        "--check", "put_latency_p99<30s",
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert "shards: 3 of 3" in merged.stdout
    summary = _summary(merged_out / "runs" / f"{run_id}.json")
    assert summary == _summary(results / run_id / "summary.json")
    shards = [_summary(results / run_id / "shards" / f"shard-{i}-of-3.json") for i in range(3)]
    stream = summary["streams"][STREAM]
    for key in ("sent", "accepted", "dead_lettered", "requests", "bytes_sent", "billed_bytes"):
        assert stream[key] == sum(s["streams"][STREAM][key] for s in shards), key
    assert summary["events_generated"] == sum(s["events_generated"] for s in shards)
    assert summary["complete"] is True and summary["shards"]["missing"] == []
    raw = [v for i in range(3) for v in orjson.loads((tmp_path / f"raw{i}.json").read_bytes())]
    put = LogHistogram.from_dict(stream["latency"]["put_record_batch"])
    assert put.count == len(raw) == stream["requests"]
    exact = _nearest_rank(raw, 0.99)
    assert abs(stream["latency"]["put_record_batch"]["p99_s"] - exact) <= RELATIVE_ERROR * exact + 1e-6
    assert summary["checks"][0]["ok"] is True

    # The killed run: its shards 0 and 2 ended (their summaries are the ones above), 1 did not.
    (results / "ci-run-killed" / "shards").mkdir(parents=True)
    for i in (0, 2):
        name = f"shard-{i}-of-3.json"
        (results / "ci-run-killed" / "shards" / name).write_bytes(
            (results / run_id / "shards" / name).read_bytes()
        )
    incomplete = cli(
        "merge", "--run-id", "ci-run-killed", "--results-url", url, "--expect", "3",
        "--output-dir", str(tmp_path / "m"),
    )  # fmt: skip
    assert incomplete.returncode == 4, incomplete.stderr
    assert "error: shard-1-of-3 of run ci-run-killed left no summary" in incomplete.stderr
    lost = _summary(tmp_path / "m" / "runs" / "ci-run-killed.json")
    assert lost["complete"] is False and lost["shards"]["missing"] == [1]

    server.stop()  # delivers what it buffered
    audit = cli("audit", "--run-id", run_id, "--output-dir", str(merged_out), "--json")
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr


@pytest.fixture
def moto_s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's server (tests/conftest.py) with the results bucket, and S3 calls pointed at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    import botocore.session

    s3 = botocore.session.get_session().create_client("s3", region_name="us-east-1", endpoint_url=moto_url)
    s3.create_bucket(Bucket="loadgen-results")
    return moto_url


def test_through_s3_an_abort_in_one_shard_stops_the_other_and_merge_judges_the_run(
    server: ThreadedLocalFirehose, moto_s3: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    url, run_id = "s3://loadgen-results/ci/runs", "ci-run-s3"
    # Shard 0 fails its own abort check as soon as records are accepted; shard 1 would go on
    # for a minute, and stops when it sees the marker.
    failing = _shard(
        server, tmp_path, url, run_id, 0, 2, "--duration", "60s", "--check", "accepted_ratio<0.01 abort"
    )
    other = _shard(server, tmp_path, url, run_id, 1, 2, "--duration", "60s")
    started = time.monotonic()
    _, err0 = failing.communicate(timeout=120)
    _, err1 = other.communicate(timeout=120)
    assert failing.returncode == 5, err0
    assert other.returncode == 0, err1
    assert time.monotonic() - started < 30, err0 + err1
    assert "aborting: shard-0-of-2 of this run failed check 'accepted_ratio<0.01 abort'" in err1
    merged = cli("merge", "--run-id", run_id, "--results-url", url, "--output-dir", str(tmp_path / "m"))
    assert merged.returncode == 5, merged.stderr
    summary = _summary(tmp_path / "m" / "runs" / f"{run_id}.json")
    assert summary["shards"]["found"] == [0, 1] and summary["complete"] is True
    assert summary["checks"][0]["ok"] is False and summary["checks"][0]["shards_judged"] == 1
    assert summary["aborted"]["check"] == "accepted_ratio<0.01 abort"
    import botocore.session

    s3 = botocore.session.get_session().create_client("s3", region_name="us-east-1", endpoint_url=moto_s3)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="loadgen-results", Prefix="ci/runs/")["Contents"]}
    assert {
        f"ci/runs/{run_id}/{k}" for k in ("abort.json", "summary.json", "shards/shard-0-of-2.json")
    } <= keys
    parts = [
        orjson.loads(
            s3.get_object(Bucket="loadgen-results", Key=f"ci/runs/{run_id}/shards/shard-{i}-of-2.json")[
                "Body"
            ].read()
        )
        for i in range(2)
    ]
    assert summary["streams"][STREAM]["sent"] == sum(p["streams"][STREAM]["sent"] for p in parts)


def test_workers_judge_checks_on_the_merged_run_and_relay_the_abort(
    server: ThreadedLocalFirehose, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    result = run_cli(
        *_run_args(server, tmp_path / "o", "--rate", "100", "--duration", "60s", "--workers", "2"),
        "--summary-json", str(tmp_path / "s.json"), "--run-id", "wrun", "--results-url", f"file://{results}",
        "--check", "accepted_ratio<0.01 abort", "--check", "put_latency_p99<30s",
    )  # fmt: skip
    assert result.returncode == 5, result.stderr
    summary = _summary(tmp_path / "s.json")
    assert summary["duration_s"] < 30 and summary["aborted"]["check"] == "accepted_ratio<0.01 abort"
    by = {c["expression"]: c for c in summary["checks"]}
    assert (
        by["accepted_ratio<0.01 abort"]["ok"] is False
        and by["accepted_ratio<0.01 abort"]["shards_judged"] == 2
    )
    put = LogHistogram.from_dict(summary["streams"][STREAM]["latency"]["put_record_batch"])
    assert by["put_latency_p99<30s"] == {
        "expression": "put_latency_p99<30s",
        "metric": "put_latency_p99",
        "value": pytest.approx(put.quantile(0.99), abs=1e-6),
        "ok": True,
    }
    assert put.count == summary["streams"][STREAM]["requests"] > 0
    # The run's own --results-url has the parent's summary as its one shard, and the abort.
    assert _summary(results / "wrun" / "shards" / "shard-0-of-1.json")["exit_code"] == 5
    assert _summary(results / "wrun" / "abort.json")["check"] == "accepted_ratio<0.01 abort"
    assert summary["schedule"]["shortfall_events"] == 0
