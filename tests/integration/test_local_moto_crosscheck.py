"""Cross-check against an implementation we did not write: the producer against moto's Firehose.

moto (in a thread on 127.0.0.1) accepts an Extended S3 stream and writes each PutRecordBatch
straight to its in-memory S3. What moto does NOT model, so this test cannot check it: buffering
hints (one object per call), GZIP, ``!{timestamp}`` expansion (it always appends YYYY/MM/DD/HH/),
throttling and quotas, per-record failures, size limits, OpenSearch destinations, transforms.
Those are the local Firehose's own tests (tests/integration/test_local_*.py).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import botocore.session
import orjson

from tests.helpers import run_cli

STREAM = "moto-stream"
BUCKET = "moto-bucket"


def _client(service: str, url: str) -> Any:
    return botocore.session.get_session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="loadgen-local",
        aws_secret_access_key="loadgen-local-secret",
    )


def test_every_event_lands_in_motos_s3(moto_url: str, tmp_path: Path) -> None:
    s3 = _client("s3", moto_url)
    s3.create_bucket(Bucket=BUCKET)
    _client("firehose", moto_url).create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": "raw/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        },
    )
    result = run_cli(
        "run",
        "--endpoint-url",
        moto_url,
        "--stream",
        STREAM,
        "--duration",
        "2s",
        "--rate",
        "200",
        "--output-dir",
        str(tmp_path / "out"),
        "--summary-json",
        str(tmp_path / "summary.json"),
        "--seed",
        "3",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    accepted = summary["streams"][STREAM]["accepted"]
    assert accepted == summary["events_generated"] > 0
    ids: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            assert item["Key"].startswith("raw/")
            body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            for line in body.splitlines():
                if line.strip():
                    ids[orjson.loads(line)["event_id"]] += 1
    assert sum(ids.values()) == accepted
    assert max(ids.values()) == 1, "an event landed twice"
