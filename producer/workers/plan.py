"""``run --workers``: the plan of a run split over worker processes, and the options each worker
is given (every option explicit: a worker reads no LOADGEN_* variable)."""

from __future__ import annotations

import asyncio
import enum
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producer.config import RunConfig
from producer.errors import UsageError
from producer.sharding import MAX_SHARDS, Shard
from producer.telemetry.aggregate import (
    Scrape,
)

_RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # the audit's rule: it names files
# A worker keeps /metrics up this long after writing its summary, so the parent's last scrape
# has its final numbers (the summary is written before the linger starts).
WORKER_LINGER_S = 1.0
# The workers' shared results folder, in the run's scratch folder.
WORKERS_RESULTS = "results"
# Options the parent sets itself for every worker instead of passing the user's value on.
_PARENT_OWNED = {
    "workers",
    "run_id",
    "shard_index",
    "shard_count",
    "quiet",
    "metrics_port",
    "metrics_host",
    "no_metrics",
    "metrics_linger",
    "summary_json",
    "dead_letter",
    "output_dir",
    "results_url",
    "keep_output",  # the parent prunes the one output folder its local Firehose delivers to
    "control_from",  # the parent follows the document and steers its workers' controls
    "control_every",
}


def parse_workers(text: str, shard: Shard) -> int:
    """``--workers``: a whole number >= 1, or ``auto`` for one per core."""
    text = text.strip().lower()
    if text == "auto":
        count = os.cpu_count() or 1
    else:
        try:
            count = int(text)
        except ValueError:
            raise UsageError(f"--workers must be a whole number >= 1 or auto, got {text!r}") from None
        if count < 1:
            raise UsageError(f"--workers must be a whole number >= 1 or auto, got {count}")
    if shard.count * count > MAX_SHARDS:
        raise UsageError(f"--workers {count} x --shard-count {shard.count} exceeds {MAX_SHARDS} producers")
    return count


def check_run_id(text: str | None) -> str | None:
    if text is not None and not _RUN_ID.fullmatch(text):
        raise UsageError(f"--run-id {text!r} must be 1-128 letters, digits, or _ . : -")
    return text


def option_args(given: Mapping[str, object]) -> dict[str, list[str]]:
    """``run``'s parameters as resolved (command line, then LOADGEN_* variables), as arguments a
    worker can be given: every option explicit, so the workers need none of the parent's
    LOADGEN_* environment and cannot read one (LOADGEN_WORKERS) that would make them recurse.
    ``run``'s options are all named after their parameter (``max_held`` is ``--max-held``) and
    its flags are on-only (``--quiet``), so the names follow from the parameters."""
    out: dict[str, list[str]] = {}
    for name, v in given.items():
        flag = "--" + name.replace("_", "-")
        if v is None or v is False:
            continue
        if v is True:
            out[name] = [flag]
        elif isinstance(v, list | tuple):
            out[name] = [part for item in v for part in (flag, _text(item))]
        else:
            out[name] = [flag, _text(v)]
    return out


def _text(v: object) -> str:
    if isinstance(v, enum.Enum):
        return str(v.value)
    return repr(v) if isinstance(v, float) else str(v)


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    config: RunConfig  # the parent's: its shard, total rate, targets and outputs
    count: int
    options: Mapping[str, list[str]]  # option_args of the parent's command line


@dataclass(slots=True)
class Worker:
    index: int
    shard: Shard
    port: int
    summary_path: Path
    dead_letter: Path
    log_dir: Path
    proc: asyncio.subprocess.Process | None = None
    scrape: Scrape | None = None
    scraped_at: float = 0.0  # time.time() of ``scrape``
    final: bool = False  # ``scrape`` was taken after the worker wrote its summary
    summary: dict[str, Any] | None = None
    returncode: int | None = None
    ended_at: float = 0.0  # time.time() when it exited

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


def worker_argv(plan: WorkerPlan, worker: Worker, run_id: str, endpoint_url: str | None) -> list[str]:
    # The parent resolved the run's streams once (streams/resolution.py): the workers are given
    # their names, and read no stack or template again.
    drop = set(_PARENT_OWNED) | {"stream", "stack"}
    if endpoint_url is not None:  # the parent's local Firehose replaces the embedded one
        drop |= {"target", "endpoint_url", "template", "param"}
    args = [part for name, parts in plan.options.items() if name not in drop for part in parts]
    args += [part for name in plan.config.streams for part in ("--stream", name)]
    args += [
        "--workers", "1",
        "--run-id", run_id,
        "--shard-index", str(worker.shard.index),
        "--shard-count", str(worker.shard.count),
        "--quiet",
        "--metrics-host", "127.0.0.1",
        "--metrics-port", str(worker.port),
        "--metrics-linger", f"{WORKER_LINGER_S}s",
        *(["--control"] if plan.config.control_from else []),  # steered by the parent
        "--summary-json", str(worker.summary_path),
        "--dead-letter", str(worker.dead_letter),
        # Its own runs/ folder: the run's OUTPUT_DIR/runs/RUN_ID.json is the parent's sum.
        "--output-dir", str(worker.log_dir),
        # One results store for the workers: an abort check that fails in one stops them all
        # (the parent relays it to and from the run's own --results-url).
        "--results-url", f"file://{worker.log_dir.parent / WORKERS_RESULTS}",
    ]  # fmt: skip
    if endpoint_url is not None:
        args += ["--endpoint-url", endpoint_url]
    return [sys.executable, "-m", "producer", "run", *args]


def spool_path(config: RunConfig, run_id: str, index: int) -> Path:
    """Worker ``index``'s dead-letter spool: RUN_ID.wK.jsonl (or --dead-letter's name + .wK)."""
    if config.dead_letter is not None:
        base = config.dead_letter
        return base.with_name(f"{base.stem}.w{index}{base.suffix or '.jsonl'}")
    return config.output_dir / "dead-letter" / f"{run_id}.w{index}.jsonl"
