"""One /metrics for ``--workers``: the workers' scrapes, parsed and summed.

Why scraping and not prometheus-client's multiprocess mode: multiprocess mode only covers the
library's own Counter/Gauge/Histogram objects written to mmap files, while the producer exports
its plain counters through a custom collector at scrape time (metrics.py) and keeps
prometheus_client off the hot path. Scraping each worker's own /metrics reuses that exposition
unchanged, and the same scrape feeds the parent's live view and a dead worker's last counters.

With metrics.py, this is the only module that imports prometheus_client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

# (sample name, sorted (label, value) pairs): one series.
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class Family:
    """One metric family of a scrape, its series in exposition order."""

    name: str
    documentation: str
    type: str
    samples: dict[SeriesKey, float] = field(default_factory=dict)


# Family name -> family, in exposition order.
Scrape = dict[str, Family]


def _key(name: str, labels: dict[str, str]) -> SeriesKey:
    return name, tuple(sorted(labels.items()))


def exposition_samples(text: str) -> Iterator[Sample]:
    """Every sample of a Prometheus text exposition, for readers outside telemetry/ (bench)."""
    for family in text_string_to_metric_families(text):
        yield from family.samples


def parse_scrape(text: str) -> Scrape:
    """A worker's /metrics text. Its process_* series are left out: each worker's memory and
    CPU say nothing once summed (start times, fd limits), and the parent exports its own."""
    scrape: Scrape = {}
    for parsed in text_string_to_metric_families(text):
        if parsed.name.startswith("process_"):
            continue
        family = Family(parsed.name, parsed.documentation, parsed.type)
        for s in parsed.samples:
            family.samples[_key(s.name, s.labels)] = float(s.value)
        scrape[parsed.name] = family
    return scrape


def _is_info(family: Family) -> bool:
    # An info metric is a gauge of constant 1 in the text format; the workers of one run carry
    # the same labels (one run id), so summing would say "3" where the run is one.
    return family.type in ("info", "gauge") and family.name.endswith("_info")


# Gauges that are a reading, not a part of the run's whole. loadgen_clock_seconds: the workers
# run on one host and read the same CLOCK_MONOTONIC, so the largest is the newest reading.
_NOT_SUMMED = frozenset({"loadgen_clock_seconds"})


def sum_scrapes(scrapes: Iterable[Scrape]) -> Scrape:
    """Series-by-series sums: counters and histogram buckets add up, and so do the gauges the
    producer exports (queue, in flight, rate limit, achieved and target rate are per-worker
    parts of the run's whole). Info metrics and the clock keep the largest value instead."""
    total: Scrape = {}
    for scrape in scrapes:
        for name, family in scrape.items():
            into = total.setdefault(name, Family(name, family.documentation, family.type))
            keep_max = _is_info(family) or name in _NOT_SUMMED
            for key, value in family.samples.items():
                if key in into.samples:
                    into.samples[key] = (
                        max(into.samples[key], value) if keep_max else into.samples[key] + value
                    )
                else:
                    into.samples[key] = value
    return total


def value(scrape: Scrape, family: str, sample: str | None = None, **labels: str) -> float:
    """One series' value (0 when absent): ``value(s, "loadgen_records", stream="a", outcome="sent")``."""
    found = scrape.get(family)
    if found is None:
        return 0.0
    return found.samples.get(_key(sample or _sample_name(found), labels), 0.0)


def _sample_name(family: Family) -> str:
    return f"{family.name}_total" if family.type == "counter" else family.name


def buckets(scrape: Scrape, family: str, **labels: str) -> tuple[list[int], float]:
    """A histogram series' per-bucket (not cumulative) counts in exposition order, and its sum."""
    found = scrape.get(family)
    if found is None:
        return [], 0.0
    bucket_name = f"{family}_bucket"
    wanted = set(labels.items())
    cumulative = [
        v
        for (name, pairs), v in found.samples.items()
        if name == bucket_name and wanted <= set(pairs) and len(pairs) == len(wanted) + 1
    ]
    counts = [round(b - a) for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
    return counts, value(scrape, family, f"{family}_sum", **labels)


class AggregateCollector(Collector):
    """Exposes whatever ``source`` returns (the summed scrapes) at every scrape."""

    def __init__(self, source: Callable[[], Scrape]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for family in self._source().values():
            metric = Metric(family.name, family.documentation, family.type)
            for (name, pairs), v in family.samples.items():
                metric.add_sample(name, dict(pairs), v)
            yield metric


def build_aggregate_registry(source: Callable[[], Scrape]) -> CollectorRegistry:
    """The parent's registry: the workers' sums plus the parent's own process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AggregateCollector(source))
    ProcessCollector(registry=registry)
    return registry
