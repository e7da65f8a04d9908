"""The client side of the control API (``firehose-loadgen ctl``): one request, its answer as
JSON, and the status as a few readable lines. Plain urllib: a command that runs once needs no
event loop."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

from producer.durations import format_duration
from producer.errors import UsageError

DEFAULT_URL = "http://127.0.0.1:9450"
TIMEOUT_S = 10.0


def call(url: str, method: str, path: str, body: dict[str, Any] | None, token: str | None) -> dict[str, Any]:
    """The answer of ``method url/path`` as a dict; one UsageError line when there is none."""
    base = url.rstrip("/").removesuffix("/metrics")
    headers = {"Content-Type": "application/json", "X-Loadgen-Client": "ctl"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = _error_of(exc.read())
        hint = " (set LOADGEN_CONTROL_TOKEN to the run's token)" if exc.code == 401 else ""
        if exc.code == 404:
            hint = " (is the run started with --control?)"
        raise UsageError(f"{method} {base}{path}: HTTP {exc.code}: {detail}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"cannot reach the run's control at {base} ({reason}); check --url") from None
    except orjson.JSONDecodeError:
        raise UsageError(f"{base}{path} did not answer JSON; is it a firehose-loadgen run?") from None
    if not isinstance(answer, dict):
        raise UsageError(f"{base}{path} answered {answer!r}, not a status")
    return answer


def _error_of(body: bytes) -> str:
    try:
        loaded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace").strip()[:200]
    return str(loaded.get("error", loaded)) if isinstance(loaded, dict) else str(loaded)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def status_lines(status: dict[str, Any]) -> list[str]:
    """The status as a person reads it."""
    nxt = status.get("target_next")
    ahead = f", next {_rate(nxt['rate'])} in {format_duration(nxt['in_s'])}" if nxt else ""
    lines = [
        f"run {status.get('run_id')}: {status.get('state')}, rate {_rate(status.get('rate'))} "
        f"(target now {_rate(status.get('target_now'))}{ahead}), "
        f"{format_duration(status.get('elapsed_s'))} of {format_duration(status.get('duration_s'))}, "
        f"paused {status.get('paused_s', 0):g}s",
    ]
    for name, s in (status.get("streams") or {}).items():
        lines.append(
            f"  {name}: {_rate(s['achieved'])} of {_rate(s['target'])}, accepted {s['accepted']:,}, "
            f"throttled {s['throttled']:,}, dead-lettered {s['dead_lettered']:,}"
        )
    workers = status.get("workers")
    if workers:
        lines.append("  workers: " + ", ".join(f"{_rate(w['rate'])}" for w in workers))
    return lines
