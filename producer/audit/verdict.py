"""A soak's answer: per setting the figures a person compares (latency, object size, requests,
cost per hour at the load), each target met or not, and the cheapest setting meeting every one.

Targets: ``max_freshness_s`` against each stream's p99 end-to-end latency (the audit's),
``min_object_mib`` against the median S3 object, ``max_cost_per_hour_usd`` against the cost
per hour at the soak's load (Firehose, S3 PUT requests and Lambda requests:
producer/telemetry/cost.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from producer.audit.runner import AuditReport
from producer.telemetry import cost

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Targets:
    max_freshness_s: float | None = None
    min_object_mib: float | None = None
    max_cost_per_hour_usd: float | None = None

    def given(self) -> dict[str, float]:
        named = {
            "max_freshness_s": self.max_freshness_s,
            "min_object_mib": self.min_object_mib,
            "max_cost_per_hour_usd": self.max_cost_per_hour_usd,
        }
        return {k: v for k, v in named.items() if v is not None}


def _estimated_objects(window_s: float, interval_s: float) -> int:
    # Steady load: one object per interval (zero buffering: one every few seconds, taken as 5 s).
    return max(1, math.ceil(window_s / max(interval_s, 5.0)))


def entry(
    report: AuditReport,
    params: Mapping[str, float],
    configs: Mapping[str, Mapping[str, float]],
    region: str,
    cloudwatch: Mapping[str, Mapping[str, float | None]] | None,
    targets: Targets,
) -> dict[str, Any]:
    """One setting's figures. ``configs``: each stream's soak parameters as described while the
    setting was on (settings.current); ``cloudwatch``: each stream's cloudwatch.figures, or None
    when CloudWatch was not read or had nothing."""
    window = float((report.cost or {}).get("rate_window_s") or report.duration_s or 1.0)
    streams: dict[str, Any] = {}
    puts = 0.0
    invocations = 0.0
    invocations_source = "cloudwatch" if cloudwatch else "estimated"
    for s in report.streams:
        config = configs.get(s.stream, {})
        sizes = s.objects.get("bytes") or {}
        median = sizes.get("p50")
        figures = (cloudwatch or {}).get(s.stream)
        row: dict[str, Any] = {
            "p50_s": (s.latency_s or {}).get("p50"),
            "p99_s": (s.latency_s or {}).get("p99"),
            "objects": int(s.objects.get("count") or 0),
            "object_median_bytes": median,
            "missing": s.missing,
            "duplicates": s.duplicates,
            "cloudwatch": dict(figures) if figures else None,
        }
        if s.destination == "s3":
            interval = config.get("S3BufferIntervalSeconds", 300.0)
            puts += row["objects"] * cost.s3_puts_per_object(interval, float(median or 0))
        backup = config.get("OpenSearchBackupBufferIntervalSeconds")
        if backup is not None:  # AllDocuments backup objects: not audited, one per interval
            row["backup_objects_estimated"] = _estimated_objects(window, backup)
            puts += row["backup_objects_estimated"] * cost.s3_puts_per_object(backup, 0)
        called = (figures or {}).get("lambda_invocations")
        if called is None and "ProcessorBufferIntervalSeconds" in config:
            invocations_source = "estimated"
            called = _estimated_objects(window, config["ProcessorBufferIntervalSeconds"])
        invocations += float(called or 0)
        streams[s.stream] = row
    per_hour = 3600.0 / max(window, 1e-9)
    requests = cost.requests_usd(region, puts * per_hour, invocations * per_hour)
    firehose = (report.cost or {}).get("per_hour_usd")
    hour = None if requests is None or firehose is None else float(firehose) + sum(requests.values())
    out: dict[str, Any] = {
        "label": report.label,
        "params": dict(params),
        "run_id": report.run_id,
        "clean": report.clean,
        "streams": streams,
        "s3_put_requests": round(puts),
        "lambda_invocations": round(invocations),
        "lambda_invocations_source": invocations_source,
        "cost_per_hour_usd": None if hour is None else round(hour, 6),
        "cost_per_hour": {"firehose_usd": firehose, **(requests or {})},
        "prices": f"{cost.PRICING_URL}, {cost.S3_PRICING_URL}, {cost.LAMBDA_PRICING_URL}",
    }
    out["targets"] = _check(out, targets)
    out["meets_targets"] = all(t["met"] for t in out["targets"].values())
    return out


def _check(e: Mapping[str, Any], targets: Targets) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    rows = e["streams"].values()
    if targets.max_freshness_s is not None:
        p99s = [r["p99_s"] for r in rows if r["p99_s"] is not None]
        worst = max(p99s) if p99s else None
        out["max_freshness_s"] = {
            "target": targets.max_freshness_s,
            "value": worst,
            "met": worst is not None and worst <= targets.max_freshness_s,
        }
    if targets.min_object_mib is not None:
        medians = [r["object_median_bytes"] / MIB for r in rows if r["object_median_bytes"] and r["objects"]]
        smallest = min(medians) if medians else None
        out["min_object_mib"] = {
            "target": targets.min_object_mib,
            "value": smallest,
            "met": smallest is not None and smallest >= targets.min_object_mib,
        }
    if targets.max_cost_per_hour_usd is not None:
        hour = e["cost_per_hour_usd"]
        out["max_cost_per_hour_usd"] = {
            "target": targets.max_cost_per_hour_usd,
            "value": hour,
            "met": hour is not None and hour <= targets.max_cost_per_hour_usd,
        }
    return out


TARGET_TEXT = {
    "max_freshness_s": ("--max-freshness", "p99 latency {value:.1f} s > {target:g} s"),
    "min_object_mib": ("--min-object-size", "median object {value:.2f} MiB < {target:g} MiB"),
    "max_cost_per_hour_usd": ("--max-cost-per-hour", "${value:.4f}/hour > ${target:g}"),
}


def recommend(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The cheapest clean setting that meets every target; else which targets no setting met."""
    good = [e for e in entries if e["clean"] and e["meets_targets"]]
    if good:
        best = min(good, key=lambda e: math.inf if e["cost_per_hour_usd"] is None else e["cost_per_hour_usd"])
        hour = best["cost_per_hour_usd"]
        price = "cost unknown" if hour is None else f"${hour:.4f}/hour at this load"
        return {
            "setting": best["label"],
            "params": best["params"],
            "line": f"recommended: {best['label']} {best.get('setting', '')} "
            f"(the cheapest setting meeting every target; {price})",
        }
    unmet = [
        name
        for name in (entries[0]["targets"] if entries else {})
        if not any(e["targets"][name]["met"] for e in entries)
    ]
    if not any(e["clean"] for e in entries):
        why = "every setting lost or duplicated records"
    elif unmet:
        parts = []
        for name in unmet:
            flag, text = TARGET_TEXT[name]
            closest = _closest(entries, name)
            parts.append(f"{flag} (closest: {text.format(**closest)})" if closest else f"{flag} (no figure)")
        why = "no setting met " + "; ".join(parts)
    else:
        why = "each target was met by some setting, but no setting met them all"
    return {"setting": None, "params": None, "unmet": unmet, "line": f"no recommendation: {why}"}


def _closest(entries: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    found = [e["targets"][name] for e in entries if e["targets"][name]["value"] is not None]
    if not found:
        return None
    pick = max if name == "min_object_mib" else min
    return dict(pick(found, key=lambda t: t["value"]))
