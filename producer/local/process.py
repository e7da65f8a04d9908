"""`local serve` as a child process: its command line and the ready line that gives its URL.

The workers' supervisor and the benchmark both run the local Firehose in a process of its own
(so it gets its own core) and need the same two things.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

READY_PREFIX = "local Firehose listening on "
_READY = re.compile(re.escape(READY_PREFIX) + r"(http://\S+)")


def serve_command(
    config_file: Path,
    output_dir: Path,
    region: str = "us-east-1",
    discard: bool = False,
    transform: Path | None = None,
) -> list[str]:
    """``local serve`` on a free port of 127.0.0.1 with the streams in ``config_file``."""
    command = [
        sys.executable,
        "-m",
        "producer",
        "local",
        "serve",
        "--port",
        "0",
        "--output",
        str(output_dir),
        "--region",
        region,
        "--config",
        str(config_file),
    ]
    if transform is not None:
        command += ["--transform", str(transform)]
    return [*command, "--discard"] if discard else command


def ready_url(line: str | bytes) -> str | None:
    """The endpoint URL from the server's first stdout line, or None if it is not the ready line."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    found = _READY.search(text)
    return found.group(1) if found else None
