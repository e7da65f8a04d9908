"""The hand-written producer `bench --compare` measures firehose-loadgen against (kind
"reference": the baseline of issue 10's 4x target), and the delivery loop both reference
producers share.

Issue 10 describes the baseline as what a careful user writes by hand: Faker makes pools of
values once at start-up (calling Faker per event costs tens of microseconds), and each event is
a dict of ``random.choice`` draws from those pools plus a fresh uuid4 and an ISO timestamp,
orjson-encoded with a newline and sent to both streams in batches of 500 on the stock
aiobotocore client with its default configuration (parameter validation on, standard retries),
a few calls in flight per stream. The events carry the field set and about the size of the
`mixed` profile's web, mobile and IoT events (300-600 bytes of JSON, 435 on average against
417), so the producers send about the same bytes.

Nothing here comes from firehose-loadgen's generators, encoder or sender. It uses only the
client opener (the default-configured client, plus local credentials for the null endpoint)
and the metrics module, so that `bench` scrapes it exactly as it scrapes a run. The
"stock-client" reference (bench_reference.py) runs the same delivery loop (`run_producer`)
with firehose-loadgen's generators, so the two references separate the cost of generation
from the cost of the delivery path.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from faker import Faker

from producer.firehose.client import ClientSettings, FirehoseClient, open_stock_client
from producer.telemetry.histogram import StreamHistograms
from producer.telemetry.metrics import MetricsServer, RunTelemetry, build_registry
from producer.telemetry.stats import StreamStats

T = TypeVar("T")

# Values per Faker-made field: enough to look random in a load test, and few enough that the
# pools take about 0.2 s to build (Faker is slow: a url costs about 90 us, a user agent 15 us).
POOL_SIZE = 1000
BATCH_RECORDS = 500  # PutRecordBatch's limit
IN_FLIGHT = 8  # calls per stream
TICK_S = 0.005

# The `mixed` profile's shares, repeated so one random.choice draws a source.
SOURCES = ("web",) * 5 + ("mobile",) * 3 + ("iot",) * 2
WEB_TYPES = ("page_view",) * 3 + ("product_view",) * 4 + ("search",) * 2 + ("add_to_cart", "purchase")
MOBILE_TYPES = ("screen_view",) * 6 + ("app_open", "push_open", "add_to_cart", "app_background")
IOT_TYPES = ("telemetry",) * 19 + ("alert",)
CATEGORIES = ("electronics", "books", "apparel", "home", "beauty", "sports", "toys", "grocery")
PHONES = (
    ("iPhone 16", "iOS"),
    ("iPhone 14", "iOS"),
    ("Pixel 9", "Android"),
    ("Galaxy S24", "Android"),
    ("Redmi Note 13", "Android"),
    ("iPad Air", "iPadOS"),
)
NETWORKS = ("wifi", "5g", "4g", "3g")
SCREENS = ("home", "search", "product", "cart", "profile", "orders", "deals")
DEVICE_KINDS = ("smart-shelf", "cold-storage", "delivery-van", "kiosk")
FIRMWARE = ("2.4.1", "2.4.2", "2.5.0", "3.0.0")

Event = dict[str, Any]
# One event: its source (for the per-source counter) and its encoded record.
EventSource = Callable[[], tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Pools:
    user_ids: tuple[str, ...]
    session_ids: tuple[str, ...]
    user_agents: tuple[str, ...]
    referrers: tuple[str, ...]
    ips: tuple[str, ...]
    geos: tuple[dict[str, Any], ...]
    pages: tuple[str, ...]
    products: tuple[tuple[str, str, float], ...]  # (product_id, category, price)
    devices: tuple[dict[str, str], ...]
    app_versions: tuple[str, ...]
    device_ids: tuple[str, ...]
    temperatures: tuple[float, ...]
    humidities: tuple[float, ...]
    batteries: tuple[float, ...]
    signals: tuple[int, ...]
    gps: tuple[dict[str, float], ...]


def build_pools(seed: int | None, size: int = POOL_SIZE) -> Pools:
    fake = Faker()
    fake.seed_instance(seed)

    def pool(make: Callable[[], T]) -> tuple[T, ...]:
        return tuple(make() for _ in range(size))

    def geo() -> dict[str, Any]:
        lat, lon, place, country, _tz = fake.location_on_land()
        return {"city": place, "country": country, "lat": round(float(lat), 2), "lon": round(float(lon), 2)}

    def device() -> dict[str, str]:
        model, os_name = fake.random_element(PHONES)
        return {"model": model, "os": os_name, "os_version": fake.numerify("1#.#")}

    def gps() -> dict[str, float]:
        lat, lon = fake.latlng()
        return {"lat": round(float(lat), 5), "lon": round(float(lon), 5)}

    return Pools(
        user_ids=pool(lambda: fake.numerify("user_#######")),
        session_ids=pool(lambda: str(fake.uuid4())),
        user_agents=pool(fake.user_agent),
        referrers=pool(fake.url),
        ips=pool(fake.ipv4_public),
        geos=pool(geo),
        pages=pool(lambda: "/" + fake.uri_path()),
        products=pool(
            lambda: (
                fake.numerify("P######"),
                fake.random_element(CATEGORIES),
                fake.pyfloat(min_value=2, max_value=1500, right_digits=2),
            )
        ),
        devices=pool(device),
        app_versions=pool(lambda: fake.numerify("5.1#.#")),
        device_ids=pool(lambda: fake.numerify("dev-#####")),
        temperatures=pool(lambda: fake.pyfloat(min_value=-5, max_value=35, right_digits=2)),
        humidities=pool(lambda: fake.pyfloat(min_value=20, max_value=90, right_digits=1)),
        batteries=pool(lambda: fake.pyfloat(min_value=3, max_value=100, right_digits=1)),
        signals=pool(lambda: fake.random_int(-110, -50)),
        gps=pool(gps),
    )


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def web_event(p: Pools, choice: Callable[[Any], Any]) -> Event:
    product_id, category, price = choice(p.products)
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": choice(p.user_ids),
        "event_type": choice(WEB_TYPES),
        "timestamp": _timestamp(),
        "source": "web",
        "session_id": choice(p.session_ids),
        "user_agent": choice(p.user_agents),
        "referrer": choice(p.referrers),
        "ip": choice(p.ips),
        "geo": choice(p.geos),
        "page": choice(p.pages),
        "product_id": product_id,
        "category": category,
        "price": price,
    }


def mobile_event(p: Pools, choice: Callable[[Any], Any]) -> Event:
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": choice(p.user_ids),
        "event_type": choice(MOBILE_TYPES),
        "timestamp": _timestamp(),
        "source": "mobile",
        "session_id": choice(p.session_ids),
        "device": choice(p.devices),
        "app_version": choice(p.app_versions),
        "network": choice(NETWORKS),
        "screen": choice(SCREENS),
    }


def iot_event(p: Pools, choice: Callable[[Any], Any]) -> Event:
    device_id = choice(p.device_ids)
    return {
        "event_id": str(uuid.uuid4()),
        "user_id": device_id,
        "event_type": choice(IOT_TYPES),
        "timestamp": _timestamp(),
        "source": "iot",
        "device_id": device_id,
        "device_kind": choice(DEVICE_KINDS),
        "firmware": choice(FIRMWARE),
        "temperature_c": choice(p.temperatures),
        "humidity_pct": choice(p.humidities),
        "battery_pct": choice(p.batteries),
        "signal_dbm": choice(p.signals),
        "gps": choice(p.gps),
    }


BUILDERS = {"web": web_event, "mobile": mobile_event, "iot": iot_event}


def handwritten_events(seed: int | None) -> EventSource:
    """Builds the pools (the start-up cost) and returns the per-event function."""
    pools = build_pools(seed)
    choice = random.Random(seed).choice

    def next_event() -> tuple[str, bytes]:
        source: str = choice(SOURCES)
        event = BUILDERS[source](pools, choice)
        return source, orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)

    return next_event


async def run_producer(
    kind: str,
    make_events: Callable[[], EventSource],
    endpoint_url: str,
    streams: list[str],
    rate: float,
    duration_s: float,
    metrics_port: int,
    linger_s: float,
) -> None:
    """Serve /metrics, make the event source, send ``rate`` events/s to every stream."""
    stats = [StreamStats(name) for name in streams]
    histograms = {s.name: StreamHistograms() for s in stats}
    by_source: Counter[str] = Counter()
    telemetry = RunTelemetry(kind, "mixed", f"endpoint {endpoint_url}", rate, stats, histograms, by_source)
    metrics = MetricsServer(build_registry(telemetry), "127.0.0.1", metrics_port)
    await metrics.start()
    settings = ClientSettings(region="us-east-1", endpoint_url=endpoint_url, allow_local_credentials=True)
    try:
        next_event = make_events()
        async with open_stock_client(settings) as client:
            await _deliver(client, next_event, stats, histograms, by_source, rate, duration_s)
        await asyncio.sleep(linger_s)
    finally:
        await metrics.stop()


async def _deliver(
    client: FirehoseClient,
    next_event: EventSource,
    stats: list[StreamStats],
    histograms: dict[str, StreamHistograms],
    by_source: Counter[str],
    rate: float,
    duration_s: float,
) -> None:
    slots = {s.name: asyncio.Semaphore(IN_FLIGHT) for s in stats}
    buffers: dict[str, list[bytes]] = {s.name: [] for s in stats}
    tasks: set[asyncio.Task[None]] = set()

    async def send(s: StreamStats, batch: list[bytes]) -> None:
        started = time.monotonic()
        try:
            response = await client.put_record_batch(s.name, batch)
            s.accepted += len(batch) - int(response.get("FailedPutCount", 0))
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

    # Open-loop pacing: what is due follows the clock alone, so a slow send cannot lower the
    # load it is measured under.
    start = time.monotonic()
    made = 0
    while True:
        elapsed = min(time.monotonic() - start, duration_s)
        due = int(elapsed * rate) - made
        for _ in range(due):
            source, data = next_event()
            by_source[source] += 1
            for s in stats:
                s.sent += 1
                buffers[s.name].append(data)
                if len(buffers[s.name]) >= BATCH_RECORDS:
                    await flush(s)
        made += due
        if elapsed >= duration_s:
            break
        await asyncio.sleep(TICK_S)
    for s in stats:
        if buffers[s.name]:
            await flush(s)
    await asyncio.gather(*tasks)
