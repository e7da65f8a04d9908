"""Summaries summed into one: ``run --workers`` (workers/merge.py: its workers' summaries) and
``merge`` (combine.py: the shards of a run) both use ``merge_parts``: counters summed, latency
histograms merged bucket by bucket (percentiles computed again, never averaged), cost priced
again on the sums, checks judged on the whole. Pure: tests/unit/test_workers.py and
tests/unit/test_log_histogram.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from producer.checks import judge
from producer.checks.expr import Check
from producer.checks.figures import Figures
from producer.summary import RunSummary
from producer.telemetry import cost
from producer.telemetry.histogram import LogHistogram


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
    return judge.combine(checks, Figures.of_summary(summary.to_dict()), given)


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
