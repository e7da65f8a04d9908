"""``run --workers``: the workers' summaries (and the last scrape of any that died) summed into
the run's one RunSummary, and the exit code of the whole. Pure (no composition root; it reads
only the run's stream config, for the buffering hints): tests/unit/test_workers.py."""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any

from producer.config import RunConfig, TargetKind
from producer.errors import EXIT_INCOMPLETE, EXIT_STREAM_UNUSABLE, EXIT_USAGE
from producer.sharding import Shard
from producer.streams.resolution import buffer_hints
from producer.summary import RunSummary
from producer.telemetry import cost
from producer.telemetry.aggregate import (
    Scrape,
    buckets,
    value,
)
from producer.telemetry.histogram import Histogram, StreamHistograms
from producer.telemetry.stats import COUNTS, StreamStats
from producer.workers.plan import Worker


def merge(values: Sequence[Any]) -> Any:
    """Sum of summary parts: numbers add, mappings merge key by key, equal strings stay, different
    ones are joined, lists concatenate, None is "nothing to add". Generic on purpose, so a field
    the producer adds to its summary later is summed without a change here."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, bool) for v in present):
        return any(present)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return sum(present)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return round(sum(present), 6)
    if all(isinstance(v, Mapping) for v in present):
        keys: dict[str, None] = {}
        for v in present:
            keys.update(dict.fromkeys(v))
        return {k: merge([v.get(k) for v in present]) for k in keys}
    if all(isinstance(v, list) for v in present):
        return [item for v in present for item in v]
    texts = list(dict.fromkeys(str(v) for v in present))
    return texts[0] if len(texts) == 1 else "; ".join(texts)


def scraped_books(scrape: Scrape, stream: str) -> dict[str, int]:
    """A stream's counters as a scrape shows them (every counter of stats.COUNTS with a metric),
    read the way telemetry/metrics.py writes them."""
    shown = {
        c.name: int(value(scrape, c.metric, stream=stream, **dict([c.label] if c.label else [])))
        for c in COUNTS
        if c.metric is not None
    }
    for c in COUNTS:
        if c.less is not None and c.name in shown:
            shown[c.name] += shown[c.less]
    return shown


def scraped_counts(scrape: Scrape, streams: Sequence[str]) -> dict[str, Any]:
    """A summary-shaped part from a worker's last scrape (for one that died without a summary)."""
    events = scrape.get("loadgen_events_generated")
    generated = int(sum(events.samples.values())) if events else 0
    out: dict[str, Any] = {}
    for name in streams:
        counts: dict[str, Any] = scraped_books(scrape, name)
        # What the worker had taken and not yet settled when it died is nobody's to count now:
        # lost, so that the merged books still add up (sent == accepted + dead_lettered + lost).
        counts["lost"] = counts["sent"] - counts["accepted"] - counts["dead_lettered"]
        out[name] = counts
    # Every event is offered to every stream it is routed to, so the busiest stream's sent is a
    # lower bound when the events counter says less (it is not fed on every path).
    generated = max([generated, *(c["sent"] for c in out.values())])
    return {"events_generated": generated, "streams": out}


def apply_scrape(
    scrape: Scrape, stats: Sequence[StreamStats], histograms: Mapping[str, StreamHistograms]
) -> None:
    """Copy summed scrapes into the StreamStats/histograms the live view reads, so the parent
    reuses LiveView as is."""
    for s in stats:
        for name, n in scraped_books(scrape, s.name).items():
            setattr(s, name, n)
        s.held = int(value(scrape, "loadgen_stream_queue_records", stream=s.name))
        s.in_flight = int(value(scrape, "loadgen_stream_in_flight_requests", stream=s.name))
        _fill(histograms[s.name].request_seconds, scrape, "loadgen_put_record_batch_duration_seconds", s.name)
        _fill(histograms[s.name].ack_seconds, scrape, "loadgen_ack_latency_seconds", s.name)


def _fill(h: Histogram, scrape: Scrape, family: str, stream: str) -> None:
    counts, total = buckets(scrape, family, stream=stream)
    if len(counts) == len(h.counts):
        h.counts, h.total, h.count = counts, total, sum(counts)


