"""Frozen run settings, built once from the command line and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from producer.checks.expr import Check
from producer.delivery.channel import ChannelSettings
from producer.delivery.retry import RetryPolicy
from producer.profile.loading import Profile
from producer.results.url import ResultsUrl
from producer.sharding import Shard


class TargetKind(StrEnum):
    LOCAL = "local"  # start the embedded local Firehose and create the streams on it
    ENDPOINT = "endpoint"  # any Firehose-compatible endpoint URL; streams must exist
    AWS = "aws"  # real AWS through the standard credential chain; streams must exist


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    region: str
    endpoint_url: str | None = None

    def describe(self) -> str:
        if self.kind is TargetKind.AWS:
            return f"AWS {self.region}"
        return f"{self.kind.value} {self.endpoint_url or ''}".strip()


@dataclass(frozen=True, slots=True)
class Ending:
    """How a run or replay ends: a normal end drains for at most ``drain_timeout_s``; a signal
    leaves ``shutdown_grace_s`` (app.close)."""

    drain_timeout_s: float
    shutdown_grace_s: float


@dataclass(frozen=True, slots=True)
class RunConfig:
    profile: Profile
    rate: float
    duration_s: float
    streams: tuple[str, ...]
    target: Target
    output_dir: Path
    dead_letter: Path | None
    summary_json: Path | None
    seed: int | None
    channel: ChannelSettings
    retry: RetryPolicy
    shutdown_grace_s: float
    live_interval_s: float
    quiet: bool
    log_format: Literal["text", "json"] = "text"
    log_every_s: float = 10.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no metrics server; 0: any free port
    # True when the port is only the default: a taken port then gives way to a free one.
    metrics_port_fallback: bool = False
    metrics_linger_s: float = 0.0
    sender: Literal["lean", "botocore"] = "lean"  # the PutRecordBatch path (firehose.open_batch_client)
    trace_fields: bool = True  # run_id and seq in every event, for exact loss/duplicate audits
    shard: Shard = field(default_factory=lambda: Shard(0, 1))  # this producer's part of the load
    # One id for the whole run (--run-id): --workers children and multi-machine shards share it.
    run_id: str | None = None
    # At the end of the duration (no signal): how long delivery may go on (--drain-timeout).
    drain_timeout_s: float = 150.0
    # Streams whose events are packed several to a record (--pack), with the target record size.
    pack: dict[str, int] = field(default_factory=dict)
    # The embedded local Firehose's streams and transform (run --template); None: built-in ones.
    local_stream_config: Path | None = None
    local_transform: Path | None = None
    # --check: pass/fail over the run's figures (producer/checks/); a failed one is exit 5.
    checks: tuple[Check, ...] = ()
    # --results-url: where this shard leaves its summary and spool, and looks for an abort.
    results_url: ResultsUrl | None = None
    # run --control: the control routes and the live page on the metrics server; the token
    # (LOADGEN_CONTROL_TOKEN) every control request must carry, required off the loopback.
    control: bool = False
    control_token: str | None = None
    # run --keep-output: the local target's delivered objects are deleted once this old.
    keep_output_s: float | None = None
    # run --control-from: a control document (file or s3:// URL) this producer follows.
    control_from: str | None = None
    control_every_s: float = 5.0
    # run --sim-start/--sim-end (a backfill): the simulated start, seconds since the epoch; the
    # window's length is duration_s.
    sim_start: float | None = None

    @property
    def ending(self) -> Ending:
        return Ending(self.drain_timeout_s, self.shutdown_grace_s)
