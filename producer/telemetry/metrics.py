"""Prometheus metrics: the only module that imports prometheus_client (with metrics_aggregate.py,
which sums the scrapes of --workers processes into one /metrics).

Nothing on the hot path touches prometheus_client. The producer keeps plain counters
(StreamStats) and cheap histograms (histogram.py); a custom collector turns them into
Prometheus series at scrape time, so a scrape and the run summary read the same numbers.
Naming follows https://prometheus.io/docs/practices/naming/ (base units, ``_total`` counters).
"""

from __future__ import annotations

import errno
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from producer import __version__
from producer.errors import UsageError
from producer.telemetry.histogram import Histogram, StreamHistograms
from producer.telemetry.stats import COUNTS, Reason, StreamStats

DEFAULT_METRICS_PORT = 9450
# Label values are bounded: outcomes and reasons are fixed lists; unknown error codes fold
# into "other" so a misbehaving endpoint cannot blow up the series count.
# The families several counters of stats.Books share, by one label (what each series means is
# the counter's own meaning); every other counter with a metric is a family of its own.
SHARED_FAMILIES = {
    "loadgen_records": ("outcome", "Records by outcome."),
    "loadgen_put_record_batch_requests": ("result", "PutRecordBatch calls by result."),
}
# One outcome that is not a counter of its own: the dead-lettered records of reason Dropped.
DROPPED = ("dropped", "refused under --on-full drop")
OUTCOMES = (*(c.label[1] for c in COUNTS if c.label and c.metric == "loadgen_records"), DROPPED[0])
DEAD_LETTER_REASONS = tuple(r.value for r in Reason)  # every reason a record can be given up for
ERROR_CODES = (
    "ServiceUnavailableException",
    "InternalFailure",
    "ThrottlingException",
    "InvalidArgumentException",
    "ValidationException",
    "ResourceNotFoundException",
    "InvalidKMSResourceException",
    "AccessDeniedException",
    "ConnectionError",
    "ConnectTimeout",
    "ConnectionClosed",
    "ReadTimeout",
    "CallTimeout",
    "CredentialError",
    "MalformedResponse",
    "other",
)
SOURCES = ("web", "mobile", "iot")


@dataclass(slots=True)
class RunTelemetry:
    """Everything a scrape reads; built by the app, updated in place as the run goes."""

    run_id: str
    profile: str
    target: str
    target_rate: float
    streams: Sequence[StreamStats]
    histograms: dict[str, StreamHistograms]
    events_by_source: Counter[str] = field(default_factory=Counter)
    # What the rate shape asks for now; falls back to target_rate (the run's nominal rate).
    target_rate_now: Callable[[], float] | None = None


def _fold_codes(codes: Counter[str]) -> dict[str, int]:
    out = dict.fromkeys(ERROR_CODES, 0)
    for code, n in codes.items():
        out[code if code in out else "other"] += n
    return out


def _counter_families() -> dict[str, CounterMetricFamily]:
    """An empty family for each metric of stats.COUNTS, its help text made of the meanings."""
    help_of: dict[str, list[str]] = {}
    for c in COUNTS:
        if c.metric is not None:
            help_of.setdefault(c.metric, []).append(f"{c.label[1]}: {c.meaning}" if c.label else c.meaning)
    help_of["loadgen_records"].append(f"{DROPPED[0]}: {DROPPED[1]}")
    families = {}
    for metric, parts in help_of.items():
        if metric in SHARED_FAMILIES:
            label, intro = SHARED_FAMILIES[metric]
            families[metric] = CounterMetricFamily(
                metric, f"{intro} {'; '.join(parts)}.", labels=["stream", label]
            )
        else:
            families[metric] = CounterMetricFamily(metric, parts[0], labels=["stream"])
    return families


def _add_counts(families: dict[str, CounterMetricFamily], s: StreamStats) -> None:
    for c in COUNTS:
        if c.metric is None:
            continue
        value = getattr(s, c.name) - (getattr(s, c.less) if c.less else 0)
        families[c.metric].add_metric([s.name, c.label[1]] if c.label else [s.name], value)
    dropped = s.dead_by_reason.get(Reason.DROPPED.value, 0)
    families["loadgen_records"].add_metric([s.name, DROPPED[0]], dropped)


def _histogram(name: str, doc: str, unit_streams: Iterable[tuple[str, Histogram]]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=["stream"])
    for stream, h in unit_streams:
        family.add_metric([stream], buckets=h.cumulative(), sum_value=h.total)
    return family


