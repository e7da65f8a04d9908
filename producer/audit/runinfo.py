"""What the producer says it sent: the run summary (OUTPUT_DIR/runs/RUN_ID.json) and its
dead-letter spool (records never accepted, so never expected at the destination)."""

from __future__ import annotations

import calendar
import heapq
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from producer.audit import objects, trace
from producer.delivery.spool import read_spool
from producer.errors import UsageError
from producer.summary import RunSummary

_RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


@dataclass(slots=True)
class StreamSent:
    accepted: int
    dead_lettered: int
    throttled_records: int
    retried_records: int
    possible_duplicates: int
    dead_seqs: set[int] = field(default_factory=set)
    # --pack: the events in the records sent (0 when not packed): accepted and dead_lettered
    # count records then, and load_run turns them into events from the spool.
    packed_events: int = 0
    dead_events: int = 0


@dataclass(slots=True)
class RunInfo:
    run_id: str
    events_generated: int
    summary: RunSummary
    streams: dict[str, StreamSent]
    # (offset, stride, events) per producer of a --workers run: its k-th event has seq
    # offset + k * stride (generation.py); empty for one producer, whose seqs are 0..N-1.
    seq_spaces: list[tuple[int, int, int]] = field(default_factory=list)

    def expected_seqs(self) -> Iterator[int]:
        """Every seq the run made, ascending."""
        if not self.seq_spaces:
            return iter(range(self.events_generated))
        return heapq.merge(*(range(o, o + n * s, s) for o, s, n in self.seq_spaces))

    def made(self, seq: int) -> bool:
        """Whether the run made ``seq`` (a delivered seq it did not make is unexpected)."""
        if not self.seq_spaces:
            return 0 <= seq < self.events_generated
        return any(o <= seq < o + n * s and (seq - o) % s == 0 for o, s, n in self.seq_spaces)

    @property
    def window(self) -> tuple[float, float] | None:
        """Unix seconds the run started and ended, from the id's UTC stamp (second resolution)
        and the summary's duration; None for ids not made by ``new_run_id``."""
        try:
            started = calendar.timegm(time.strptime(self.run_id[:16], "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return None
        return float(started), started + self.summary.duration_s + 1.0

    def exact(self, stream: str) -> bool:
        """True when every generated event was offered to ``stream`` (fan-out to all), so the
        expected sequence numbers are ``expected_seqs()`` minus the dead-lettered ones."""
        s = self.streams[stream]
        return s.accepted + s.dead_lettered == self.events_generated


def summary_path(output_dir: Path, run_id: str) -> Path:
    return output_dir / "runs" / f"{run_id}.json"


def load_run(output_dir: Path, run_id: str) -> RunInfo:
    """The run's summary and spool; UsageError (exit 2, one line) when they cannot be read."""
    if not _RUN_ID.fullmatch(run_id):
        raise UsageError(f"--run-id {run_id!r} is not a run id (like 20260101T000000Z-abc123)")
    if not output_dir.is_dir():
        raise UsageError(f"--output-dir {output_dir}: no such folder")
    path = summary_path(output_dir, run_id)
    if not path.is_file():
        known = sorted(p.stem for p in (output_dir / "runs").glob("*.json"))[-3:]
        hint = f"; latest runs there: {', '.join(known)}" if known else ""
        raise UsageError(f"unknown run id {run_id!r}: no {path}{hint}")
    try:
        data = orjson.loads(path.read_bytes())
        summary = RunSummary.from_dict(data)
        streams = {
            name: StreamSent(
                accepted=int(s["accepted"]),
                dead_lettered=int(s.get("dead_lettered", 0)),
                throttled_records=int(s.get("throttled_records", 0)),
                retried_records=int(s.get("retried_records", 0)),
                possible_duplicates=int(s.get("possible_duplicates", 0)),
                packed_events=int(s.get("packed_events", 0)),
            )
            for name, s in data["streams"].items()
        }
        info = RunInfo(str(data["run_id"]), int(data["events_generated"]), summary, streams)
        info.seq_spaces = [(int(x["offset"]), int(x["stride"]), int(x["events"])) for x in summary.seq_spaces]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: not a run summary ({exc})") from None
    _read_dead_letters(info, output_dir)
    for sent in info.streams.values():
        if sent.packed_events:
            # Packed: the books in records become books in events. Every packed event was
            # either accepted in its record or spooled with it (the run's books balanced).
            sent.dead_lettered = sent.dead_events
            sent.accepted = sent.packed_events - sent.dead_events
    return info


def _read_dead_letters(info: RunInfo, output_dir: Path) -> None:
    spool = info.summary.dead_letter_path
    # A --workers run has one spool per worker (dead_letter_paths).
    paths = [Path(p) for p in info.summary.dead_letter_paths or []] or [
        Path(spool) if spool else output_dir / "dead-letter" / f"{info.run_id}.jsonl"
    ]
    try:
        for path in paths:
            if not path.is_file():
                continue
            for entry in read_spool(path):
                sent = info.streams.get(entry.stream)
                if sent is None:
                    continue
                for event in objects.events_of(entry.data):
                    sent.dead_events += 1
                    found = trace.from_record(event, info.run_id)
                    if found is not None and found.run_id == info.run_id:
                        sent.dead_seqs.add(found.seq)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
