"""Ingest throughput of `local serve` measured from a second process with a lean client.

    python -m producer.bench.loadcheck --seconds 5 --record-bytes 300

Starts `firehose-loadgen local serve --port 0` as a subprocess, creates one S3 stream and posts
prebuilt PutRecordBatch bodies (500 records each) over aiohttp, so the client costs little and
the number is the server's. Prints accepted records/s. Requests are unsigned: the local
Firehose does not check signatures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from producer.firehose import limits

TARGET = "Firehose_20150804."
HEADERS = {"Content-Type": "application/x-amz-json-1.1"}


def _body(stream: str, record_bytes: int, count: int) -> bytes:
    records = [{"Data": base64.b64encode(os.urandom(record_bytes)).decode()} for _ in range(count)]
    return orjson.dumps({"DeliveryStreamName": stream, "Records": records})


async def _call(session: aiohttp.ClientSession, url: str, op: str, body: bytes) -> dict[str, object]:
    async with session.post(url, data=body, headers={**HEADERS, "X-Amz-Target": TARGET + op}) as resp:
        parsed: dict[str, object] = orjson.loads(await resp.read())
        return parsed


async def measure(url: str, seconds: float, concurrency: int, record_bytes: int) -> float:
    stream = "loadcheck"
    create = {
        "DeliveryStreamName": stream,
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::000000000000:role/loadcheck",
            "BucketARN": "arn:aws:s3:::loadcheck",
            "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 900},
        },
    }
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _call(session, url, "CreateDeliveryStream", orjson.dumps(create))
        body = _body(stream, record_bytes, limits.MAX_BATCH_RECORDS)
        accepted = 0
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal accepted
            while time.monotonic() < deadline:
                answer = await _call(session, url, "PutRecordBatch", body)
                failed = answer.get("FailedPutCount")
                accepted += limits.MAX_BATCH_RECORDS - (failed if isinstance(failed, int) else 0)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return accepted / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an already running endpoint (default: start local serve)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--record-bytes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            proc = None
            url = args.url
            if url is None:
                # A large per-stream quota, so the number is the server's speed, not the quota.
                command = [sys.executable, "-m", "producer", "local", "serve", "--port", "0"]
                command += ["--output", str(Path(tmp) / "out"), "--records-per-s", "100000000"]
                command += ["--requests-per-s", "10000000", "--bytes-per-s", str(1 << 40)]
                proc = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert proc.stdout is not None
                line = proc.stdout.readline()
                url = line.split("listening on ", 1)[1].split(" ", 1)[0]
            try:
                rates.append(asyncio.run(measure(url, args.seconds, args.concurrency, args.record_bytes)))
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(60)
            print(f"run {len(rates)}: {rates[-1]:,.0f} records/s", flush=True)
    rates.sort()
    print(f"median {rates[len(rates) // 2]:,.0f} records/s ({args.record_bytes}-byte records)")


if __name__ == "__main__":
    main()