def combine(
    config: RunConfig,
    run_id: str,
    workers: Sequence[Worker],
    elapsed_s: float,
) -> RunSummary:
    """The run summary: the workers' summaries summed, plus the last scrape of any that died."""
    parts: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    spaces: list[dict[str, int]] = []
    for w in workers:
        if w.summary is not None:
            parts.append(w.summary)
            spaces.append(_space(w.shard, int(w.summary.get("events_generated") or 0)))
            continue
        entry: dict[str, Any] = {"index": w.index, "shard": [w.shard.index, w.shard.count]}
        code = w.returncode
        if code is not None and code < 0:
            entry["signal"] = signal.Signals(-code).name
        else:
            entry["exit_code"] = code
        seen = scraped_counts(w.scrape, config.streams) if w.scrape is not None else None
        age = max(0.0, (w.ended_at or time.time()) - w.scraped_at)
        entry["last_seen"] = None if seen is None else seen | {"age_s": round(age, 1)}
        if seen is not None:
            entry["lost"] = {name: c["lost"] for name, c in seen["streams"].items()}
            parts.append({k: seen[k] for k in ("events_generated", "streams")})
            # Lower bound: events after the last scrape may have been delivered as well.
            spaces.append(_space(w.shard, seen["events_generated"]))
        failed.append(entry)
    summary: dict[str, Any] = merge(parts) or {"events_generated": 0, "streams": {}}
    schedule = summary.get("schedule")
    if isinstance(schedule, dict) and schedule.get("target_events"):
        schedule["shortfall_pct"] = round(100.0 * schedule["shortfall_events"] / schedule["target_events"], 2)
    summary["cost"] = _cost(config, summary, [w.summary for w in workers if w.summary is not None], elapsed_s)
    spools = [str(w.dead_letter) for w in workers if w.dead_letter.is_file()]
    head = {
        "run_id": run_id,
        "profile": config.profile.name,
        "target": config.target.describe(),
        "rate": config.rate,
        "duration_s": round(elapsed_s, 3),
    }
    return RunSummary.from_dict(
        head
        | {k: v for k, v in summary.items() if k not in head}
        | {
            "output_dir": str(config.output_dir) if config.target.kind is TargetKind.LOCAL else None,
            "buffer_hints": buffer_hints(
                config.streams, config.local_stream_config, local=config.target.kind is TargetKind.LOCAL
            ),
            "dead_letter_path": spools[0] if len(spools) == 1 else None,
            "dead_letter_paths": spools,
            # Which seqs the run made (generation.py interleaves shards), for the audit.
            "seq_spaces": spaces,
            "complete": not failed,
            "workers": {"count": len(workers), "failed": failed},
        }
    )


def _cost(
    config: RunConfig, summary: dict[str, Any], parts: Sequence[dict[str, Any]], elapsed_s: float
) -> dict[str, Any]:
    """The cost block priced again on the merged counters (summed projections and lists of
    features would not mean anything): the workers generate side by side for the run's
    duration, so their summed bytes over that window is the run's rate."""
    streams: dict[str, Any] = summary.get("streams") or {}
    features: dict[str, cost.Features] = {}
    for part in parts:  # every worker described the same streams: the first to say wins
        for name, s in ((part.get("cost") or {}).get("streams") or {}).items():
            named = set(s.get("features") or ())
            features.setdefault(
                name, cost.Features("format_conversion" in named, "dynamic_partitioning" in named)
            )
    return cost.run_cost(
        config.target.region,
        {name: int(s.get("billed_bytes") or 0) for name, s in streams.items()},
        min(config.duration_s, elapsed_s),
        features,
        sum(int(s.get("bytes_sent") or 0) for s in streams.values()),
    )


def _space(shard: Shard, events: int) -> dict[str, int]:
    return {"offset": shard.index, "stride": shard.count, "events": events}


def exit_code(workers: Sequence[Worker]) -> int:
    """The workers' worst code; a dead worker makes it at least 1, nothing to count makes it 3,
    and all of them refusing their options (exit 2, no summary) is a usage error."""
    if workers and all(w.summary is None and w.returncode == EXIT_USAGE for w in workers):
        return EXIT_USAGE
    if not any(w.summary is not None or w.scrape is not None for w in workers):
        return EXIT_STREAM_UNUSABLE
    codes = [w.returncode or 0 for w in workers if w.summary is not None]
    code = max(codes, default=0)
    if any(w.summary is None for w in workers):
        code = EXIT_INCOMPLETE  # the run's books are incomplete: a worker's records are lost
    return code
