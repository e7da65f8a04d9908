"""The terminal table: one row per stream (per buffer setting, in a comparison), then details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from producer.audit.reconcile import StreamAudit
from producer.audit.runner import AuditReport
from producer.audit.soak import SoakResult
from producer.telemetry.cost import cost_line

HEADERS = (
    "stream", "accepted", "delivered", "missing", "dups", "errors",
    "p50 s", "p90 s", "p99 s", "max s", "objects", "obj p50", "obj max", "hints", "fit",
)  # fmt: skip


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def row(label: str | None, s: StreamAudit) -> list[str]:
    lat = s.latency_s
    size = s.objects.get("bytes")
    hints = s.hints
    fit = "-" if not hints or "consistent" not in hints else ("yes" if hints["consistent"] else "NO")
    name = f"{label}  {s.stream}" if label else s.stream
    return [
        name,
        f"{s.accepted:,}",
        f"{s.delivered_unique:,}",
        f"{s.missing:,}",
        f"{s.duplicates:,}",
        f"{sum(s.error_output.values()):,}",
        *(f"{lat[k]:.2f}" if lat else "-" for k in ("p50", "p90", "p99", "max")),
        f"{s.objects['count']:,}" if s.destination == "s3" or s.objects["count"] else "-",
        human_bytes(size["p50"]) if size else "-",
        human_bytes(size["max"]) if size else "-",
        f"{hints['interval_s']:g}s/{hints['size_mib']}MiB" if hints else "-",
        fit,
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def details(label: str | None, s: StreamAudit) -> list[str]:
    who = f"{label} {s.stream}" if label else s.stream
    lines = []
    if s.missing:
        first = ", ".join(map(str, s.missing_first))
        lines.append(f"{who}: {s.missing:,} missing" + (f", first seq: {first}" if first else ""))
    if s.duplicates:
        lines.append(
            f"{who}: {s.duplicates:,} duplicate copies, first seq: {', '.join(map(str, s.duplicates_first))}"
        )
    for kind, n in sorted(s.error_output.items()):
        lines.append(f"{who}: {n:,} records in the error output ({kind})")
    if s.objects_gone:
        lines.append(f"{who}: {len(s.objects_gone)} delivered objects are gone, e.g. {s.objects_gone[0]}")
    if s.unexpected:
        lines.append(f"{who}: {s.unexpected:,} delivered records were dead-lettered by the producer")
    for problem in (s.hints or {}).get("problems", []):
        lines.append(f"{who}: hints: {problem}")
    lines.extend(f"{who}: {note}" for note in s.notes)
    return lines


def _cost(label: str | None, c: dict[str, Any]) -> str:
    """The run's cost line, with the objects the buffer setting made."""
    line = cost_line(c)
    objects = sum((c.get("objects") or {}).values())
    line += f"; {objects:,} S3 objects"
    if "dynamic_partitioning_objects_usd" in c:
        line += f" (with dynamic partitioning: +${c['dynamic_partitioning_objects_usd']:.6f})"
    return f"{label} {line}" if label else line


def render(reports: Sequence[AuditReport]) -> str:
    compare = len(reports) > 1
    rows = [list(HEADERS)]
    lines: list[str] = []
    for report in reports:
        label = report.label if compare else None
        for s in report.streams:
            rows.append(row(label, s))
            lines.extend(details(label, s))
        lines.extend(f"{name}: not audited: {why}" for name, why in report.skipped.items())
        if report.cost:
            lines.append(_cost(label, report.cost))
    head = [
        f"audit of run {r.run_id} ({r.profile}, {r.events_generated:,} events, {r.target})"
        + (f" [{r.label}]" if r.label else "")
        for r in reports
    ]
    verdict = (
        "every accepted event delivered exactly once"
        if all(r.clean for r in reports)
        else ("PROBLEMS: see below")
    )
    return "\n".join([*head, *_table(rows), *lines, verdict]) + "\n"


SOAK_HEADERS = (
    "setting", "p99 s", "obj p50", "objects", "S3 PUTs", "Lambda", "CW fresh p50/max s", "in/limit", "$/hour",
    "targets",
)  # fmt: skip


def _worst(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return max(found) if found else None


def soak_row(e: dict[str, Any]) -> list[str]:
    """One setting in the side-by-side comparison."""
    rows = list(e["streams"].values())
    p99 = _worst([r["p99_s"] for r in rows])
    medians = [r["object_median_bytes"] for r in rows if r["object_median_bytes"] and r["objects"]]
    cw = [r["cloudwatch"] for r in rows if r["cloudwatch"]]
    p50, top = _worst([c["freshness_p50_s"] for c in cw]), _worst([c["freshness_max_s"] for c in cw])
    fresh = "missing" if p50 is None or top is None else f"{p50:.0f}/{top:.0f}"
    used = _worst([c["limit_used"] for c in cw])
    share = "missing" if used is None else f"{used:.0%}"
    hour = e["cost_per_hour_usd"]
    targets = " ".join(f"{name}:{'ok' if t['met'] else 'NO'}" for name, t in e["targets"].items()) or "-"
    calls = f"{e['lambda_invocations']:,}" + ("~" if e["lambda_invocations_source"] == "estimated" else "")
    return [
        e["label"] or "-",
        "-" if p99 is None else f"{p99:.2f}",
        human_bytes(min(medians)) if medians else "-",
        f"{sum(r['objects'] for r in rows):,}",
        f"{e['s3_put_requests']:,}",
        calls,
        fresh,
        share,
        "-" if hour is None else f"{hour:.4f}",
        targets,
    ]


def render_soak(result: SoakResult) -> str:
    """The audits, then the settings side by side, then the recommendation (a SoakResult)."""
    rows = [list(SOAK_HEADERS), *(soak_row(e) for e in result.settings)]
    lines = [
        render(result.reports).rstrip("\n"),
        "",
        *(f"{e['label']}: {e.get('setting', '')}" for e in result.settings),
        *_table(rows),
        "(~ estimated from the processor interval, CloudWatch had none; in/limit: the busiest minute's "
        "IncomingBytes / BytesPerSecondLimit; $/hour: Firehose, S3 PUT and Lambda requests at this load)",
        result.recommendation["line"],
    ]
    notes = {e["cloudwatch_note"] for e in result.settings if e.get("cloudwatch_note")}
    lines[-1:-1] = [f"CloudWatch: {note}" for note in sorted(notes)]
    lines += [f"NOT RESTORED: {p}" for p in result.restore_problems]
    return "\n".join(lines) + "\n"
