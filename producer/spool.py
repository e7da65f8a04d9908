"""The dead-letter spool: a JSON line per record given up on, with the reason; and reading it.

One line: ``{"stream", "reason", "error_code", "message", "attempts", "first_attempt_at",
"last_attempt_at", "data"}``; times are Unix seconds (null when never sent), ``data`` is the
record's bytes in base64. ``reason`` says why the producer gave up (RetriesExhausted,
RecordExpired, RecordTooLarge, StreamStopped, Dropped, ShutdownDeadline, Aborted, or the
service's non-retryable ErrorCode); ``error_code`` is the last error the service or transport
gave for the record. ``firehose-loadgen replay PATH`` resends a spool.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from producer.batching import Batch


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
        turns the batch's held form back into the record (producer/wire.py)."""
        if not batch.data:
            return
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
        self.count += len(batch.data)

    def close(self) -> None:
        if self._file is not None:
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
