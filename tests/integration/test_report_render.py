"""The HTML report renders in a real browser with no network: headless Chromium (Debian
`chromium`) takes a screenshot, and the PNG must show the charts' colours, not a blank page."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import zlib
from pathlib import Path

from producer.audit import output, svg
from producer.audit.hints import BufferHints
from producer.audit.runner import AuditRequest, run_audit
from tests.browser import FLAGS, chromium
from tests.integration.audit_support import traced_run

WIDTH, HEIGHT = 1200, 1400


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered RGB(A) rows of an 8-bit PNG (what Chromium writes)."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [r if bpp == 3 else bytes(b for i, b in enumerate(r) if i % 4 != 3) for r in rows]


def test_html_report_renders_charts_in_headless_chromium(tmp_path: Path) -> None:
    browser = chromium()
    out = tmp_path / "out"
    with traced_run(out) as run:
        for _ in range(3):
            run.generate(300, pause_s=1.1)
    hints = {name: BufferHints(1.0, 1) for name in run.streams}
    report = asyncio.run(run_audit(AuditRequest(run_id=run.run_id, output_dir=out, hints=hints)))
    page = tmp_path / "report.html"
    output.write_html(page, [report])
    shot = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    subprocess.run(
        [
            browser,
            *FLAGS,  # headless, and any name lookup fails: the page must render from the file alone
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    png = shot.read_bytes()
    assert 20_000 < len(png) < 5_000_000, len(png)
    width, height, rows = _pixels(png)
    assert (width, height) == (WIDTH, HEIGHT)
    white = sum(r.count(b"\xff\xff\xff") for r in rows[::8])
    assert white < 0.97 * (width * height // 8), "the page is (almost) blank"
    # Both streams' series colours (the first two of the palette) are on screen: charts drew.
    for color in svg.COLORS[:2]:
        rgb = bytes.fromhex(color[1:])
        assert sum(r.count(rgb) for r in rows) > 200, f"no pixels of {color}"
