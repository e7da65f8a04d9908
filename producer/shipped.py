"""Files the project ships beside the package: profiles, the pipeline template, the transform.

In a checkout (an editable install) they sit in the source tree; a wheel installs them under
``<prefix>/share/firehose-loadgen/`` (pyproject's data-files). One place knows both.
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent
INSTALLED_ROOT = Path(sys.prefix) / "share" / "firehose-loadgen"


def shipped_roots() -> list[Path]:
    """The source tree (when this is a checkout) first, then the installed copy."""
    roots = [SOURCE_ROOT] if (SOURCE_ROOT / "pyproject.toml").is_file() else []
    return [*roots, INSTALLED_ROOT]


def shipped_path(relative: str) -> Path:
    """The first existing ``root/relative``; else the source-tree path (for a clear error later)."""
    for root in shipped_roots():
        candidate = root / relative
        if candidate.exists():
            return candidate
    return SOURCE_ROOT / relative
