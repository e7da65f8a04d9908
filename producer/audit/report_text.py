"""The terminal table: one row per stream (per buffer setting, in a comparison), then details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from producer.audit.reconcile import StreamAudit
from producer.audit.runner import AuditReport
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
