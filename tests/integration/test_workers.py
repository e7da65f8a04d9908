"""``run --workers``: several producer processes, one run, read back from what was delivered."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from producer import pipeline
from producer.audit import objects
from producer.errors import EXIT_INCOMPLETE
from producer.sharding import shard_of_id
from tests.helpers import REPO, delivered_event_ids, run_cli

S3_ROOT = Path(pipeline.LOCAL_BUCKET) / "raw-data"
OPENSEARCH_ROOT = Path("opensearch")
RATE = 600
DURATION_S = 4
MID_ACCEPTED = ("loadgen_records_total", (("outcome", "accepted"), ("stream", pipeline.S3_STREAM)))


def _env() -> dict[str, str]:
    # Module-scoped runs start before the per-test clean environment: clean it here the same way.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOADGEN_"))}
    return env | {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull}


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "producer", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            if int(fields["PPid"]) == pid:
                cmd = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append((int(status.parent.name), cmd))
        except (OSError, KeyError, ValueError):
            continue
    return found


def _workers_of(pid: int, want: int, timeout_s: float = 15.0) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # A child between fork and exec still shows the parent's command line (" run " too):
        # only a worker's own carries --shard-index.
        workers = [c for c in _children(pid) if " run " in c[1] and "--shard-index" in c[1]]
        if len(workers) == want:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"expected {want} worker processes of {pid}, found {_children(pid)}")


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        assert proc.poll() is None, f"exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {path} after {timeout_s}s"
        time.sleep(0.05)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    summary: dict[str, Any]
    out: Path
    metrics_mid: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    metrics_end: dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One ``--workers 2`` run against the embedded target, scraped mid-run and after its end."""
    tmp = tmp_path_factory.mktemp("workers")
    port = _free_port()
    summary_path = tmp / "summary.json"
    proc = _start(
        "--workers", "2",
        "--rate", str(RATE),
        "--duration", f"{DURATION_S}s",
        "--seed", "11",
        "--output-dir", str(tmp / "out"),
        "--summary-json", str(summary_path),
        "--metrics-port", str(port),
        "--metrics-linger", "4s",
        "--log-every", "1s",
    )  # fmt: skip
    try:
        # The first scrape that shows accepted records, while the run goes on: the workers'
        # start-up (imports, the local Firehose child) takes longer on a loaded machine, so a
        # fixed time could come before the parent's first scrape of any worker.
        deadline = time.monotonic() + DURATION_S + 20
        mid: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        while time.monotonic() < deadline and not mid.get(MID_ACCEPTED):
            time.sleep(0.25)
            with contextlib.suppress(OSError):
                mid = _scrape(port)
        _wait_for(summary_path, proc)
        time.sleep(0.3)  # the summary is written, then printed; /metrics lingers 4 s
        end = _scrape(port)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    yield Run(proc.returncode, stdout, stderr, orjson.loads(summary_path.read_bytes()), tmp / "out", mid, end)


