"""The dead-letter spool: a JSON line per record given up on, with the reason; and reading it.

One line: ``{"stream", "reason", "error_code", "message", "attempts", "first_attempt_at",
"last_attempt_at", "data"}``; times are Unix seconds (null when never sent), ``data`` is the
record's bytes in base64. ``reason`` says why the producer gave up (RetriesExhausted,
RecordExpired, RecordTooLarge, StreamStopped, Dropped, DrainTimeout, ShutdownDeadline,
OutcomeUnknown, Aborted, NonRetryable, ProducerError); ``error_code`` is the last error the
service or transport gave for the record. ``firehose-loadgen replay PATH`` resends a spool.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from producer.delivery.batching import Batch


class SpoolError(Exception):
    """The spool could not take records: they are neither accepted nor dead-lettered."""


def check_spool_path(path: Path) -> str | None:
    """Why records could not be spooled at ``path`` (None if they can), checked before a run
    takes its first record by doing what the first write does: create the folder and open the
    file for append. Permission bits cannot answer this (root passes them; /proc refuses root
    anyway). What the check created is removed again, so a clean run leaves no file."""
    created: list[Path] = []
    existed = path.exists()
    try:
        if existed and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
            return "not a regular file"  # a device or a pipe: not opened (a pipe would block)
        folder = path.parent
        missing = []
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        if not folder.is_dir():
            return f"{folder} is not a folder"
        for part in reversed(missing):
            try:
                part.mkdir()
            except OSError as exc:
                return f"cannot create the folder {part} ({exc.strerror or exc})"
            created.append(part)
        with path.open("ab"):
            pass
        if not existed:
            created.append(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                if made == path:
                    made.unlink()
                else:
                    made.rmdir()
    return None


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    stream: str
    reason: str
    error_code: str
    message: str
    attempts: int
    first_attempt_at: float
    last_attempt_at: float
    data: bytes


class Spool:
    """Appends records to a JSONL file, opened on first use so clean runs leave no file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self.count = 0
        # Set, with why, at the first write that fails; every later write fails at once.
        self.failure = ""
        self.broken = asyncio.Event()

    def write(
        self,
        stream: str,
        batch: Batch,
        reason: str,
        error_code: str = "",
        message: str = "",
        decode: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """One line per record of ``batch``; ``error_code``/``message`` override each record's own
        last error (a whole-call reason), else the record's last error is kept. ``decode``
        turns the batch's held form back into the record (producer/firehose/wire.py)."""
        if not batch.data:
            return
        if self.failure:
            raise SpoolError(self.failure)
        try:
            self._append(stream, batch, reason, error_code, message, decode)
        except OSError as exc:
            self.failure = f"cannot write the dead-letter spool {self.path}: {exc.strerror or exc}"
            self.broken.set()
            raise SpoolError(self.failure) from None
        self.count += len(batch.data)

    def _append(
        self,
        stream: str,
        batch: Batch,
        reason: str,
        error_code: str,
        message: str,
        decode: Callable[[bytes], bytes] | None,
    ) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        first = batch.first_attempt_at or None
        last = batch.last_attempt_at or None
        lines = []
        for i, item in enumerate(batch.data):
            data = item if decode is None else decode(item)
            last_code, last_message = batch.error(i)
            entry = {
                "stream": stream,
                "reason": reason,
                "error_code": error_code or last_code or reason,
                "message": message or last_message,
                "attempts": batch.attempts,
                "first_attempt_at": first,
                "last_attempt_at": last,
                "data": base64.b64encode(data).decode("ascii"),
            }
            lines.append(orjson.dumps(entry) + b"\n")
        self._file.write(b"".join(lines))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            # Every write was flushed (and failed there, if it could not be written).
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def read_spool(path: Path) -> Iterator[SpoolEntry]:
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                yield SpoolEntry(
                    stream=item["stream"],
                    reason=item["reason"],
                    error_code=item.get("error_code", ""),
                    message=item.get("message", ""),
                    attempts=int(item.get("attempts", 0)),
                    first_attempt_at=float(item.get("first_attempt_at") or 0.0),
                    last_attempt_at=float(item.get("last_attempt_at") or 0.0),
                    data=base64.b64decode(item["data"]),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not a dead-letter entry ({exc})") from None