class LoadgenCollector(Collector):
    def __init__(self, telemetry: RunTelemetry) -> None:
        self.t = telemetry

    def collect(self) -> Iterator[Metric]:
        t = self.t
        info = InfoMetricFamily("loadgen", "The run this producer is doing.")
        info.add_metric(
            [], {"version": __version__, "run_id": t.run_id, "profile": t.profile, "target": t.target}
        )
        yield info

        # Read next to the counters, in the same synchronous collect: a scraper divides counter
        # deltas by this clock's deltas to get rates in the producer's own time. The scrape's
        # arrival time is not that: a busy event loop answers /metrics late, by varying amounts.
        clock = GaugeMetricFamily(
            "loadgen_clock_seconds",
            "The producer's monotonic clock when this scrape read the counters, in seconds from "
            "an arbitrary start (only differences mean anything): divide counter differences by "
            "its differences for rates in the producer's own time, free of scrape delays.",
        )
        clock.add_metric([], time.monotonic())
        yield clock

        events = CounterMetricFamily(
            "loadgen_events_generated", "Events generated, by source.", labels=["source"]
        )
        for source in sorted(set(SOURCES) | set(t.events_by_source)):
            events.add_metric([source], t.events_by_source.get(source, 0))
        yield events

        counts = _counter_families()
        failures = CounterMetricFamily(
            "loadgen_failures",
            "Failures by error code: per-record ErrorCodes count one per record, whole-call "
            "errors one per call.",
            labels=["stream", "error_code"],
        )
        dead = CounterMetricFamily(
            "loadgen_dead_lettered_records", "Records spooled, by reason.", labels=["stream", "reason"]
        )
        limit = GaugeMetricFamily(
            "loadgen_stream_rate_limit_records_per_second",
            "The adaptive send limit (+Inf when not limiting).",
            labels=["stream"],
        )
        achieved = GaugeMetricFamily(
            "loadgen_stream_achieved_rate_records_per_second",
            "Records accepted per second, recent average.",
            labels=["stream"],
        )
        queue = GaugeMetricFamily(
            "loadgen_stream_queue_records",
            "Records held by the stream and not yet accepted or spooled.",
            labels=["stream"],
        )
        in_flight = GaugeMetricFamily(
            "loadgen_stream_in_flight_requests", "PutRecordBatch calls awaiting an answer.", labels=["stream"]
        )
        for s in t.streams:
            _add_counts(counts, s)
            for code, value in _fold_codes(s.failures_by_code).items():
                failures.add_metric([s.name, code], value)
            reasons = dict.fromkeys(DEAD_LETTER_REASONS, 0) | dict(s.dead_by_reason)
            for reason, value in reasons.items():
                dead.add_metric([s.name, reason], value)
            current = s.current_limit
            limit.add_metric([s.name], math.inf if current is None else current)
            achieved.add_metric([s.name], s.achieved_rate)
            queue.add_metric([s.name], s.held)
            in_flight.add_metric([s.name], s.in_flight)
        yield from counts.values()
        yield from (failures, dead)

        target = GaugeMetricFamily(
            "loadgen_target_rate_events_per_second", "Events per second the profile asks for now."
        )
        target.add_metric([], t.target_rate_now() if t.target_rate_now else t.target_rate)
        yield from (target, limit, achieved, queue, in_flight)

        hists = [(name, t.histograms[name]) for name in (s.name for s in t.streams)]
        yield _histogram(
            "loadgen_put_record_batch_duration_seconds",
            "PutRecordBatch round-trip time, whatever the answer.",
            ((n, h.request_seconds) for n, h in hists),
        )
        yield _histogram(
            "loadgen_batch_records",
            "Records per PutRecordBatch call.",
            ((n, h.batch_records) for n, h in hists),
        )
        yield _histogram(
            "loadgen_batch_bytes",
            "Bytes of record data per PutRecordBatch call.",
            ((n, h.batch_bytes) for n, h in hists),
        )
        yield _histogram(
            "loadgen_ack_latency_seconds",
            "From event creation to Firehose's acknowledgement, per accepted record.",
            ((n, h.ack_seconds) for n, h in hists),
        )


def build_registry(telemetry: RunTelemetry) -> CollectorRegistry:
    """A fresh registry (tests make their own) with the run's series and process metrics."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(LoadgenCollector(telemetry))
    ProcessCollector(registry=registry)
    return registry


# Adds more routes to the metrics server's app (run --control: producer/control/server.py).
Routes = Callable[[web.Application], None]


class MetricsServer:
    """Serves /metrics (and /healthz for container health checks) on the event loop, plus
    whatever ``routes`` adds."""

    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, routes: Routes | None = None
    ) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._routes = routes
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(self._registry))
        app.router.add_get("/healthz", _healthz)
        if self._routes is not None:
            self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/metrics"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_metrics(
    registry: CollectorRegistry, host: str, port: int, fallback: bool, routes: Routes | None = None
) -> tuple[MetricsServer, str]:
    """Start /metrics on ``host:port``. With ``fallback`` (the port was not asked for, only
    defaulted) a taken port gives way to any free one, and the note returned says so; an
    explicit port stays strict: one line, exit 2. Returns the server and that note ("" if none)."""
    server = MetricsServer(registry, host, port, routes)
    try:
        await server.start()
        return server, ""
    except OSError as exc:
        if not (fallback and exc.errno == errno.EADDRINUSE):
            raise UsageError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror}); "
                "pass another --metrics-port, 0 for any free port, or --no-metrics"
            ) from None
    server = MetricsServer(registry, host, 0, routes)
    await server.start()
    return server, f" (port {port} is taken; --metrics-port N to choose one)"


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")
