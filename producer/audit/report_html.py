"""A self-contained HTML report: inline CSS and SVG, no scripts, fonts or URLs to fetch, so it
opens anywhere with no network (checked in headless Chromium by the tests)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from producer.audit import report_text, svg
from producer.audit.reconcile import StreamAudit
from producer.audit.runner import AuditReport

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3} .bad{background:#fde2e2} .good{background:#e5f6e5}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{background:#fff;border:1px solid #e3e3e3}
.verdict{font-size:15px;font-weight:bold;padding:6px 10px;display:inline-block}
ul{font-size:12px}
"""


def _table(reports: Sequence[AuditReport]) -> str:
    compare = len(reports) > 1
    head = "".join(f"<th>{escape(h)}</th>" for h in report_text.HEADERS)
    rows = []
    for r in reports:
        for s in r.streams:
            cells = report_text.row(r.label if compare else None, s)
            css = "good" if s.clean else "bad"
            rows.append(f'<tr class="{css}">' + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _series(
    streams: Sequence[StreamAudit], column: int, label: str = ""
) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for s in streams:
        points = [
            (float(o[0]), float(o[column])) for o in s.series.get("objects", []) if o[column] is not None
        ]
        out[f"{label}{s.stream}"] = points
    return out


def _charts(report: AuditReport) -> str:
    streams = report.streams
    rate = {s.stream: [(float(t), float(n)) for t, n in s.series.get("rate", [])] for s in streams}
    charts = [
        svg.chart("Delivered events per second (by event time)", rate, "seconds into the run", "events/s")
    ]
    throttling: dict[str, list[tuple[float, float]]] = {
        "throttled records": [(float(i), float(s.throttled_records)) for i, s in enumerate(streams)],
        "retried records": [(float(i), float(s.retried_records)) for i, s in enumerate(streams)],
    }
    names = ", ".join(f"{i}: {s.stream}" for i, s in enumerate(streams))
    quiet = not any(s.throttled_records or s.retried_records for s in streams)
    title = "Throttling, producer side" + (": none" if quiet else "")
    charts.append(svg.chart(title, throttling, f"stream ({names})", "records", kind="bars"))
    cw = report.cloudwatch or {}
    cw_throttled = {
        f"{name} ThrottledRecords": [(t, v) for t, v in m.get("ThrottledRecords", [])]
        for name, m in cw.items()
    }
    if any(cw_throttled.values()):
        charts.append(
            svg.chart("CloudWatch ThrottledRecords (per minute)", cw_throttled, "unix time", "records")
        )
    intervals = [s.hints["interval_s"] for s in streams if s.hints]
    fresh_line = (max(intervals), "buffer interval") if intervals else None
    charts.append(
        svg.chart(
            "Freshness: age of the oldest event in each object at delivery",
            _series(streams, 3),
            "seconds into the run",
            "seconds",
            kind="points",
            hline=fresh_line,
        )
    )
    cw_fresh = {
        f"{name} {metric}": [(t, v) for t, v in points]
        for name, m in cw.items()
        for metric, points in m.items()
        if metric.endswith("DataFreshness")
    }
    if any(cw_fresh.values()):
        charts.append(
            svg.chart("CloudWatch DataFreshness (max per minute)", cw_fresh, "unix time", "seconds")
        )
    sizes = [s.hints["size_mib"] * 1048576 for s in streams if s.hints]
    largest = max((o[1] for s in streams for o in s.series.get("objects", [])), default=0)
    size_line = (float(min(sizes)), "SizeInMBs") if sizes and min(sizes) <= largest * 4 else None
    hint = f" (SizeInMBs {min(sizes) // 1048576} MiB)" if sizes and size_line is None else ""
    charts.append(
        svg.chart(
            "Object sizes, in delivery order" + hint,
            _series(streams, 1),
            "object",
            "bytes",
            kind="bars",
            hline=size_line,
        )
    )
    return '<div class="charts">' + "".join(charts) + "</div>"


def _details(report: AuditReport) -> str:
    items = [line for s in report.streams for line in report_text.details(None, s)]
    items += [f"{name}: not audited: {why}" for name, why in report.skipped.items()]
    if not items:
        return ""
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def render(reports: Sequence[AuditReport]) -> str:
    clean = all(r.clean for r in reports)
    verdict = "Every accepted event delivered exactly once" if clean else "Problems found"
    sections = []
    for r in reports:
        title = f"Run {r.run_id}" + (f" — buffer hints {r.label}" if r.label else "")
        sections.append(
            f"<h2>{escape(title)}</h2><p>profile {escape(r.profile)}, {r.events_generated:,} events in "
            f"{r.duration_s:g} s, target {escape(r.target)}</p>{_details(r)}{_charts(r)}"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>firehose-loadgen audit {escape(reports[0].run_id)}</title><style>{CSS}</style></head><body>"
        f"<h1>firehose-loadgen audit</h1>"
        f'<p class="verdict {"good" if clean else "bad"}">{escape(verdict)}</p>'
        f"{_table(reports)}{''.join(sections)}"
        "<p><small>Latency: delivery time minus event time. Metric names: Amazon Data Firehose "
        "developer guide, monitoring with CloudWatch metrics.</small></p></body></html>\n"
    )