def test_workers_share_the_rate_and_deliver_every_event_exactly_once(two_workers: Run) -> None:
    run = two_workers
    assert run.returncode == 0, run.stderr
    summary = run.summary
    assert summary["workers"] == {"count": 2, "failed": []} and summary["complete"] is True
    # Shares are exact (300 + 300): the pacer makes the whole schedule, no more, no less.
    assert summary["events_generated"] == RATE * DURATION_S
    assert [s["events"] for s in summary["seq_spaces"]] == [RATE * DURATION_S // 2] * 2
    s3 = delivered_event_ids(run.out / S3_ROOT)
    opensearch = delivered_event_ids(run.out / OPENSEARCH_ROOT)
    for name, ids in ((pipeline.S3_STREAM, s3), (pipeline.OPENSEARCH_STREAM, opensearch)):
        counts = summary["streams"][name]
        assert counts["sent"] == counts["accepted"] + counts["dead_lettered"] == summary["events_generated"]
        assert sum(ids.values()) == counts["accepted"], f"{name}: delivered != accepted"
        assert max(ids.values()) == 1, f"{name}: an event id was delivered twice"
        assert Counter(shard_of_id(i) for i in ids) == {0: RATE * DURATION_S // 2, 1: RATE * DURATION_S // 2}
    assert set(s3) == set(opensearch)
    # One summary for the run, in the usual place, printed once.
    assert (run.out / "runs" / f"{summary['run_id']}.json").is_file()
    assert list((run.out / "runs").iterdir()) == [run.out / "runs" / f"{summary['run_id']}.json"]
    assert run.stdout.count(f"run {summary['run_id']}: profile mixed") == 1
    assert "realtime-data-stream" in run.stdout and "accepted" in run.stdout  # the live lines


def test_seqs_interleave_and_the_audit_finds_the_run_clean(two_workers: Run) -> None:
    summary = two_workers.summary
    seqs = sorted(
        orjson.loads(record)["seq"]
        for path in (two_workers.out / S3_ROOT).rglob("*")
        if path.is_file()
        # Parquet rows (the shipped template's S3 stream), read as the audit reads them.
        for record in objects.records(path.read_bytes())
    )
    # Worker k's j-th event is seq j*2 + k: together exactly 0..N-1 here, as the shares are equal.
    assert seqs == list(range(summary["events_generated"]))
    audit = run_cli("audit", "--run-id", summary["run_id"], "--output-dir", str(two_workers.out), "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_the_runs_metrics_are_the_sum_of_the_workers(two_workers: Run) -> None:
    summary, end = two_workers.summary, two_workers.metrics_end
    for name, counts in summary["streams"].items():
        for outcome in ("sent", "accepted", "dead_lettered"):
            key = ("loadgen_records_total", (("outcome", outcome), ("stream", name)))
            assert end[key] == counts[outcome], (name, outcome)
        requests = sum(v for (n, labels), v in end.items() if n == "loadgen_put_record_batch_requests_total"
                       and ("stream", name) in labels)  # fmt: skip
        assert requests == counts["requests"]
        assert end[("loadgen_target_rate_events_per_second", ())] == RATE  # 300 + 300
    assert end[("loadgen_workers", (("state", "finished"),))] == 2
    info = [v for (n, _), v in end.items() if n == "loadgen_info"]
    assert info == [1.0]  # one run, not one per worker
    mid_accepted = two_workers.metrics_mid[MID_ACCEPTED]
    assert 0 < mid_accepted < summary["streams"][pipeline.S3_STREAM]["accepted"]


def test_a_killed_worker_is_reported_and_counted(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    proc = _start(
        "--workers", "2", "--rate", "400", "--duration", "5s", "--quiet",
        "--output-dir", str(tmp_path / "out"), "--summary-json", str(summary_path),
    )  # fmt: skip
    try:
        workers = _workers_of(proc.pid, 2)
        time.sleep(3.0)  # past start-up, and at least one scrape of each
        victim = next(pid for pid, cmd in workers if "--shard-index 1 " in cmd)
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_INCOMPLETE, stderr  # the run's books are incomplete
    assert "worker 1 (shard 1/2) ended with signal SIGKILL" in stderr
    summary = orjson.loads(summary_path.read_bytes())
    assert summary["complete"] is False
    (failed,) = summary["workers"]["failed"]
    assert failed["index"] == 1 and failed["signal"] == "SIGKILL"
    seen = failed["last_seen"]["streams"][pipeline.S3_STREAM]
    assert seen["accepted"] > 0
    # The survivor's full share (1,000 events) plus what the dead one had sent by its last scrape.
    counts = summary["streams"][pipeline.S3_STREAM]
    assert counts["sent"] == 1000 + seen["sent"]
    assert counts["accepted"] == 1000 + seen["accepted"]
    # What the dead worker had taken and not settled is counted as lost, under its name too,
    # so the books add up.
    lost = seen["sent"] - seen["accepted"] - seen["dead_lettered"]
    assert failed["lost"][pipeline.S3_STREAM] == seen["lost"] == counts["lost"] == lost
    assert counts["sent"] == counts["accepted"] + counts["dead_lettered"] + counts["lost"]
    assert "1 failed (totals incomplete)" in stdout


def test_sigterm_to_the_parent_stops_every_worker_gracefully(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    proc = _start(
        "--workers", "2", "--rate", "400", "--duration", "60s", "--quiet",
        "--output-dir", str(tmp_path / "out"), "--summary-json", str(summary_path),
    )  # fmt: skip
    try:
        workers = _workers_of(proc.pid, 2)
        time.sleep(2.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    for pid, _ in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    summary = orjson.loads(summary_path.read_bytes())
    assert summary["complete"] is True and summary["workers"]["failed"] == []
    assert 0 < summary["events_generated"] < 400 * 10
    delivered = delivered_event_ids(tmp_path / "out" / S3_ROOT)
    counts = summary["streams"][pipeline.S3_STREAM]
    assert counts["dead_lettered"] == 0
    assert sum(delivered.values()) == counts["accepted"] == summary["events_generated"]


@pytest.mark.parametrize("value", ["0", "abc", "-2"])
def test_bad_worker_counts_are_one_line_and_exit_2(value: str) -> None:
    result = run_cli("run", "--workers", value, "--duration", "1s", "--quiet")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --workers must be a whole number >= 1 or auto, got {value!r}"
        if value == "abc"
        else f"error: --workers must be a whole number >= 1 or auto, got {value}"
    ]


def test_workers_that_all_refuse_the_endpoint_give_its_one_line_and_exit_2(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    result = run_cli(
        "run", "--workers", "2", "--duration", "1s", "--quiet", "--endpoint-url", closed,
        "--output-dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach the Firehose endpoint at {closed} (ConnectionError); check --endpoint-url, "
        "or start one with `firehose-loadgen local serve`"
    ]
    assert not (tmp_path / "out" / "runs").exists()  # no summary of a run that never ran
