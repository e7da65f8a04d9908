"""Small inline-SVG charts (no scripts, no fonts, no network): lines, points and bars with axes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 44, 40  # the title and legend rows sit above TOP
Series = Mapping[str, Sequence[tuple[float, float]]]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / count
    magnitude = 10.0 ** math.floor(math.log10(step))  # 0.01 for 0.04, 10 for 40: sub-1 axes get ticks
    for nice in (1, 2, 2.5, 5, 10):
        if nice * magnitude >= step:
            step = nice * magnitude
            break
    start = (low // step) * step
    return [
        t for t in (start + i * step for i in range(count + 2)) if low - step / 100 <= t <= high + step / 2
    ]


def _fmt(v: float) -> str:
    if abs(v) >= 1024 * 1024:
        return f"{v / 1048576:.1f}M"
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    if v == int(v) or abs(v) >= 10:
        return f"{v:.0f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def chart(
    title: str,
    series: Series,
    x_label: str,
    y_label: str,
    kind: str = "line",
    hline: tuple[float, str] | None = None,
) -> str:
    """An SVG element; ``kind`` is line, points or bars; ``hline`` = (y, label) dashed reference."""
    points = [p for s in series.values() for p in s]
    if not points:
        return (
            f'<svg class="chart" width="{W}" height="60" role="img">'
            f'<text x="8" y="30">{escape(title)}: no data</text></svg>'
        )
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x1 = x0 + 1
    y1 = max([*ys, hline[0] if hline else 0.0]) * 1.08 or 1.0
    y0 = 0.0

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def sy(y: float) -> float:
        return H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [
        f'<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    out.append(f'<text x="{LEFT}" y="15" font-size="13" font-weight="bold">{escape(title)}</text>')
    for t in _ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(t)}</text>')
    # Bars are placed by rank, so x values would label nothing.
    for t in [] if kind == "bars" else _ticks(x0, x1):
        x = sx(t)
        out.append(
            f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" font-size="10" text-anchor="middle">{_fmt(t)}</text>'
        )
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#333"/>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="#333"/>')
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" font-size="11" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text x="12" y="{(TOP + H - BOTTOM) / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(TOP + H - BOTTOM) / 2})">{escape(y_label)}</text>'
    )
    n = max(1, len(series))
    legend: list[tuple[str, str]] = []
    for i, (name, data) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        ordered = sorted(data)
        if kind == "bars":
            span = (W - LEFT - RIGHT) / max(1, len(ordered)) / n
            for j, (_x, y) in enumerate(ordered):
                left = LEFT + (j * n + i) * span
                out.append(
                    f'<rect x="{left:.1f}" y="{sy(y):.1f}" width="{max(1.0, span * 0.9):.1f}" '
                    f'height="{sy(0) - sy(y):.1f}" fill="{color}"/>'
                )
        elif kind == "points":
            out.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>' for x, y in ordered
            )
        else:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ordered)
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/>')
        legend.append((name, color))
    if hline is not None and hline[0] <= y1:
        y = sy(hline[0])
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#c00" stroke-dasharray="5,4"/>'
        )
        out.append(
            f'<text x="{LEFT + 4}" y="{y - 4:.1f}" font-size="10" fill="#c00">{escape(hline[1])}</text>'
        )
    # The legend has its own row under the title, so it never covers the title or the data.
    x = LEFT
    for name, color in legend:
        out.append(f'<rect x="{x}" y="22" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 13}" y="31" font-size="10">{escape(name)}</text>')
        x += 24 + 6 * len(name)
    out.append("</svg>")
    return "".join(out)
