"""Rate and id sharding: n producers (processes, ECS tasks, Kubernetes pods) that together send
exactly one target rate and never share an event id. Pure: no I/O, no clock, no globals.

Why it exists: one process tops out near 100k records/s (DESIGN.md, measured ground), while one
stream takes up to 500,000 records/s in the large regions, so a full-quota test needs several
producers, and their sum must be the target, not "about" the target.
Quotas: https://docs.aws.amazon.com/firehose/latest/dev/limits.html

Example:
    >>> [Shard(i, 3).rate_share(200) for i in range(3)]
    [66.0, 67.0, 67.0]
    >>> Shard(1, 4).split(2)[1]
    Shard(index=3, count=8)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

# Event ids are UUID-shaped 128-bit numbers. With more than one shard, the lowest 16 bits (the
# last four hex digits) carry the shard index, so two shards cannot produce the same id whatever
# their RNGs do; the other 106 random bits keep ids unique within a shard. 65,536 producers is
# far beyond any stream's quota: 500,000 records/s over 65,536 shards is under 8 records/s each.
ID_SHARD_BITS = 16
MAX_SHARDS = 1 << ID_SHARD_BITS
_ID_SHARD_MASK = MAX_SHARDS - 1

# Rates are split in the smallest decimal unit the target is written in, at most micro-events
# per second: a finer split would only move rounding noise between shards.
_MAX_RATE_DECIMALS = 6

# Kubernetes sets this in every pod of an Indexed Job (0 .. completions-1).
# https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode
K8S_INDEX_VARIABLE = "JOB_COMPLETION_INDEX"
INDEX_VARIABLE = "LOADGEN_SHARD_INDEX"
COUNT_VARIABLE = "LOADGEN_SHARD_COUNT"


@dataclass(frozen=True, slots=True)
class Shard:
    """Producer ``index`` of ``count`` (0-based). ``Shard(0, 1)`` is an unsharded run."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"shard count must be 1..{MAX_SHARDS}, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(
                f"shard index must be 0..{self.count - 1} for {self.count} shards, got {self.index}"
            )

    def rate_share(self, total: float) -> float:
        """This shard's part of ``total`` events/s; the parts of all shards add up to ``total``.

        The split is floor((i+1)*Q/n) - floor(i*Q/n) in integer units Q of the target's last
        decimal, so shares differ by at most one unit, sum exactly to the target in decimal,
        and the shares of a shard's sub-shards (``split``) add up to the shard's own share.
        """
        units, scale = _to_units(total)
        return _from_units(self._units(units), scale)

    def _units(self, units: int) -> int:
        return (self.index + 1) * units // self.count - self.index * units // self.count

    def split(self, workers: int) -> list[Shard]:
        """Sub-shards for ``workers`` processes of this producer (``--workers``), contiguous so
        that their rate shares add up to this shard's and their ids stay inside its space."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        return [Shard(self.index * workers + w, self.count * workers) for w in range(workers)]

    def seed(self, base: int | None) -> int | None:
        """A distinct reproducible seed per shard from the run's ``--seed``.

        One shard keeps the seed unchanged, so an unsharded run reproduces as before. No seed
        stays no seed: each process then draws its own OS randomness, and ids still differ by
        their shard bits.
        """
        if base is None or self.count == 1:
            return base
        # A bijection of (base, index) while index < MAX_SHARDS: no two shards share a seed.
        return base * MAX_SHARDS + self.index

    def stamp(self, event_id: str) -> str:
        """The UUID-shaped ``event_id`` with this shard's index in its last four hex digits
        (its low 16 bits), so shards cannot collide whatever their seeds; one shard: as is."""
        if self.count == 1:
            return event_id
        return f"{event_id[:-4]}{self.index:04x}"


def shard_of_id(event_id: str) -> int:
    """The shard index a sharded run stamped into a UUID-shaped id (its last four hex digits)."""
    return int(event_id.replace("-", ""), 16) & _ID_SHARD_MASK


def resolve_shard(index: int | None, count: int | None, environ: Mapping[str, str]) -> Shard:
    """The shard from ``--shard-index``/``--shard-count``, else LOADGEN_SHARD_*, else the
    Indexed Job's JOB_COMPLETION_INDEX. A count without an index (or the reverse) is an error,
    because silently running as shard 0 would double the load of shard 0."""
    if index is None:
        index = _env_int(environ, INDEX_VARIABLE)
    if index is None:
        index = _env_int(environ, K8S_INDEX_VARIABLE)
    if count is None:
        count = _env_int(environ, COUNT_VARIABLE)
    if index is None and count is None:
        return Shard(0, 1)
    if count is None:
        raise ValueError(
            f"shard index {index} needs a shard count: pass --shard-count or set {COUNT_VARIABLE} "
            "(for an Indexed Job, the Job's completions)"
        )
    if index is None:
        raise ValueError(
            f"--shard-count {count} needs --shard-index, {INDEX_VARIABLE} or {K8S_INDEX_VARIABLE}"
        )
    return Shard(index, count)


def tasks_needed(target_per_s: float, per_task_per_s: float) -> int:
    """Producers needed for ``target_per_s`` when one sustains ``per_task_per_s``."""
    if not (target_per_s > 0 and per_task_per_s > 0):
        raise ValueError("rates must be > 0")
    return math.ceil(target_per_s / per_task_per_s)


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


def _to_units(total: float) -> tuple[int, int]:
    if not (math.isfinite(total) and total >= 0):
        raise ValueError(f"rate must be a finite number >= 0, got {total!r}")
    # repr is the shortest decimal that round-trips, i.e. the number as the user wrote it.
    exact = Decimal(repr(float(total))).normalize()  # 200.0 -> 2E+2: whole units
    scale = min(max(-int(exact.as_tuple().exponent), 0), _MAX_RATE_DECIMALS)
    return int(exact.scaleb(scale).to_integral_value()), scale


def _from_units(units: int, scale: int) -> float:
    return float(Decimal(units).scaleb(-scale))
