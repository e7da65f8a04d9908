"""Replay a dead-letter spool: resend every record to its stream, spool what still fails.

The records go through the same StreamChannel as a run (batching within the PutRecordBatch
limits, per-record resend, backoff, adaptive rate, backpressure), so a replay obeys the same
rules and keeps the same books: for every stream, sent == accepted + dead_lettered. What fails
again goes to a new spool next to the input (never appended to the file being read), which can
be replayed in turn.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from producer.app import RunResult, close, feed, open_spool, with_signals
from producer.config import Ending
from producer.delivery.channel import ChannelSettings, StreamChannel
from producer.delivery.retry import RetryPolicy
from producer.delivery.spool import SpoolEntry, read_spool
from producer.errors import UsageError
from producer.firehose.client import ClientSettings, open_client
from producer.firehose.errors import ApiError, TransportError
from producer.runtime import Signals
from producer.summary import RunSummary, StreamSummary
from producer.telemetry.stats import StreamStats


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    path: Path
    region: str
    endpoint_url: str | None  # None: real AWS through the standard credential chain
    dead_letter: Path | None  # None: next to ``path``, named after the replay
    summary_json: Path | None
    streams: tuple[str, ...]  # only these streams of the spool; empty: all
    channel: ChannelSettings
    retry: RetryPolicy
    shutdown_grace_s: float
    # A normal end drains this long at most (--drain-timeout); see app.close.
    drain_timeout_s: float
    seed: int | None = None

    @property
    def ending(self) -> Ending:
        return Ending(self.drain_timeout_s, self.shutdown_grace_s)


def default_output(path: Path, stamp: str) -> Path:
    """``spool.jsonl`` -> ``spool.replay-STAMP.jsonl`` in the same folder."""
    stem = path.name.removesuffix(".jsonl")
    return path.with_name(f"{stem}.replay-{stamp}.jsonl")


def load_entries(path: Path, streams: tuple[str, ...]) -> dict[str, list[SpoolEntry]]:
    """The spool's entries by stream, in file order; a clear UsageError for a bad file."""
    if not path.is_file():
        raise UsageError(f"dead-letter spool {str(path)!r} does not exist")
    by_stream: dict[str, list[SpoolEntry]] = {}
    try:
        for entry in read_spool(path):
            if not streams or entry.stream in streams:
                by_stream.setdefault(entry.stream, []).append(entry)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return by_stream


async def replay_spool(settings: ReplaySettings, out: TextIO = sys.stdout) -> RunResult:
    return await with_signals(lambda signals: _replay(settings, signals, out))


async def _replay(settings: ReplaySettings, signals: Signals, out: TextIO) -> RunResult:
    started = time.monotonic()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    by_stream = load_entries(settings.path, settings.streams)
    spool = open_spool(settings.dead_letter or default_output(settings.path, stamp))
    stats = [StreamStats(name) for name in by_stream]
    where = settings.endpoint_url or f"AWS {settings.region}"
    client_settings = ClientSettings(
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        allow_local_credentials=settings.endpoint_url is not None,
    )
    async with open_client(client_settings) as client:
        if by_stream:
            try:
                await client.list_streams()
            except TransportError as exc:
                raise UsageError(
                    f"cannot reach the Firehose endpoint at {where} ({exc.code}); check --endpoint-url"
                ) from None
            except ApiError:
                pass  # listing may be denied by IAM while PutRecordBatch is allowed: go on
        rng = random.Random(settings.seed)
        channels = [
            StreamChannel(
                s.name, client, settings.retry, spool, s, settings.channel, random.Random(rng.getrandbits(64))
            )
            for s in stats
        ]
        for channel in channels:
            channel.start()
        # The same end as a run: drain, or the grace after a signal (app.py).
        await feed(_feed(channels, by_stream), signals, spool)
        await close(channels, settings.ending, signals)
        spool.close()
    summary = RunSummary(
        kind="replay",
        replayed_from=str(settings.path),
        target=where,
        records_in_spool=sum(len(v) for v in by_stream.values()),
        records_replayed=sum(s.sent for s in stats),
        duration_s=round(time.monotonic() - started, 3),
        streams={s.name: StreamSummary.of(s) for s in stats},
        dead_letter_path=str(spool.path) if spool.count else None,
    )
    if settings.summary_json is not None:
        summary.write([settings.summary_json])
    _print(summary, stats, out)
    return RunResult(summary, summary.exit_code())


async def _feed(channels: list[StreamChannel], by_stream: dict[str, list[SpoolEntry]]) -> None:
    """Offer each stream's records in spool order, interleaved so no stream waits on another's
    backpressure longer than one record."""
    iterators: list[tuple[StreamChannel, Iterator[SpoolEntry]]] = [
        (c, iter(by_stream[c.name])) for c in channels
    ]
    rounds = 0
    while iterators:
        still: list[tuple[StreamChannel, Iterator[SpoolEntry]]] = []
        for channel, entries in iterators:
            entry = next(entries, None)
            if entry is None:
                continue
            still.append((channel, entries))
            wait = channel.offer(entry.data)
            if wait is not None:
                await wait
        iterators = still
        rounds += 1
        if rounds % 256 == 0:
            await asyncio.sleep(0)  # let the senders run even when no stream pushes back


def _print(summary: RunSummary, stats: list[StreamStats], out: TextIO) -> None:
    out.write(
        f"replayed {summary.records_replayed:,} of {summary.records_in_spool:,} records from "
        f"{summary.replayed_from} to {summary.target} in {summary.duration_s:.1f}s\n"
    )
    for s in stats:
        out.write(
            f"  {s.name}: sent {s.sent:,} accepted {s.accepted:,} dead_lettered {s.dead_lettered:,} "
            f"retried {s.retried_records:,} throttled {s.throttled_records:,}\n"
        )
        if s.stopped_reason:
            out.write(f"  {s.name} stopped: {s.stopped_reason}\n")
        if s.lost:
            out.write(
                f"  {s.name} lost: {s.lost:,} records neither accepted nor spooled (books incomplete)\n"
            )
    if summary.dead_letter_path:
        out.write(f"still failing, spooled to: {summary.dead_letter_path}\n")
    out.flush()
