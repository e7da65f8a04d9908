"""Parsing of human durations such as ``30s``, ``10m``, ``1h30m`` or ``90`` (seconds)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError with a message fit for the user.

    Example: ``parse_duration("1h30m") == 5400.0``.
    """
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration; use forms like 30s, 10m, 1h or 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float | None) -> str:
    """A duration as the live view and ``ctl`` show it; None is a run without end.

    Example: ``format_duration(3725) == "1h02m05s"``, ``format_duration(65) == "1m05s"``.
    """
    if seconds is None or seconds == float("inf"):
        return "forever"
    s = int(seconds)
    h, rest = divmod(s, 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"
