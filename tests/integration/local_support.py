"""Shared by the local Firehose's buffering, UpdateDestination and CloudWatch tests: an aiobotocore
Firehose client for a server, its delivery log, and a Lambda processor configuration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from aiobotocore.session import get_session
from botocore.config import Config

from producer.local.delivery import STATE_DIR

LAMBDA_ARN = "arn:aws:lambda:us-east-1:000000000000:function:transform"


@asynccontextmanager
async def firehose_client(url: str, validate: bool = True) -> AsyncIterator[Any]:
    """``validate=False`` turns botocore's client-side range checks off, so the server's own
    checks are what a test sees."""
    async with get_session().create_client(
        "firehose",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(parameter_validation=validate, retries={"total_max_attempts": 1}),
    ) as client:
        yield client


def delivery_log(output_dir: Path) -> list[dict[str, Any]]:
    path = output_dir / STATE_DIR / "delivery-log.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def next_object(
    output_dir: Path, destination: str, seen: int, timeout_s: float = 15.0
) -> dict[str, Any]:
    """The delivery-log entry for ``destination`` after the first ``seen`` ones, waited for."""
    deadline = time.monotonic() + timeout_s
    while True:
        entries = [e for e in delivery_log(output_dir) if e["destination"] == destination]
        if len(entries) > seen:
            return entries[seen]
        assert time.monotonic() < deadline, f"no {destination} object after {timeout_s}s"
        await asyncio.sleep(0.05)


def lambda_processing(size_mb: str | None = None, interval_s: str | None = None) -> dict[str, Any]:
    parameters = [{"ParameterName": "LambdaArn", "ParameterValue": LAMBDA_ARN}]
    if size_mb is not None:
        parameters.append({"ParameterName": "BufferSizeInMBs", "ParameterValue": size_mb})
    if interval_s is not None:
        parameters.append({"ParameterName": "BufferIntervalInSeconds", "ParameterValue": interval_s})
    return {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": parameters}]}
