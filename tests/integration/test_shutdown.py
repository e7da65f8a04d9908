"""SIGTERM and SIGINT against a stalled endpoint: the run ends within the grace period plus 2 s,
and everything not accepted is in the dead-letter spool, also when the producer is PID 1."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from producer import pipeline
from producer.delivery.spool import read_spool
from producer.local.faults import FaultSettings
from tests.helpers import ThreadedLocalFirehose, start_cli

# A stall: every call hangs 5 s, then its connection is closed unanswered; nothing is accepted.
STALL = FaultSettings(latency_s=5.0, drop_connection_rate=1.0)


def _can_be_pid1() -> bool:
    try:
        done = subprocess.run(["unshare", "-fp", "--mount-proc", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _stalled(server: ThreadedLocalFirehose) -> None:
    client = server.botocore_client()
    for name in pipeline.DEFAULT_STREAMS:
        client.create_delivery_stream(**pipeline.stream_request(name))
    server.server.set_faults(STALL)


def _start(
    server: ThreadedLocalFirehose, tmp_path: Path, grace: str, prefix: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    return start_cli(
        "run",
        "--endpoint-url",
        server.url,
        "--rate",
        "500",
        "--duration",
        "5m",
        "--shutdown-grace",
        grace,
        "--output-dir",
        str(tmp_path / "out"),
        "--dead-letter",
        str(tmp_path / "dead.jsonl"),
        "--summary-json",
        str(tmp_path / "summary.json"),
        "--no-metrics",
        "--quiet",
        prefix=prefix,
    )


def _target_pid(proc: subprocess.Popen[str], pid1: bool) -> int:
    if not pid1:
        return proc.pid
    # unshare -f forks the producer as PID 1 of a new namespace; signal it from outside.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("unshare did not start the producer")


def _check_everything_spooled(server: ThreadedLocalFirehose, tmp_path: Path, reasons: set[str]) -> None:
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    generated = summary["events_generated"]
    assert generated > 200
    spooled: dict[str, Counter[str]] = {name: Counter() for name in pipeline.DEFAULT_STREAMS}
    for entry in read_spool(tmp_path / "dead.jsonl"):
        spooled[entry.stream][orjson.loads(entry.data)["event_id"]] += 1
    for name in pipeline.DEFAULT_STREAMS:
        s = summary["streams"][name]
        assert s["accepted"] == 0 and server.server.records_accepted[name] == 0
        assert s["sent"] == s["dead_lettered"] == generated == sum(spooled[name].values())
        # Calls in flight when cut off are spooled as OutcomeUnknown, each record counted
        # once as a possible duplicate; the rest with the shutdown's own reason. Records whose
        # earlier attempt timed out are possible duplicates too, wherever they end.
        assert set(s["dead_lettered_by_reason"]) == reasons | {"OutcomeUnknown"}
        assert len(spooled[name]) == generated, "an event spooled twice or not at all"
        assert 0 < s["dead_lettered_by_reason"]["OutcomeUnknown"] <= s["possible_duplicates"] <= s["sent"]
    assert set(spooled[pipeline.S3_STREAM]) == set(spooled[pipeline.OPENSEARCH_STREAM])


@pytest.mark.parametrize("pid1", [False, True], ids=["process", "pid1"])
def test_sigterm_with_a_stalled_endpoint_exits_within_grace(
    local_firehose: ThreadedLocalFirehose, tmp_path: Path, pid1: bool
) -> None:
    if pid1 and not _can_be_pid1():
        pytest.skip("needs unshare with PID namespaces")
    _stalled(local_firehose)
    grace_s = 2.0
    prefix = ("unshare", "-fp", "--mount-proc") if pid1 else ()
    proc = _start(local_firehose, tmp_path, f"{grace_s:g}s", prefix)
    try:
        target = _target_pid(proc, pid1)
        time.sleep(4)  # start-up, then a couple of seconds of calls hanging
        assert proc.poll() is None, proc.communicate()
        sent_at = time.monotonic()
        # As PID 1 the kernel drops signals the program has no handler for: this only ends the
        # run because the producer installs its own.
        subprocess.run(["kill", "-TERM", str(target)], check=True)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert took <= grace_s + 2.0, f"exit took {took:.1f}s after SIGTERM"
    _check_everything_spooled(local_firehose, tmp_path, {"ShutdownDeadline"})


def test_second_sigint_spools_at_once(local_firehose: ThreadedLocalFirehose, tmp_path: Path) -> None:
    _stalled(local_firehose)
    proc = _start(local_firehose, tmp_path, "60s")
    try:
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # waiting out its 60 s grace for the stalled calls
        sent_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert took <= 2.0, f"exit took {took:.1f}s after the second SIGINT"
    _check_everything_spooled(local_firehose, tmp_path, {"Aborted"})
