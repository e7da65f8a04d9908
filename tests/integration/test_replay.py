"""``firehose-loadgen replay``: a run's dead letters resent, what still fails spooled anew, and
the endpoint's records reconciled with both summaries."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson

from producer import pipeline
from producer.delivery.spool import read_spool
from producer.firehose import limits
from producer.local.faults import FaultSettings
from tests.faultserver import Faults, FaultServer
from tests.helpers import ThreadedLocalFirehose, delivered_event_ids, run_cli

ROOTS = {
    pipeline.S3_STREAM: Path(pipeline.LOCAL_BUCKET) / "raw-data",
    pipeline.OPENSEARCH_STREAM: Path("opensearch"),
}


def _create_streams(server: ThreadedLocalFirehose) -> None:
    client = server.botocore_client()
    for name in pipeline.DEFAULT_STREAMS:
        client.create_delivery_stream(**pipeline.stream_request(name))


def test_run_then_replay_delivers_every_event_exactly_once(
    local_firehose: ThreadedLocalFirehose, tmp_path: Path
) -> None:
    _create_streams(local_firehose)
    local_firehose.server.set_faults(FaultSettings(record_failure_rate=0.5, seed=11))
    dead = tmp_path / "dead.jsonl"
    run = run_cli(
        "run",
        "--endpoint-url",
        local_firehose.url,
        "--rate",
        "500",
        "--duration",
        "2s",
        "--max-attempts",
        "1",  # every failed record goes straight to the spool
        "--output-dir",
        str(tmp_path / "out"),
        "--dead-letter",
        str(dead),
        "--summary-json",
        str(tmp_path / "run.json"),
        "--no-metrics",
        "--quiet",
    )
    assert run.returncode == 1, run.stderr
    run_summary = orjson.loads((tmp_path / "run.json").read_bytes())
    entries = list(read_spool(dead))
    assert {e.reason for e in entries} == {"RetriesExhausted"}
    assert {e.error_code for e in entries} == {"ServiceUnavailableException"}
    assert all(e.attempts == 1 and e.first_attempt_at > 0 for e in entries)

    local_firehose.server.set_faults(FaultSettings())
    replay = run_cli(
        "replay",
        str(dead),
        "--endpoint-url",
        local_firehose.url,
        "--summary-json",
        str(tmp_path / "replay.json"),
    )
    assert replay.returncode == 0, replay.stderr
    replay_summary = orjson.loads((tmp_path / "replay.json").read_bytes())
    assert replay_summary["records_in_spool"] == replay_summary["records_replayed"] == len(entries)
    assert replay_summary["dead_letter_path"] is None
    accepted = dict(local_firehose.server.records_accepted)
    local_firehose.stop()
    generated = run_summary["events_generated"]
    for name, root in ROOTS.items():
        first, second = run_summary["streams"][name], replay_summary["streams"][name]
        assert first["dead_lettered"] > 0
        assert second["sent"] == second["accepted"] == first["dead_lettered"]
        assert first["accepted"] + second["accepted"] == accepted[name] == generated
        ids = delivered_event_ids(local_firehose.output_dir / root)
        assert len(ids) == generated and set(ids.values()) == {1}, f"{name}: lost or doubled"


def test_replay_spools_what_still_fails(local_firehose: ThreadedLocalFirehose, tmp_path: Path) -> None:
    client = local_firehose.botocore_client()
    client.create_delivery_stream(**pipeline.stream_request("exists"))
    spool = tmp_path / "in.jsonl"

    def line(stream: str, data: bytes) -> bytes:
        entry = {"stream": stream, "reason": "ShutdownDeadline", "data": base64.b64encode(data).decode()}
        return orjson.dumps(entry) + b"\n"

    good = [b'{"event_id":"g%d"}\n' % i for i in range(20)]
    lines = [line("exists", d) for d in good]
    lines += [line("gone", b'{"event_id":"x%d"}\n' % i) for i in range(5)]
    lines.append(line("exists", b"y" * (limits.MAX_RECORD_BYTES + 1)))
    spool.write_bytes(b"".join(lines))
    out = tmp_path / "still.jsonl"
    result = run_cli(
        "replay",
        str(spool),
        "--endpoint-url",
        local_firehose.url,
        "--dead-letter",
        str(out),
        "--summary-json",
        str(tmp_path / "s.json"),
    )
    assert result.returncode == 1, result.stderr
    assert spool.read_bytes() == b"".join(lines)  # the input is never rewritten
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    exists, gone = summary["streams"]["exists"], summary["streams"]["gone"]
    assert (
        exists["sent"] == 21 and exists["accepted"] == 20 == local_firehose.server.records_accepted["exists"]
    )
    assert exists["dead_lettered_by_reason"] == {"RecordTooLarge": 1}
    assert gone["sent"] == gone["dead_lettered"] == 5 and gone["stopped_reason"].startswith(
        "ResourceNotFound"
    )
    again = list(read_spool(out))
    assert [(e.stream, e.reason) for e in again if e.stream == "exists"] == [("exists", "RecordTooLarge")]
    assert len([e for e in again if e.stream == "gone"]) == 5
    assert {e.reason for e in again if e.stream == "gone"} <= {"NonRetryable", "StreamStopped"}
    assert {e.error_code for e in again if e.stream == "gone"} == {"ResourceNotFoundException"}
    assert "still failing, spooled to:" in result.stdout


def test_replay_of_a_missing_or_bad_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = run_cli("replay", str(tmp_path / "nope.jsonl"), "--endpoint-url", "http://127.0.0.1:9")
    assert (
        missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"stream": "s"}\n')
    result = run_cli("replay", str(bad), "--endpoint-url", "http://127.0.0.1:9")
    assert result.returncode == 2 and "bad.jsonl:1: not a dead-letter entry" in result.stderr


def _write_spool(path: Path, count: int) -> list[bytes]:
    """A spool as `run` leaves it: ``count`` records for the S3 stream, each its own event."""
    records = [orjson.dumps({"event_id": f"e{i}", "seq": i}) + b"\n" for i in range(count)]
    lines = [
        orjson.dumps(
            {
                "stream": pipeline.S3_STREAM,
                "reason": "RetriesExhausted",
                "error_code": "ServiceUnavailableException",
                "message": "Slow down.",
                "attempts": 1,
                "first_attempt_at": 1.0,
                "last_attempt_at": 1.0,
                "data": base64.b64encode(r).decode(),
            }
        )
        for r in records
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return records


def test_a_replay_ends_by_draining_not_by_the_signal_grace(tmp_path: Path) -> None:
    # A slow endpoint that refuses half the records: the retries need far longer than the 1 s
    # --shutdown-grace. Before replay shared the run's lifecycle it closed with the grace as if
    # signalled, and spooled most records again as ShutdownDeadline; now it drains.
    records = _write_spool(tmp_path / "dead.jsonl", 400)
    with FaultServer(Faults(latency_s=0.3, record_fail_rate=0.5)) as server:
        result = run_cli(
            "replay", str(tmp_path / "dead.jsonl"), "--endpoint-url", server.url,
            "--shutdown-grace", "1s", "--max-attempts", "30",
            "--summary-json", str(tmp_path / "replay.json"),
            timeout=120,
        )  # fmt: skip
        accepted = dict(server.accepted.get(pipeline.S3_STREAM, {}))
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "replay.json").read_bytes())
    s = summary["streams"][pipeline.S3_STREAM]
    assert s["sent"] == s["accepted"] == len(records) and s["dead_lettered"] == 0
    assert s["retried_records"] > 0  # it did need retries, past the grace
    assert summary["duration_s"] > 1.5
    assert len(accepted) == len(records) and set(accepted.values()) == {1}


def test_a_replay_refuses_a_spool_it_cannot_write_before_sending(tmp_path: Path) -> None:
    # Before, replay never checked where it spools: records that failed again vanished into
    # /dev/full (ENOSPC) and the replay could still exit 0.
    _write_spool(tmp_path / "dead.jsonl", 10)
    with FaultServer(Faults(record_fail_rate=1.0)) as server:
        result = run_cli(
            "replay", str(tmp_path / "dead.jsonl"), "--endpoint-url", server.url,
            "--dead-letter", "/dev/full", "--max-attempts", "1",
        )  # fmt: skip
        calls = server.calls
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: cannot write the dead-letter spool /dev/full")
    assert calls == 0
