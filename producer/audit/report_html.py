"""A self-contained HTML report: inline CSS and SVG, no scripts, fonts or URLs to fetch, so it
opens anywhere with no network (checked in headless Chromium by the tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from producer.audit import report_text, svg
from producer.audit.reconcile import StreamAudit
from producer.audit.runner import AuditReport
from producer.audit.soak import SoakResult

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


def _by_setting(
    result: SoakResult, value: Callable[[dict[str, Any]], float | None]
) -> dict[str, list[tuple[float, float]]]:
    """One bar per setting (the recommended one starred), for the comparison charts."""
    best = result.recommendation.get("setting")
    out: dict[str, list[tuple[float, float]]] = {}
    for i, e in enumerate(result.settings):
        v = value(e)
        name = ("* " if e["label"] == best else "") + str(e["label"])
        out[name] = [] if v is None else [(float(i), v)]
    return out


def _comparison(result: SoakResult) -> str:
    """What a person looks for first: p99 latency, median object size and cost per hour per
    setting side by side, each target a dashed line, the recommended setting starred."""
    entries = result.settings
    targets = entries[0]["targets"] if entries else {}

    def line(name: str, scale: float, text: str) -> tuple[float, str] | None:
        t = targets.get(name)
        return None if t is None else (t["target"] * scale, text.format(t["target"]))

    def p99(e: dict[str, Any]) -> float | None:
        found = [r["p99_s"] for r in e["streams"].values() if r["p99_s"] is not None]
        return max(found) if found else None

    def median(e: dict[str, Any]) -> float | None:
        found = [
            r["object_median_bytes"]
            for r in e["streams"].values()
            if r["object_median_bytes"] and r["objects"]
        ]
        return min(found) / 1048576 if found else None

    charts = [
        svg.chart("p99 end-to-end latency (worst stream)", _by_setting(result, p99), "setting", "seconds",
                  kind="bars", hline=line("max_freshness_s", 1.0, "--max-freshness {:g} s")),
        svg.chart("Median S3 object", _by_setting(result, median), "setting", "MiB",
                  kind="bars", hline=line("min_object_mib", 1.0, "--min-object-size {:g} MiB")),
        svg.chart("Cost per hour at this load (Firehose, S3 PUTs, Lambda requests)",
                  _by_setting(result, lambda e: e["cost_per_hour_usd"]), "setting", "USD/hour",
                  kind="bars", hline=line("max_cost_per_hour_usd", 1.0, "--max-cost-per-hour {:g}")),
    ]  # fmt: skip
    best = result.recommendation.get("setting")
    head = "".join(f"<th>{escape(h)}</th>" for h in report_text.SOAK_HEADERS)
    rows = []
    for e in entries:
        css = "good" if e["label"] == best else ("bad" if not e["clean"] else "")
        cells = report_text.soak_row(e)
        cells[0] = f"{e['label']} {e.get('setting', '')}"
        if e["label"] == best:
            cells[0] = "* " + cells[0] + " (recommended)"
        rows.append(f'<tr class="{css}">' + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    verdict = "good" if best else "bad"
    restored = (
        "Every stream was restored to the configuration the soak found."
        if not result.restore_problems
        else "NOT RESTORED: " + "; ".join(result.restore_problems)
    )
    return (
        f'<p class="verdict {verdict}">{escape(result.recommendation["line"])}</p>'
        f"<p>{escape(restored)}</p>"
        f'<div class="charts">{"".join(charts)}</div>'
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    )


def render_soak(result: SoakResult) -> str:
    """The comparison first, then each setting's audit table and its own charts."""
    sections = []
    for r, e in zip(result.reports, result.settings, strict=True):
        title = f"Setting {r.label}: {e.get('setting', '')} (run {r.run_id})"
        sections.append(
            f"<h2>{escape(title)}</h2>"
            f"<p>profile {escape(r.profile)}, "
            f"{r.events_generated:,} events in {r.duration_s:g} s, target {escape(r.target)}</p>"
            f"{_table([r])}{_details(r)}{_charts(r)}"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>firehose-loadgen soak {escape(result.reports[0].run_id)}</title><style>{CSS}</style></head>"
        f"<body><h1>firehose-loadgen soak</h1>{_comparison(result)}{''.join(sections)}"
        "<p><small>Latency: delivery time minus event time. Cost per hour: the Firehose charges of "
        "the run's rate, plus S3 PUT requests (multipart below 60 s intervals) and Lambda requests, "
        "at the prices in producer/telemetry/cost.py.</small></p></body></html>\n"
    )
