"""Summaries summed into one: ``run --workers`` (the workers' summaries, and the last scrape of
any that died) and ``merge`` (the shards of a run, producer/results/combine.py) both use
``merge_parts``: counters summed, latency histograms merged bucket by bucket, cost priced again
on the sums. Pure: tests/unit/test_workers.py."""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any

from producer.app import local_buffer_hints
from producer.checks import judge
from producer.checks.expr import Check
from producer.checks.figures import Figures
from producer.config import RunConfig, TargetKind
from producer.errors import (
    EXIT_CHECK_FAILED,
    EXIT_DEAD_LETTERED,
    EXIT_INCOMPLETE,
    EXIT_STREAM_UNUSABLE,
    EXIT_USAGE,
)
from producer.sharding import Shard
from producer.summary import RunSummary
from producer.telemetry import cost
from producer.telemetry.aggregate import (
    Scrape,
    buckets,
    value,
)
from producer.telemetry.histogram import Histogram, LogHistogram, StreamHistograms
from producer.telemetry.stats import StreamStats
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


# Parts of a summary that are not sums: each merge sets them itself.
NOT_SUMMED = ("shard", "checks", "aborted", "exit_code", "buffer_hints", "dead_letter_path")


def merge_parts(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summaries (or parts of them) summed: ``merge`` on everything but ``NOT_SUMMED``, then the
    parts that summing would spoil made right: each stream's latency histograms merged (their
    percentiles computed again from the summed buckets, never averaged), the shortfall's share
    computed again from the summed events."""
    summed: dict[str, Any] = merge([{k: v for k, v in p.items() if k not in NOT_SUMMED} for p in parts]) or {}
    summed.setdefault("events_generated", 0)
    summed.setdefault("streams", {})
    for name, stream in summed["streams"].items():
        blocks = [((p.get("streams") or {}).get(name) or {}).get("latency") or {} for p in parts]
        kinds = dict.fromkeys(k for b in blocks for k in b)
        latency = {}
        for kind in kinds:
            h = LogHistogram()
            for b in blocks:
                if kind in b:
                    h.merge(LogHistogram.from_dict(b[kind]))
            latency[kind] = h.to_dict()
        stream["latency"] = latency
    schedule = summed.get("schedule")
    if isinstance(schedule, dict) and schedule.get("target_events"):
        schedule["shortfall_pct"] = round(100.0 * schedule["shortfall_events"] / schedule["target_events"], 2)
    return summed


def merged_checks(
    checks: Sequence[Check], summary: RunSummary, parts: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]] | None:
    """The merged run's checks block (checks.judge.combine), None when there are none."""
    given = [list(p.get("checks") or []) for p in parts]
    if not checks and not any(given):
        return None
    return judge.combine(checks, Figures.of_summary(summary), given)


# Per-stream counters a scrape can give for a worker that left no summary.
_SCRAPED_OUTCOMES = {
    "sent": "sent",
    "accepted": "accepted",
    "dead_lettered": "dead_lettered",
    "retried_records": "retried",
    "failed_record_attempts": "failed_attempt",
}


