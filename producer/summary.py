"""The summary of a run or a replay: one typed value, its JSON (a public contract) and exit code.

``run``, ``run --workers`` (the workers' summaries merged) and ``replay`` all end by building a
RunSummary; the console prints it, the run folder keeps its JSON, ``audit`` reads it back.
The JSON keys are the field names below; the README's summary reference documents them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from producer.checks.expr import DEAD_LETTER_METRICS
from producer.errors import (
    EXIT_CHECK_FAILED,
    EXIT_DEAD_LETTERED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_STREAM_UNUSABLE,
)
from producer.telemetry.stats import Books, StreamStats


@dataclass(slots=True)
class StreamSummary(Books):
    """One stream's books at the end (the counters are ``Books``'):
    ``sent == accepted + dead_lettered + lost``."""

    failures_by_code: dict[str, int] = field(default_factory=dict)
    dead_lettered_by_reason: dict[str, int] = field(default_factory=dict)
    target_rate: float = 0.0
    rate_limit: float | None = None
    blocked_s: float = 0.0
    stopped_reason: str | None = None
    # PutRecordBatch latency and a record's offer-to-acceptance time, as mergeable histograms
    # (telemetry.histogram.LogHistogram.to_dict, under LATENCY_PUT / LATENCY_ACK).
    latency: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, stats: StreamStats) -> StreamSummary:
        return cls.from_dict(stats.summary())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamSummary:
        """From summary JSON; keys this version does not know are ignored (an older or newer
        producer's summary still reads)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if not self.latency:  # a replay's, or a summary from before latencies were kept
            del out["latency"]
        return out


Kind = Literal["run", "replay"]

# The keys each kind of summary writes, in order; the rest of the fields stay None for it.
_RUN_KEYS = (
    "run_id",
    "profile",
    "target",
    "rate",
    "duration_s",
    "events_generated",
    "streams",
    "output_dir",
    "buffer_hints",
    "dead_letter_path",
    "seq_spaces",
    "schedule",
    "cost",
    "shard",
    "checks",
    "aborted",
    "control",
    "output_pruned",
    "simulated",
)
_WORKER_KEYS = ("dead_letter_paths", "complete", "workers")
_SHARD_KEYS = ("dead_letter_paths", "complete", "shards")
_REPLAY_KEYS = (
    "replayed_from",
    "target",
    "records_in_spool",
    "records_replayed",
    "duration_s",
    "streams",
    "dead_letter_path",
)


@dataclass(slots=True)
class RunSummary:
    kind: Kind
    target: str
    duration_s: float
    streams: dict[str, StreamSummary]
    dead_letter_path: str | None = None
    # A run (kind "run"): what was asked and made.
    run_id: str | None = None
    profile: str | None = None
    rate: float | None = None
    events_generated: int = 0
    output_dir: str | None = None
    # The embedded Firehose's buffering per stream ({"interval_s", "size_mib"}), for `audit`.
    buffer_hints: dict[str, dict[str, float]] | None = None
    # A shard's seqs are offset, offset + stride, ... (generation.py); the audit reads these.
    seq_spaces: list[dict[str, int]] = field(default_factory=list)
    schedule: dict[str, Any] | None = None  # telemetry.stats.ScheduleCheck.summary, plus on_full
    cost: dict[str, Any] | None = None  # telemetry.cost.run_cost: billed bytes priced, projections
    # This producer's part of a sharded run ({"index", "count"}); None when not sharded.
    shard: dict[str, int] | None = None
    # --check: one {"expression", "metric", "value", "ok"} per check (checks/judge.py).
    checks: list[dict[str, Any]] | None = None
    # An abort check ended the run early: {"check", "at_s"} (and "shard" when another shard's did).
    aborted: dict[str, Any] | None = None
    # run --control: every change (time, change, who) and the time spent paused.
    control: dict[str, Any] | None = None
    # run --keep-output: the delivered objects deleted (local/prune.py), which the audit cannot check.
    output_pruned: dict[str, Any] | None = None
    # run --sim-start/--sim-end: the simulated window made, and simulated seconds per wall second.
    simulated: dict[str, Any] | None = None
    # A run with --workers: every worker's spool, and which workers ended without a summary.
    dead_letter_paths: list[str] | None = None
    complete: bool | None = None
    workers: dict[str, Any] | None = None
    # A merged run (``merge``): {"expected", "found", "missing", "failed"} by shard index.
    shards: dict[str, Any] | None = None
    # A replay (kind "replay").
    replayed_from: str | None = None
    records_in_spool: int = 0
    records_replayed: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], kind: Kind = "run") -> RunSummary:
        """From summary JSON (a worker's, or one ``audit`` reads); raises KeyError/TypeError/
        ValueError when it is not one."""
        known = {f.name for f in dataclasses.fields(cls)} - {"kind", "streams"}
        streams = {str(k): StreamSummary.from_dict(v) for k, v in dict(data["streams"]).items()}
        values = {k: v for k, v in data.items() if k in known}
        return cls(kind=kind, streams=streams, **values)

    def to_dict(self) -> dict[str, Any]:
        keys: tuple[str, ...] = _REPLAY_KEYS if self.kind == "replay" else _RUN_KEYS
        if self.kind == "run" and self.workers is not None:
            keys = keys + _WORKER_KEYS
        elif self.kind == "run" and self.shards is not None:
            keys = keys + _SHARD_KEYS
        out: dict[str, Any] = {}
        for key in keys:
            value = getattr(self, key)
            if key == "streams":
                value = {name: s.to_dict() for name, s in self.streams.items()}
            elif (
                key
                in ("schedule", "cost", "shard", "checks", "aborted", "control", "output_pruned", "simulated")
                and value is None
            ):
                continue
            out[key] = value
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"

    def write(self, paths: Iterable[Path]) -> None:
        """Write the JSON to each path (``run_summary_paths``), creating folders."""
        body = self.to_json()
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)

    @property
    def balanced(self) -> bool:
        """Every stream's books balance and no worker's records are unaccounted for."""
        return self.complete is not False and all(s.balanced for s in self.streams.values())

    def exit_code(self) -> int:
        """0 only when the books balance, every check passed and nothing was dead-lettered; 4
        when the books do not balance (records lost, a worker's unknown: no check overrides it);
        3 when every stream stopped; 5 when a --check failed; 1 for dead letters, unless a check
        on dead letters (dead_lettered_ratio, dead_lettered) says how many are fine."""
        if not self.balanced:
            return EXIT_INCOMPLETE
        if self.streams and all(s.stopped_reason for s in self.streams.values()):
            return EXIT_STREAM_UNUSABLE
        checks = self.checks or []
        if any(not c.get("ok") for c in checks):
            return EXIT_CHECK_FAILED
        dead_letter_checked = any(c.get("metric") in DEAD_LETTER_METRICS for c in checks)
        if not dead_letter_checked and any(s.dead_lettered for s in self.streams.values()):
            return EXIT_DEAD_LETTERED
        return EXIT_OK


def run_summary_paths(output_dir: Path, run_id: str, summary_json: Path | None) -> list[Path]:
    """Where a run's summary goes: OUTPUT_DIR/runs/RUN_ID.json (``audit`` finds it there), and
    --summary-json when given."""
    paths = [output_dir / "runs" / f"{run_id}.json"]
    if summary_json is not None:
        paths.append(summary_json)
    return paths
