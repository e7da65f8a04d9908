"""`firehose-loadgen local serve` as its own process, driven the way the AWS CLI would drive it:
create-delivery-stream and put-record-batch --cli-input-json files sent with botocore."""

from __future__ import annotations

import base64
import gzip
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import orjson
import pytest

from producer import pipeline
from producer.local.process import ready_url
from tests.helpers import REPO

# What `aws firehose create-delivery-stream --generate-cli-skeleton` fills in for the recipe's stream.
CREATE_JSON = {
    "DeliveryStreamName": "cli-stream",
    "DeliveryStreamType": "DirectPut",
    "ExtendedS3DestinationConfiguration": {
        "RoleARN": "arn:aws:iam::000000000000:role/firehose-delivery-role",
        "BucketARN": "arn:aws:s3:::cli-bucket",
        "Prefix": "raw/!{timestamp:yyyy}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        "CompressionFormat": "GZIP",
        "CloudWatchLoggingOptions": {"Enabled": False},
    },
}


def _client(url: str) -> Any:
    return botocore.session.get_session().create_client(
        "firehose",
        region_name="eu-west-1",
        endpoint_url=url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _serve_command(*options: str) -> list[str]:
    """`local serve --port 0 OPTIONS` as a user would type it."""
    return [sys.executable, "-m", "producer", "local", "serve", "--port", "0", *options]


def _start_serve(*options: str) -> tuple[subprocess.Popen[str], str]:
    """`local serve` started with ``options``; its URL from the ready line, read the way the
    benchmark and the workers' supervisor read it."""
    proc = subprocess.Popen(
        _serve_command(*options), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = ready_url(line)
    assert url is not None and url.startswith("http://127.0.0.1:"), (
        proc.stderr.read() if proc.stderr else line
    )
    return proc, url


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    config = tmp_path / "streams.json"
    config.write_bytes(orjson.dumps([pipeline.s3_stream_request("from-config")]))
    out = tmp_path / "out"
    proc, url = _start_serve("--output", str(out), "--config", str(config), "--region", "eu-west-1")
    try:
        yield url, proc, out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_cli_shaped_calls_against_local_serve(
    served: tuple[str, subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    url, proc, out = served
    fh = _client(url)
    assert "from-config" in fh.list_delivery_streams()["DeliveryStreamNames"]
    create_file = tmp_path / "create.json"
    create_file.write_bytes(orjson.dumps(CREATE_JSON))
    arn = fh.create_delivery_stream(**orjson.loads(create_file.read_bytes()))["DeliveryStreamARN"]
    assert arn == "arn:aws:firehose:eu-west-1:000000000000:deliverystream/cli-stream"
    description = fh.describe_delivery_stream(DeliveryStreamName="cli-stream")["DeliveryStreamDescription"]
    assert description["DeliveryStreamStatus"] == "ACTIVE"
    s3 = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert s3["Prefix"] == "raw/!{timestamp:yyyy}/" and s3["CompressionFormat"] == "GZIP"
    # put-record-batch --cli-input-json: Data is base64 in the file (AWS CLI v2's default).
    payloads = [orjson.dumps({"n": i}) + b"\n" for i in range(20)]
    batch_file = tmp_path / "batch.json"
    batch_file.write_bytes(
        orjson.dumps(
            {
                "DeliveryStreamName": "cli-stream",
                "Records": [{"Data": base64.b64encode(p).decode()} for p in payloads],
            }
        )
    )
    batch: dict[str, Any] = orjson.loads(batch_file.read_bytes())
    answer = fh.put_record_batch(
        DeliveryStreamName=batch["DeliveryStreamName"],
        Records=[{"Data": base64.b64decode(r["Data"])} for r in batch["Records"]],
    )
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 20
    proc.send_signal(signal.SIGTERM)  # a clean stop delivers what is buffered
    assert proc.wait(30) == 0
    [obj] = [p for p in (out / "cli-bucket").rglob("*") if p.is_file()]
    assert obj.name.startswith("cli-stream-1-") and obj.suffix == ".gz"
    assert gzip.decompress(obj.read_bytes()) == b"".join(payloads)


def test_bad_config_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({"DeliveryStreamName": "x", "ExtendedS3DestinationConfiguration": {}}))
    proc = subprocess.run(
        _serve_command("--output", str(tmp_path / "o"), "--config", str(bad)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "bad.json" in proc.stderr


def test_quota_and_fault_options_from_the_command_line(tmp_path: Path) -> None:
    proc, url = _start_serve("--output", str(tmp_path / "o"), "--records-per-s", "10", "--latency", "0.05")
    try:
        fh = _client(url)
        fh.create_delivery_stream(**pipeline.s3_stream_request("quota"))
        answer = fh.put_record_batch(DeliveryStreamName="quota", Records=[{"Data": b"x"}] * 30)
        assert 15 <= answer["FailedPutCount"] <= 20  # 10 tokens, plus what refills during the call
        assert answer["RequestResponses"][-1] == {
            "ErrorCode": "ServiceUnavailableException",
            "ErrorMessage": "Slow down.",
        }
    finally:
        proc.terminate()
        proc.wait(30)
