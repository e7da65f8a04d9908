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