def scraped_counts(scrape: Scrape, streams: Sequence[str]) -> dict[str, Any]:
    """A summary-shaped part from a worker's last scrape (for one that died without a summary)."""
    events = scrape.get("loadgen_events_generated")
    generated = int(sum(events.samples.values())) if events else 0
    out: dict[str, Any] = {}
    for name in streams:
        counts = {
            key: int(value(scrape, "loadgen_records", stream=name, outcome=outcome))
            for key, outcome in _SCRAPED_OUTCOMES.items()
        }
        ok = int(value(scrape, "loadgen_put_record_batch_requests", stream=name, result="ok"))
        failed = int(value(scrape, "loadgen_put_record_batch_requests", stream=name, result="error"))
        counts |= {
            "throttled_records": int(value(scrape, "loadgen_throttled_records", stream=name)),
            "possible_duplicates": int(value(scrape, "loadgen_possible_duplicate_records", stream=name)),
            "requests": ok + failed,
            "failed_requests": failed,
            "bytes_sent": int(value(scrape, "loadgen_sent_bytes", stream=name)),
            "billed_bytes": int(value(scrape, "loadgen_billed_bytes", stream=name)),
            "packed_events": int(value(scrape, "loadgen_packed_events", stream=name)),
        }
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
        part = scraped_counts(scrape, [s.name])["streams"][s.name]
        s.sent, s.accepted, s.dead_lettered = part["sent"], part["accepted"], part["dead_lettered"]
        s.retried_records, s.throttled_records = part["retried_records"], part["throttled_records"]
        s.billed_bytes = part["billed_bytes"]
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
    summary = merge_parts(parts)
    summaries = [w.summary for w in workers if w.summary is not None]
    summary["cost"] = reprice(config.target.region, summary, summaries, min(config.duration_s, elapsed_s))
    spools = [str(w.dead_letter) for w in workers if w.dead_letter.is_file()]
    head = {
        "run_id": run_id,
        "profile": config.profile.name,
        "target": config.target.describe(),
        "rate": config.rate,
        "duration_s": round(elapsed_s, 3),
    }
    merged = RunSummary.from_dict(
        head
        | {k: v for k, v in summary.items() if k not in head}
        | {
            "output_dir": str(config.output_dir) if config.target.kind is TargetKind.LOCAL else None,
            "buffer_hints": local_buffer_hints(config),
            "dead_letter_path": spools[0] if len(spools) == 1 else None,
            "dead_letter_paths": spools,
            # Which seqs the run made (generation.py interleaves shards), for the audit.
            "seq_spaces": spaces,
            "complete": not failed,
            "workers": {"count": len(workers), "failed": failed},
        }
    )
    merged.checks = merged_checks(config.checks, merged, summaries)
    merged.aborted = next((s["aborted"] for s in summaries if s.get("aborted")), None)
    return merged


def reprice(
    region: str, summary: Mapping[str, Any], parts: Sequence[Mapping[str, Any]], window_s: float
) -> dict[str, Any]:
    """The cost block priced again on the merged counters (summed projections and lists of
    features would not mean anything): the workers or shards generate side by side for the
    run's duration (``window_s``), so their summed bytes over that window is the run's rate."""
    streams: dict[str, Any] = summary.get("streams") or {}
    features: dict[str, cost.Features] = {}
    for part in parts:  # every worker described the same streams: the first to say wins
        for name, s in ((part.get("cost") or {}).get("streams") or {}).items():
            named = set(s.get("features") or ())
            features.setdefault(
                name, cost.Features("format_conversion" in named, "dynamic_partitioning" in named)
            )
    return cost.run_cost(
        region,
        {name: int(s.get("billed_bytes") or 0) for name, s in streams.items()},
        window_s,
        features,
        sum(int(s.get("bytes_sent") or 0) for s in streams.values()),
    )


def _space(shard: Shard, events: int) -> dict[str, int]:
    return {"offset": shard.index, "stride": shard.count, "events": events}


def exit_code(workers: Sequence[Worker]) -> int:
    """The workers' worst code but 1 and 5 (the merged summary's own, summary.exit_code, decides
    those); a dead worker makes it 4, nothing to count makes it 3,
    and all of them refusing their options (exit 2, no summary) is a usage error."""
    if workers and all(w.summary is None and w.returncode == EXIT_USAGE for w in workers):
        return EXIT_USAGE
    if not any(w.summary is not None or w.scrape is not None for w in workers):
        return EXIT_STREAM_UNUSABLE
    # A worker's dead letters (1) and checks (5) are judged again on the merged summary (a
    # dead-letter check or a p99 is the run's, not one worker's): only 2, 3, 4 carry over.
    codes = [w.returncode or 0 for w in workers if w.summary is not None]
    code = max((c for c in codes if c not in (EXIT_DEAD_LETTERED, EXIT_CHECK_FAILED)), default=0)
    if any(w.summary is None for w in workers):
        code = EXIT_INCOMPLETE  # the run's books are incomplete: a worker's records are lost
    return code
