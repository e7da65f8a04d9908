"""Applying a soak setting to live streams and putting the original configuration back, through
DescribeDeliveryStream and UpdateDestination, the same calls against AWS, a Firehose endpoint or
the embedded local Firehose.

UpdateDestination takes the VersionId the caller last saw; a stream someone else changed since
is refused with ConcurrentModificationException. The soak then reads the stream once more and
retries once; a second refusal ends the soak (and restores).
https://docs.aws.amazon.com/firehose/latest/APIReference/API_UpdateDestination.html
Describe shows the new version at once; AWS says a change is "usually effective within a few
minutes", which the soak's drain wait covers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from producer.audit import settings as vocabulary
from producer.errors import StreamUnusable, UsageError
from producer.firehose.errors import ApiError, TransportError

STALE = "ConcurrentModificationException"


class StreamsClient(Protocol):
    async def describe(self, stream: str) -> dict[str, Any]: ...

    async def update_destination(self, **params: Any) -> None: ...


async def describe_all(client: StreamsClient, streams: Iterable[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in streams:
        try:
            out[name] = await client.describe(name)
        except (ApiError, TransportError) as exc:
            raise UsageError(f"describing {name!r} failed: {exc}") from None
    return out


async def _update(
    client: StreamsClient,
    stream: str,
    build: Callable[[dict[str, Any]], dict[str, Any] | None],
    log: Callable[[str], None],
) -> dict[str, Any] | None:
    """Describe, build the request, UpdateDestination; on a stale version, once more. Returns
    the description the request was built on (None: nothing to change)."""
    for attempt in (1, 2):
        description = await client.describe(stream)
        request = build(description)
        if request is None:
            return None
        try:
            await client.update_destination(**request)
            return description
        except ApiError as exc:
            if exc.code != STALE:
                raise StreamUnusable(f"UpdateDestination on {stream!r} failed: {exc}") from None
            if attempt == 2:
                raise StreamUnusable(
                    f"{stream!r} was changed by someone else while the soak updated it "
                    f"(version {description.get('VersionId')} went stale twice); stopping the soak"
                ) from None
            version = description.get("VersionId")
            log(f"{stream}: version {version} is stale (changed elsewhere); reading it again")
    return None  # not reached


async def _wait_until(
    client: StreamsClient,
    stream: str,
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    poll_s: float,
    what: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        description = await client.describe(stream)
        if done(description):
            return description
        if time.monotonic() >= deadline:
            raise StreamUnusable(
                f"{stream!r} did not show {what} within {timeout_s:g}s "
                f"(version {description.get('VersionId')}, status {description.get('DeliveryStreamStatus')})"
            )
        await asyncio.sleep(poll_s)


def effective(
    setting: vocabulary.Setting,
    originals: Mapping[str, Mapping[str, Any]],
    touched: Iterable[str],
) -> dict[str, dict[str, float]]:
    """Per stream, what to set for ``setting``: its values, and the original value of every
    parameter another setting of the soak ``touched``, so that each setting is measured on the
    configuration as found plus its own values, whatever ran before it."""
    out: dict[str, dict[str, float]] = {}
    for stream, description in originals.items():
        found = vocabulary.current(description)
        out[stream] = {n: found[n] for n in touched if n in found} | {
            n: v for n, v in setting.params.items() if n in found
        }
    return out


async def apply(
    client: StreamsClient,
    params: Mapping[str, Mapping[str, float]],
    label: str,
    log: Callable[[str], None],
    timeout_s: float = 300.0,
    poll_s: float = 1.0,
) -> dict[str, dict[str, Any]]:
    """Set ``params[stream]`` on every stream (``effective``); wait until Describe shows the new
    version and values. Returns the streams' descriptions afterwards."""
    out: dict[str, dict[str, Any]] = {}
    for stream, values in params.items():

        def build(
            d: dict[str, Any], s: str = stream, v: Mapping[str, float] = values
        ) -> dict[str, Any] | None:
            if vocabulary.shows(d, v):
                return None  # already so (the previous setting left it as this one wants)
            return vocabulary.apply_request(s, d, v)

        before = await _update(client, stream, build, log)
        if before is None:
            out[stream] = await client.describe(stream)
            continue
        old = before.get("VersionId")

        def applied(d: dict[str, Any], old: Any = old, v: Mapping[str, float] = values) -> bool:
            return d.get("VersionId") != old and vocabulary.shows(d, v)

        out[stream] = await _wait_until(client, stream, applied, timeout_s, poll_s, "the new settings")
        log(f"{stream}: applied {label} (version {old} -> {out[stream].get('VersionId')})")
    return out


async def restore(
    client: StreamsClient,
    originals: Mapping[str, Mapping[str, Any]],
    log: Callable[[str], None],
    timeout_s: float = 300.0,
    poll_s: float = 1.0,
) -> list[str]:
    """Put back every stream's original hints and processor parameters; returns the problems
    (empty: every stream is as found). Never raises for one stream: it tries them all."""
    problems: list[str] = []
    for stream, original in originals.items():
        try:

            def build(
                d: dict[str, Any], s: str = stream, o: Mapping[str, Any] = original
            ) -> dict[str, Any] | None:
                return vocabulary.restore_request(s, o, d)

            def restored(d: dict[str, Any], o: Mapping[str, Any] = original) -> bool:
                return d.get("Destinations") == o.get("Destinations")

            if await _update(client, stream, build, log) is None:
                continue
            await _wait_until(
                client,
                stream,
                restored,
                timeout_s,
                poll_s,
                "its original configuration",
            )
            log(f"{stream}: restored its original configuration")
        except (StreamUnusable, UsageError, ApiError, TransportError) as exc:
            problems.append(f"{stream}: could not restore its original configuration: {exc}")
    return problems
