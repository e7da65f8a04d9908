"""``run --control-from PATH|s3://BUCKET/KEY``: the shards of a distributed run (pods, tasks on
several machines) follow one control document, read every few seconds.

The document is JSON: ``{"rate": TOTAL, "paused": false, "stop": false}``, every field
optional. ``rate`` is the whole run's peak: each shard takes its exact share of it
(Shard.rate_share, as ``--rate`` is split), so all shards together send ``rate``. A document
that cannot be read or parsed changes nothing; the problem is logged once until it changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson

from producer.aws.clients import SDK_ERRORS, AwsSettings, client
from producer.control.state import ControlError, RunControl, check_flag, check_rate

POLL_S = 5.0
# Reading or parsing the document can fail these ways; the run goes on unchanged.
DOCUMENT_ERRORS: tuple[type[Exception], ...] = (ControlError, *SDK_ERRORS)


def parse_document(data: bytes) -> tuple[float | None, bool | None, bool]:
    """(rate, paused, stop) from the document's bytes; ControlError says what is wrong."""
    try:
        loaded = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ControlError(f"not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise ControlError('must be a JSON object such as {"rate": 800, "paused": false}')
    unknown = sorted(set(loaded) - {"rate", "paused", "stop"})
    if unknown:
        raise ControlError(f"unknown field {unknown[0]!r}: rate, paused and stop can be set")
    rate, paused = check_rate(loaded.get("rate")), check_flag("paused", loaded.get("paused"))
    return rate, paused, bool(check_flag("stop", loaded.get("stop")))


async def read_source(source: str, settings: AwsSettings) -> bytes:
    """The document's bytes from a file or an ``s3://bucket/key`` URL."""
    if not source.startswith("s3://"):
        return await asyncio.to_thread(Path(source).read_bytes)
    bucket, _, key = source.removeprefix("s3://").partition("/")
    async with client("s3", settings) as s3:
        response = await s3.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            data: bytes = await body.read()
            return data


async def follow(
    source: str,
    control: RunControl,
    share: Callable[[float], float],
    region: str,
    poll_s: float = POLL_S,
) -> None:
    """Read ``source`` every ``poll_s`` and apply what it says (this shard's ``share`` of its
    rate) until cancelled or it says stop. An s3:// document is read in ``region`` (or at
    AWS_ENDPOINT_URL_S3, which the SDK reads, for an S3-compatible store)."""
    settings = AwsSettings(region)
    who = f"document {source}"
    last: bytes | None = None
    problem = ""
    while True:
        try:
            data = await read_source(source, settings)
            if data != last:
                rate, paused, stop = parse_document(data)
                await control.patch(None if rate is None else share(rate), paused, who)
                last = data
                problem = ""
                if stop:
                    await control.stop(who)
                    return
        except DOCUMENT_ERRORS as exc:
            said = f"control: {who}: {exc}; nothing changed"
            if said != problem:
                control.log(said)
                problem = said
        await asyncio.sleep(poll_s)
