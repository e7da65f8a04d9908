"""The reference producer `bench --compare` measures us against: what a careful user writes by
hand with the stock aiobotocore client.

It uses the same pooled generators and orjson encoding as firehose-loadgen (so the comparison
is about the delivery path, not about Faker), batches 500 records per PutRecordBatch, keeps a
few calls in flight per stream, and counts FailedPutCount. It uses the client with its default
configuration (parameter validation on, standard retries), as such code does. It exports the
same Prometheus series as a run, so the benchmark measures both the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from producer import limits
from producer.encoding import encode_json_line
from producer.events import build_generator
from producer.firehose import ClientSettings, FirehoseClient, open_stock_client
from producer.histogram import StreamHistograms
from producer.metrics import MetricsServer, RunTelemetry, build_registry
from producer.schedule import Pacer, constant
from producer.stats import StreamStats

MIX = {"web": 0.5, "mobile": 0.3, "iot": 0.2}


async def run_reference(
    endpoint_url: str,
    streams: list[str],
    rate: float,
    duration_s: float,
    seed: int | None,
    metrics_port: int,
    linger_s: float,
    in_flight: int = 8,
) -> None:
    stats = [StreamStats(name) for name in streams]
    histograms = {s.name: StreamHistograms() for s in stats}
    by_source: Counter[str] = Counter()
    telemetry = RunTelemetry(
        "reference", "mixed", f"endpoint {endpoint_url}", rate, stats, histograms, by_source
    )
    metrics = MetricsServer(build_registry(telemetry), "127.0.0.1", metrics_port)
    await metrics.start()
    settings = ClientSettings(region="us-east-1", endpoint_url=endpoint_url, allow_local_credentials=True)
    try:
        async with open_stock_client(settings) as client:
            await _produce(client, stats, histograms, by_source, rate, duration_s, seed, in_flight)
        await asyncio.sleep(linger_s)
    finally:
        await metrics.stop()


async def _produce(
    client: FirehoseClient,
    stats: list[StreamStats],
    histograms: dict[str, StreamHistograms],
    by_source: Counter[str],
    rate: float,
    duration_s: float,
    seed: int | None,
    in_flight: int,
) -> None:
    generator = build_generator(MIX, seed)
    slots = {s.name: asyncio.Semaphore(in_flight) for s in stats}
    buffers: dict[str, list[bytes]] = {s.name: [] for s in stats}
    tasks: set[asyncio.Task[None]] = set()

    async def send(s: StreamStats, batch: list[bytes]) -> None:
        started = time.monotonic()
        try:
            response = await client.put_record_batch(s.name, batch)
            failed = int(response.get("FailedPutCount", 0))
            s.accepted += len(batch) - failed
        except Exception:  # a hand-written loop counts and moves on
            s.failed_requests += 1
        finally:
            s.requests += 1
            histograms[s.name].request_seconds.observe(time.monotonic() - started)
            slots[s.name].release()

    async def flush(s: StreamStats) -> None:
        batch, buffers[s.name] = buffers[s.name], []
        await slots[s.name].acquire()
        task = asyncio.create_task(send(s, batch))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async for due in Pacer(constant(rate), duration_s).ticks(asyncio.Event()):
        now = time.time()
        for _ in range(due):
            event = generator.next_event(now)
            by_source[event["source"]] += 1
            data = encode_json_line(event)
            for s in stats:
                s.sent += 1
                buffers[s.name].append(data)
                if len(buffers[s.name]) >= limits.MAX_BATCH_RECORDS:
                    await flush(s)
    for s in stats:
        if buffers[s.name]:
            await flush(s)
    await asyncio.gather(*tasks)
