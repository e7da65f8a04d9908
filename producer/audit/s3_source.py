"""Delivered objects in an S3 bucket/prefix (gzip NDJSON, NDJSON, Parquet), read via aiobotocore.

Object names are ``<prefix><stream>-<version>-YYYY-MM-DD-HH-MM-SS-<random>[.gz]``, so the stream
comes from the name; error output sits under a prefix holding its error-output-type:
https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html
https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html
Delivery time is the object's LastModified (one-second resolution).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from producer.audit import objects, trace
from producer.audit.findings import ObjectStat, StreamFindings
from producer.aws import clients as aws
from producer.local.keys import ERROR_OUTPUT_TYPES

_NAME = re.compile(r"^(?P<stream>[a-zA-Z0-9_.-]{1,64})-\d+-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-")
# Objects fetched at once: enough to hide S3 latency, few enough for a small machine.
CONCURRENT_GETS = 16


def stream_of(key: str) -> str | None:
    match = _NAME.match(key.rsplit("/", 1)[-1])
    return match.group("stream") if match else None


def error_type_of(key: str) -> str | None:
    for part in key.split("/"):
        if part in ERROR_OUTPUT_TYPES:
            return part
    return None


async def read_s3(
    settings: aws.AwsSettings, bucket: str, prefix: str, run_id: str, streams: Iterable[str]
) -> dict[str, StreamFindings]:
    wanted = set(streams)
    found = {name: StreamFindings(name, "s3") for name in wanted}
    try:
        async with aws.client("s3", settings) as s3:
            keys = [k async for k in _keys(s3, bucket, prefix)]
            gate = asyncio.Semaphore(CONCURRENT_GETS)

            async def one(item: dict[str, Any]) -> None:
                stream = stream_of(item["Key"])
                if stream not in wanted:
                    return
                async with gate:
                    response = await s3.get_object(Bucket=bucket, Key=item["Key"])
                    async with response["Body"] as body:
                        data = await body.read()
                _add(found[stream], item, data, run_id)

            await asyncio.gather(*(one(item) for item in keys))
    except aws.SDK_ERRORS as exc:
        raise aws.explain(exc, f"reading s3://{bucket}/{prefix}") from None
    return found


async def _keys(s3: Any, bucket: str, prefix: str) -> Any:
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item


def _add(findings: StreamFindings, item: dict[str, Any], data: bytes, run_id: str) -> None:
    key = str(item["Key"])
    error_type = error_type_of(key)
    if error_type is not None:
        for _code, raw in objects.error_envelopes(data):
            found = trace.from_record(raw, run_id)
            if found is not None and found.run_id == run_id:
                findings.errored(error_type, found.seq)
        return
    delivered_at = item["LastModified"].timestamp() if item.get("LastModified") else None
    mine, oldest = objects.tally(findings, data, run_id, delivered_at)
    if mine:
        findings.objects.append(ObjectStat(key, mine, len(data), delivered_at, oldest_event=oldest))
