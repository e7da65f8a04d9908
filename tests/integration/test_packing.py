"""--pack end to end: against an endpoint that counts what it receives, and through the embedded
Firehose built from the shipped template (transform, Parquet), audited."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from pathlib import Path
from typing import Literal

import orjson
import pytest

from producer import pipeline
from producer.delivery.packing import MAX_EVENTS_PER_RECORD
from producer.delivery.retry import RetryPolicy
from tests.faultserver import STREAM, Faults, FaultServer, deliver_to_one_stream
from tests.helpers import run_cli

EVENTS = 3_000
TARGET = 5_000


def _event(i: int) -> bytes:
    # Sizes like the mixed profile's events (300-700 bytes), and a few larger than the target.
    pad = 8_000 if i % 997 == 0 else random.Random(i).randrange(250, 650)
    return orjson.dumps({"event_id": f"e{i}", "pad": "x" * pad}) + b"\n"


@pytest.mark.parametrize("sender", ["lean", "botocore"])
def test_packed_events_are_accepted_exactly_once_under_faults(
    tmp_path: Path, sender: Literal["lean", "botocore"]
) -> None:
    faults = Faults(record_fail_rate=0.2, reset_rate=0.05, status_rate=0.05)
    with FaultServer(faults) as server:
        stats, reasons = asyncio.run(
            deliver_to_one_stream(
                server.url,
                sender,
                tmp_path / "dl.jsonl",
                EVENTS,
                RetryPolicy(max_attempts=30, base_s=0.001, cap_s=0.01),
                batch_records=20,
                record=_event,
                pack_bytes=TARGET,
            )
        )
        received = dict(server.accepted[STREAM])
        sizes = list(server.sizes[STREAM])
    assert reasons == []
    events: Counter[str] = Counter()
    per_record = []
    for record, times in received.items():
        assert times == 1, "a packed record was accepted twice"
        # The server keys a record by its event_id, or by its data when it is not one event.
        ids = [orjson.loads(line)["event_id"] for line in record.splitlines()] if "\n" in record else [record]
        per_record.append(len(ids))
        events.update(ids)
    assert len(events) == EVENTS and set(events.values()) == {1}, "an event lost or doubled"
    # The books count records; the events they carried are counted beside them.
    assert stats.packed_events == EVENTS and stats.accepted == len(sizes) == len(received)
    assert stats.failed_record_attempts > 0  # records were refused and resent
    # Packed up to the target; an event larger than it travels alone.
    assert all(size <= TARGET for size, n in zip(sizes, per_record, strict=False) if n > 1)
    assert max(per_record) <= MAX_EVENTS_PER_RECORD and len(sizes) < EVENTS / 5
    assert stats.billed_bytes == sum(5_120 * math.ceil(size / 5_120) for size in sizes)


def _audit(tmp_path: Path, run_id: str) -> dict[str, dict[str, int]]:
    result = run_cli("audit", "--run-id", run_id, "--output-dir", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["clean"] is True
    streams: dict[str, dict[str, int]] = report["streams"]
    return streams


def test_packing_the_mixed_profile_cuts_billed_bytes_5x_and_every_event_arrives_once(tmp_path: Path) -> None:
    # The default target: the embedded Firehose built from deploy/pipeline.yaml, whose transform
    # splits the packed lines and whose S3 stream converts to Parquet. The OpenSearch stream gets
    # the same events unpacked: the comparison is side by side, in one run.
    result = run_cli(
        "run", "--profile", "mixed", "--rate", "400", "--duration", "5s",
        "--pack", pipeline.S3_STREAM, "--output-dir", str(tmp_path / "out"),
        "--summary-json", str(tmp_path / "s.json"), "--no-metrics", "--quiet",
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    packed = summary["streams"][pipeline.S3_STREAM]
    plain = summary["streams"][pipeline.OPENSEARCH_STREAM]
    assert packed["packed_events"] == plain["sent"] == summary["events_generated"] == 2_000
    assert plain["billed_bytes"] >= 5 * packed["billed_bytes"] > 0
    assert packed["bytes_sent"] == plain["bytes_sent"]  # the same events, joined
    found = _audit(tmp_path, summary["run_id"])
    for name in pipeline.DEFAULT_STREAMS:
        s = found[name]
        assert s["accepted"] == s["delivered_unique"] == s["delivered_records"] == 2_000, s
        assert s["missing"] == 0 and s["duplicates"] == 0, s
    bucket = tmp_path / "out" / pipeline.LOCAL_BUCKET / "raw-data"
    objects = [p for p in bucket.rglob("*") if p.is_file()]
    assert objects and all(p.read_bytes()[:4] == b"PAR1" for p in objects), "the S3 stream delivers Parquet"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--pack", pipeline.OPENSEARCH_STREAM], "Firehose splits packed records only for S3 destinations"),
        (["--pack", "no-such-stream"], "--pack no-such-stream: not a stream of this run"),
        (["--pack", pipeline.S3_STREAM, "--pack-bytes", "0"], "--pack-bytes must be 1..1024000"),
        (["--pack", pipeline.S3_STREAM, "--pack-bytes", "1024001"], "--pack-bytes must be 1..1024000"),
    ],
)
def test_packing_that_cannot_work_is_refused_in_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    result = run_cli("run", "--duration", "1s", "--output-dir", str(tmp_path), "--no-metrics", *args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()  # refused before the first event


def test_a_profile_packs_its_streams_and_csv_cannot_be_packed(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(f"mix: {{web: 1}}\nformat: csv\npack: {{{pipeline.S3_STREAM}: 3000}}\n")
    result = run_cli("run", "--profile", str(profile), "--duration", "1s", "--output-dir", str(tmp_path))
    assert result.returncode == 2 and "--pack needs JSON events" in result.stderr
    profile.write_text(f"mix: {{web: 1}}\npack: {{{pipeline.S3_STREAM}: 3000}}\n")
    result = run_cli(
        "run", "--profile", str(profile), "--rate", "200", "--duration", "2s", "--no-metrics",
        "--quiet", "--output-dir", str(tmp_path / "out"), "--summary-json", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    streams = orjson.loads((tmp_path / "s.json").read_bytes())["streams"]
    assert streams[pipeline.S3_STREAM]["packed_events"] == 400 > streams[pipeline.S3_STREAM]["sent"]
    assert streams[pipeline.OPENSEARCH_STREAM]["packed_events"] == 0


def test_a_stream_the_template_names_can_be_packed(tmp_path: Path) -> None:
    # --param renames the template's streams: --pack is checked against the streams this run
    # sends to (demo, demo-opensearch), not the reference names. Before, it was refused as "not a
    # stream of this run (realtime-data-stream, realtime-data-stream-opensearch)".
    result = run_cli(
        "run", "--param", "StreamPrefix=demo", "--pack", "demo", "--rate", "100", "--duration", "1s",
        "--no-metrics", "--quiet", "--output-dir", str(tmp_path / "out"),
        "--summary-json", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    streams = summary["streams"]
    assert sorted(streams) == ["demo", "demo-opensearch"]
    assert streams["demo"]["packed_events"] == summary["events_generated"] > streams["demo"]["sent"]
    assert streams["demo-opensearch"]["packed_events"] == 0
