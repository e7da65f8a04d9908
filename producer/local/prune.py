"""``run --keep-output D``: delete the local Firehose's delivered objects once they are older
than D, so a demo that runs for a week does not fill the disk.

Only objects the delivery log names are deleted (nothing else in the output folder is
touched), each one recorded back in the log as ``{"pruned": KEY, ...}``: the audit then says
which objects it could no longer check instead of calling them gone
(producer/audit/local_source.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from producer.local.delivery import DeliveryLog

# How often the log is read and old objects deleted: often enough that the folder holds
# little more than D, seldom enough to cost nothing.
MAX_INTERVAL_S = 60.0


@dataclass(slots=True)
class PruneTotals:
    objects: int = 0
    bytes: int = 0
    records: int = 0
    newest_delivered_at: float | None = None  # objects delivered up to then are gone

    def to_dict(self, keep_s: float) -> dict[str, Any]:
        newest = self.newest_delivered_at
        return {
            "keep_s": keep_s,
            "objects": self.objects,
            "bytes": self.bytes,
            "records": self.records,
            "delivered_before": None
            if newest is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest)),
        }


class OutputPruner:
    def __init__(self, output_dir: Path, keep_s: float, clock: Any = time.time) -> None:
        self.output_dir = output_dir
        self.keep_s = keep_s
        self.clock = clock
        self.log = DeliveryLog(output_dir)
        self._offset = 0  # how far the delivery log has been read
        self._pending: deque[dict[str, Any]] = deque()  # delivered, not yet old enough
        self.totals = PruneTotals()

    def _read_new(self) -> None:
        try:
            with self.log.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # a line being appended right now is read next time
        self._offset += end
        for line in chunk[:end].splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
                if isinstance(entry, dict) and "key" in entry and "delivered_at" in entry:
                    self._pending.append(entry)

    def prune_once(self) -> int:
        """Delete what is older than keep_s now; returns how many objects went."""
        self._read_new()
        cutoff = self.clock() - self.keep_s
        gone = 0
        # The log is in delivery order only roughly (each stream's writer appends on its own), so
        # every pending entry is looked at: a few thousand for days of output, once a minute.
        old = [e for e in self._pending if float(e["delivered_at"]) < cutoff]
        if old:
            self._pending = deque(e for e in self._pending if float(e["delivered_at"]) >= cutoff)
        for entry in old:
            path = self.output_dir / str(entry["key"])
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue  # deleted by someone else: nothing of ours to record
            for parent in path.parents:  # empty partition folders go too
                if parent == self.output_dir or not parent.is_relative_to(self.output_dir):
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
            self.log.append(
                {"pruned": entry["key"], "stream": entry.get("stream"), "records": entry.get("records", 0)}
                | {"delivered_at": entry["delivered_at"], "pruned_at": self.clock()}
            )
            t = self.totals
            t.objects, t.bytes, t.records = (
                t.objects + 1,
                t.bytes + size,
                t.records + int(entry.get("records", 0)),
            )
            t.newest_delivered_at = float(entry["delivered_at"])
            gone += 1
        return gone

    async def run(self) -> None:
        """Prune every few seconds (at most a minute) until cancelled."""
        interval = min(MAX_INTERVAL_S, max(1.0, self.keep_s / 10))
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.prune_once)

    def summary(self) -> dict[str, Any]:
        return self.totals.to_dict(self.keep_s)
