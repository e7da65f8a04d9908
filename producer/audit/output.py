"""Writing reports: JSON (one report, or ``{"compare": [...]}`` for several) and HTML."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from producer.audit import report_html
from producer.audit.runner import AuditReport
from producer.audit.soak import SoakResult
from producer.errors import UsageError


def as_json(reports: Sequence[AuditReport]) -> bytes:
    body: Any = reports[0].to_dict() if len(reports) == 1 else {"compare": [r.to_dict() for r in reports]}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"


def write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_html(path: Path, reports: Sequence[AuditReport]) -> None:
    write(path, report_html.render(reports).encode())


def soak_json(result: SoakResult) -> bytes:
    """The soak report: ``settings`` (one entry per setting, with its ``params``),
    ``recommendation``, whether every stream was restored, and each setting's full audit."""
    body = result.to_dict() | {"reports": [r.to_dict() for r in result.reports]}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"


def write_soak_html(path: Path, result: SoakResult) -> None:
    write(path, report_html.render_soak(result).encode())
