"""A real run, read back from what the local Firehose delivered."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson

from producer import pipeline
from tests.helpers import ThreadedLocalFirehose, delivered_event_ids, run_cli

S3_ROOT = Path(pipeline.LOCAL_BUCKET) / "raw-data"
OPENSEARCH_ROOT = Path("opensearch")


def _check_exactly_once(summary: dict[str, object], s3: Counter[str], opensearch: Counter[str]) -> None:
    streams = summary["streams"]
    assert isinstance(streams, dict)
    generated = summary["events_generated"]
    assert isinstance(generated, int) and generated > 0
    for name, ids in ((pipeline.S3_STREAM, s3), (pipeline.OPENSEARCH_STREAM, opensearch)):
        counts = streams[name]
        assert counts["dead_lettered"] == 0
        assert counts["sent"] == counts["accepted"] + counts["dead_lettered"]
        assert counts["accepted"] == generated
        assert sum(ids.values()) == counts["accepted"], f"{name}: delivered != accepted"
        duplicates = [i for i, n in ids.items() if n > 1]
        assert not duplicates, f"{name}: {len(duplicates)} event ids delivered twice"
    assert set(s3) == set(opensearch), "both streams must carry the same events"


def test_default_run_delivers_every_event_once_to_both_streams(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "run",
        "--duration",
        "3s",
        "--rate",
        "400",
        "--output-dir",
        str(out),
        "--summary-json",
        str(tmp_path / "summary.json"),
        "--seed",
        "7",
    )
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["profile"] == "mixed"
    assert 1000 <= summary["events_generated"] <= 1300
    _check_exactly_once(
        summary, delivered_event_ids(out / S3_ROOT), delivered_event_ids(out / OPENSEARCH_ROOT)
    )
    assert "realtime-data-stream" in result.stdout and "accepted" in result.stdout


def test_run_against_a_separate_endpoint(tmp_path: Path, local_firehose: ThreadedLocalFirehose) -> None:
    client = local_firehose.botocore_client()
    for name in pipeline.DEFAULT_STREAMS:
        client.create_delivery_stream(**pipeline.stream_request(name))
    result = run_cli(
        "run",
        "--duration",
        "2s",
        "--rate",
        "300",
        "--endpoint-url",
        local_firehose.url,
        "--output-dir",
        str(tmp_path / "producer-side"),
        "--summary-json",
        str(tmp_path / "summary.json"),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    local_firehose.stop()
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["target"].startswith("endpoint http://127.0.0.1:")
    out = local_firehose.output_dir
    _check_exactly_once(
        summary, delivered_event_ids(out / S3_ROOT), delivered_event_ids(out / OPENSEARCH_ROOT)
    )
    # The producer did not start an embedded endpoint of its own.
    assert not (tmp_path / "producer-side" / pipeline.LOCAL_BUCKET).exists()


def test_endpoint_from_standard_aws_variable(tmp_path: Path, local_firehose: ThreadedLocalFirehose) -> None:
    client = local_firehose.botocore_client()
    client.create_delivery_stream(**pipeline.stream_request("only-stream"))
    result = run_cli(
        "run",
        "--duration",
        "1s",
        "--rate",
        "100",
        "--stream",
        "only-stream",
        "--output-dir",
        str(tmp_path / "o"),
        "--summary-json",
        str(tmp_path / "s.json"),
        "--quiet",
        env={"AWS_ENDPOINT_URL_FIREHOSE": local_firehose.url},
    )
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    assert list(summary["streams"]) == ["only-stream"]
    assert summary["streams"]["only-stream"]["accepted"] == summary["events_generated"] > 0
    # The endpoint the variable names took them: a run that ignored it would have sent them to
    # the built-in Firehose, and this one's books would be empty.
    assert local_firehose.server.records_accepted["only-stream"] == summary["events_generated"]
