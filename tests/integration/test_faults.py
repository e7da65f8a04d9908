"""The delivery engine against the local Firehose's fault knobs, through the real aiobotocore
client. Each test reads back what the endpoint delivered and reconciles it with the counters:
nothing missing, duplicates only where a call may have been accepted and was counted so."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from producer import pipeline
from producer.delivery.channel import ChannelSettings, StreamChannel
from producer.delivery.retry import RetryPolicy
from producer.delivery.spool import Spool, read_spool
from producer.firehose.client import ClientSettings, open_client
from producer.local.faults import FaultSettings
from producer.local.quotas import QuotaOverrides
from producer.telemetry.stats import StreamStats
from tests.helpers import ThreadedLocalFirehose, delivered_event_ids, start_cli

STREAM_ROOTS = {
    pipeline.S3_STREAM: Path(pipeline.LOCAL_BUCKET) / "raw-data",
    pipeline.OPENSEARCH_STREAM: Path("opensearch"),
}
# 20 attempts: at 30% failures a record fails 20 times in a row with p = 3.5e-11, so "exactly
# once" cannot flake; with the CLI's 10 it would be 6e-6 a record (see the report).
POLICY = RetryPolicy(max_attempts=20, record_ttl_s=120.0)


@dataclass
class Outcome:
    stats: list[StreamStats]
    delivered: dict[str, Counter[str]]
    endpoint_accepted: dict[str, int]
    spooled: dict[str, Counter[str]]
    expected: set[str]
    elapsed_s: float


async def _deliver(
    server: ThreadedLocalFirehose,
    tmp_path: Path,
    events: int,
    rate: float | None = None,
    read_timeout_s: float = 10.0,
    policy: RetryPolicy = POLICY,
    batch_records: int = 500,
) -> Outcome:
    """Send ``events`` events to both streams (paced at ``rate``/s if given), close, read back."""
    spool = Spool(tmp_path / "dead.jsonl")
    stats = [StreamStats(name) for name in pipeline.DEFAULT_STREAMS]
    settings = ClientSettings(
        region="us-east-1",
        endpoint_url=server.url,
        allow_local_credentials=True,
        connect_timeout_s=2.0,
        read_timeout_s=read_timeout_s,
    )
    started = time.monotonic()
    async with open_client(settings) as client:
        channels = [
            StreamChannel(
                s.name,
                client,
                policy,
                spool,
                s,
                ChannelSettings(linger_s=0.05, max_batch_records=batch_records),
                random.Random(i),
            )
            for i, s in enumerate(stats)
        ]
        for c in channels:
            c.start()
        for i in range(events):
            data = orjson.dumps({"event_id": f"e{i}", "n": i}) + b"\n"
            for c in channels:
                wait = c.offer(data)
                if wait is not None:
                    await wait
            if rate and i % 50 == 49:
                await asyncio.sleep(50 / rate)
        await asyncio.gather(*(c.close(60.0) for c in channels))
    spool.close()
    elapsed = time.monotonic() - started
    accepted = dict(server.server.records_accepted)
    server.stop()  # delivers everything buffered
    spooled: dict[str, Counter[str]] = {name: Counter() for name in STREAM_ROOTS}
    if spool.path.exists():
        for entry in read_spool(spool.path):
            spooled[entry.stream][orjson.loads(entry.data)["event_id"]] += 1
    return Outcome(
        stats=stats,
        delivered={
            name: delivered_event_ids(server.output_dir / root) for name, root in STREAM_ROOTS.items()
        },
        endpoint_accepted=accepted,
        spooled=spooled,
        expected={f"e{i}" for i in range(events)},
        elapsed_s=elapsed,
    )


def _reconcile(out: Outcome) -> None:
    """What the endpoint took, what it delivered and what the producer counted agree."""
    for s in out.stats:
        ids = out.delivered[s.name]
        assert s.sent == s.accepted + s.dead_lettered == len(out.expected), s.summary()
        assert sum(ids.values()) == out.endpoint_accepted[s.name], f"{s.name}: delivered != endpoint count"
        extra = sum(ids.values()) - len(ids)
        assert extra <= s.possible_duplicates, (
            f"{s.name}: {extra} duplicates, {s.possible_duplicates} flagged"
        )
        assert set(ids) | set(out.spooled[s.name]) == out.expected, f"{s.name}: events missing"
        assert s.accepted == len(set(ids)) - len(set(ids) & set(out.spooled[s.name]))
        assert sum(out.spooled[s.name].values()) == s.dead_lettered


def _exactly_once(out: Outcome) -> None:
    _reconcile(out)
    for s in out.stats:
        assert s.dead_lettered == 0, s.summary()
        assert out.delivered[s.name] == Counter(dict.fromkeys(out.expected, 1)), s.name


def _faults(server: ThreadedLocalFirehose, settings: FaultSettings) -> None:
    client = server.botocore_client()
    for name in pipeline.DEFAULT_STREAMS:
        client.create_delivery_stream(**pipeline.stream_request(name))
    server.server.set_faults(settings)


async def test_30_percent_record_failures_deliver_every_event_exactly_once(
    local_firehose: ThreadedLocalFirehose, tmp_path: Path
) -> None:
    _faults(local_firehose, FaultSettings(record_failure_rate=0.3, seed=1))
    out = await _deliver(local_firehose, tmp_path, events=5_000)
    _exactly_once(out)
    for s in out.stats:
        assert s.possible_duplicates == 0
        # Every failed record attempt was counted by its ErrorCode and resent alone.
        assert s.failures_by_code["ServiceUnavailableException"] == s.throttled_records == s.retried_records
        assert 0.2 * 5_000 < s.retried_records < 0.6 * 5_000
        assert out.endpoint_accepted[s.name] == 5_000


@pytest.mark.parametrize("error_type", ["ServiceUnavailableException", "InternalFailure"])
async def test_whole_call_5xx_lose_and_duplicate_nothing(
    local_firehose: ThreadedLocalFirehose, tmp_path: Path, error_type: str
) -> None:
    _faults(local_firehose, FaultSettings(call_error_rate=0.3, call_error_type=error_type, seed=2))
    out = await _deliver(local_firehose, tmp_path, events=4_000, rate=4_000)
    _exactly_once(out)
    for s in out.stats:
        assert s.failed_requests > 0 and s.failures_by_code[error_type] == s.failed_requests
        assert s.possible_duplicates == 0


async def test_responses_slower_than_the_read_timeout(
    local_firehose: ThreadedLocalFirehose, tmp_path: Path
) -> None:
    # Calls answer in 0.1-0.7 s against a 0.5 s read timeout: some time out after the endpoint
    # took the records. Those may arrive twice, and must be counted as possible duplicates.
    _faults(local_firehose, FaultSettings(latency_s=0.1, latency_jitter_s=0.6, seed=3))
    # Shorter backoff than the defaults: this test is about the books, not about patience.
    quick = RetryPolicy(base_s=0.1, cap_s=1.0, max_attempts=30)
    out = await _deliver(
        local_firehose, tmp_path, events=3_000, read_timeout_s=0.5, policy=quick, batch_records=100
    )
    _reconcile(out)
    for s in out.stats:
        assert s.failures_by_code["ReadTimeout"] > 0, s.summary()
        assert s.dead_lettered == 0
        assert set(out.delivered[s.name]) == out.expected


async def test_dropped_connections(local_firehose: ThreadedLocalFirehose, tmp_path: Path) -> None:
    _faults(local_firehose, FaultSettings(drop_connection_rate=0.25, seed=4))
    out = await _deliver(local_firehose, tmp_path, events=4_000, rate=4_000, batch_records=100)
    _reconcile(out)
    for s in out.stats:
        assert s.failed_requests > 0 and s.dead_lettered == 0
        assert set(out.delivered[s.name]) == out.expected
        assert s.possible_duplicates > 0  # a dropped connection leaves the outcome unknown


async def test_five_second_outage(local_firehose: ThreadedLocalFirehose, tmp_path: Path) -> None:
    _faults(local_firehose, FaultSettings(outage_start_s=0.5, outage_duration_s=5.0))
    out = await _deliver(local_firehose, tmp_path, events=2_400, rate=400)  # ~6 s of sending
    _exactly_once(out)
    assert out.elapsed_s >= 5.5
    for s in out.stats:
        assert s.failures_by_code["ServiceUnavailableException"] > 0
        assert s.retried_records > 0


@pytest.mark.parametrize("only_stream", [False, True], ids=["one-of-two", "the-only-stream"])
def test_stream_deleted_mid_run(
    local_firehose: ThreadedLocalFirehose, tmp_path: Path, only_stream: bool
) -> None:
    """A non-retryable error (the stream is gone): a clear message, the rest spooled, the books
    add up; exit 3 when no stream is left, else 1."""
    client = local_firehose.botocore_client()
    for name in pipeline.DEFAULT_STREAMS:
        client.create_delivery_stream(**pipeline.stream_request(name))
    victim = pipeline.OPENSEARCH_STREAM
    streams = ["--stream", victim] if only_stream else []
    proc = start_cli(
        "run",
        "--endpoint-url",
        local_firehose.url,
        *streams,
        "--rate",
        "1000",
        "--duration",
        "6s",
        "--output-dir",
        str(tmp_path / "out"),
        "--dead-letter",
        str(tmp_path / "dead.jsonl"),
        "--summary-json",
        str(tmp_path / "summary.json"),
        "--no-metrics",
        "--quiet",
    )
    try:
        deadline = time.monotonic() + 20
        while local_firehose.server.records_accepted.get(victim, 0) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        client.delete_delivery_stream(DeliveryStreamName=victim)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (3 if only_stream else 1), stderr
    assert f"error: delivery stream {victim!r} stopped: ResourceNotFoundException" in stderr
    assert "Traceback" not in stderr
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    accepted_by_endpoint = dict(local_firehose.server.records_accepted)
    local_firehose.stop()
    s = summary["streams"][victim]
    assert s["stopped_reason"].startswith("ResourceNotFoundException")
    assert s["sent"] == s["accepted"] + s["dead_lettered"]
    assert s["accepted"] == accepted_by_endpoint[victim] >= 500
    assert set(s["dead_lettered_by_reason"]) <= {"NonRetryable", "StreamStopped"}
    # The stream took nothing after it stopped; generation went on for the other stream.
    assert s["sent"] + s["not_taken_after_stop"] == summary["events_generated"]
    delivered = delivered_event_ids(local_firehose.output_dir / STREAM_ROOTS[victim])
    spooled = Counter(orjson.loads(e.data)["event_id"] for e in read_spool(tmp_path / "dead.jsonl"))
    assert sum(delivered.values()) == s["accepted"] and max(delivered.values()) == 1
    assert sum(spooled.values()) == s["dead_lettered"] and not set(spooled) & set(delivered)
    if not only_stream:
        other = summary["streams"][pipeline.S3_STREAM]
        assert other["accepted"] == summary["events_generated"] == accepted_by_endpoint[pipeline.S3_STREAM]
        assert other["dead_lettered"] == 0 and other["stopped_reason"] is None
        s3_ids = delivered_event_ids(local_firehose.output_dir / STREAM_ROOTS[pipeline.S3_STREAM])
        assert set(delivered) | set(spooled) <= set(s3_ids)


async def test_converges_near_a_real_quota(local_firehose: ThreadedLocalFirehose, tmp_path: Path) -> None:
    """The local Firehose's Direct PUT quota set to 2,000 records/s a stream, and records offered
    at twice that: the limit settles near the quota, most attempts succeed, nothing is lost."""
    _faults(local_firehose, FaultSettings())
    local_firehose.server.set_quotas(QuotaOverrides(records_per_s=2_000))
    out = await _deliver(local_firehose, tmp_path, events=12_000, rate=4_000, batch_records=100)
    _exactly_once(out)
    for s in out.stats:
        attempts = s.accepted + s.failed_record_attempts
        print(
            f"{s.name}: {s.accepted / out.elapsed_s:.0f} records/s accepted, {attempts / s.accepted:.2f} "
            f"attempts a record, {s.rate_cuts} cuts, limit {s.current_limit}"
        )
        assert s.throttled_records > 0 and s.rate_cuts >= 1
        # The bucket holds one second's worth, so a run of a few seconds may beat the quota a bit.
        assert s.accepted / out.elapsed_s <= 2_000 * 1.35
        assert s.accepted / out.elapsed_s >= 2_000 * 0.6
        # Unpaced, 8 calls in flight would be throttled on nearly every attempt.
        assert attempts <= 1.6 * s.accepted
        # The limit settles near the quota: cut below it, then creeping back up towards it
        # (seen: ~1,700 at the end of the run).
        assert s.current_limit is not None and 2_000 * 0.5 <= s.current_limit <= 2_000 * 1.5
