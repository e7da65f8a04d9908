"""Sharding: n producers send exactly the target rate together and never share an event id."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.events.base import EventIds
from producer.sharding import MAX_SHARDS, Shard, resolve_shard, shard_of_id, tasks_needed

# Targets as users write them: whole events/s or up to three decimals.
targets = st.one_of(
    st.integers(min_value=0, max_value=10_000_000).map(float),
    st.decimals(min_value=0, max_value=1_000_000, places=3).map(float),
)
counts = st.integers(min_value=1, max_value=600)


def _decimal_sum(values: list[float]) -> Decimal:
    return sum((Decimal(repr(v)) for v in values), Decimal(0))


@given(targets, counts)
def test_shares_add_up_to_the_target_exactly_and_differ_by_one_unit_at_most(total: float, n: int) -> None:
    shares = [Shard(i, n).rate_share(total) for i in range(n)]
    assert _decimal_sum(shares) == Decimal(repr(total))
    assert all(s >= 0 for s in shares)
    exponent = int(Decimal(repr(total)).normalize().as_tuple().exponent)
    unit = Decimal(1).scaleb(min(exponent, 0))
    assert Decimal(repr(max(shares))) - Decimal(repr(min(shares))) <= unit


def test_whole_rates_split_into_whole_shares_in_float_arithmetic_too() -> None:
    shares = [Shard(i, 3).rate_share(200) for i in range(3)]
    assert shares == [66.0, 67.0, 67.0]
    assert sum(shares) == 200.0
    shares = [Shard(i, 7).rate_share(500_000) for i in range(7)]
    assert sum(shares) == 500_000.0 and {71_428.0, 71_429.0} >= set(shares)


def test_fractional_rates_keep_their_decimals() -> None:
    shares = [Shard(i, 3).rate_share(0.5) for i in range(3)]
    assert shares == [0.1, 0.2, 0.2]
    assert _decimal_sum(shares) == Decimal("0.5")


@given(targets, st.integers(1, 40), st.integers(1, 16))
def test_workers_split_a_shard_without_changing_its_share(total: float, n: int, workers: int) -> None:
    for shard in (Shard(0, n), Shard(n - 1, n)):
        subs = shard.split(workers)
        assert _decimal_sum([s.rate_share(total) for s in subs]) == Decimal(repr(shard.rate_share(total)))
        assert len({s.index for s in subs}) == workers


def test_split_sub_shards_cover_every_global_index_once() -> None:
    n, workers = 3, 4
    indexes = sorted(sub.index for i in range(n) for sub in Shard(i, n).split(workers))
    assert indexes == list(range(n * workers))
    assert {sub.count for sub in Shard(1, n).split(workers)} == {n * workers}


def test_seeds_are_distinct_per_shard_and_unchanged_for_one_shard() -> None:
    assert Shard(0, 1).seed(7) == 7
    assert Shard(0, 1).seed(None) is None
    seeds = [Shard(i, 50).seed(7) for i in range(50)]
    assert len(set(seeds)) == 50
    assert Shard(3, 50).seed(7) == Shard(3, 50).seed(7)  # reproducible
    assert Shard(3, 50).seed(None) is None


def test_ids_from_different_shards_never_collide_even_with_identical_rngs() -> None:
    n = 5
    seen: dict[str, int] = {}
    for i in range(n):
        shard = Shard(i, n)
        ids = EventIds(random.Random(42))  # the same RNG stream in every shard: worst case
        for _ in range(200):
            key = shard.stamp(ids.next())
            assert shard_of_id(key) == i
            assert len(key) == 36 and key.count("-") == 4  # still UUID-shaped
            assert key not in seen, f"shard {i} repeated an id of shard {seen.get(key)}"
            seen[key] = i
    assert len(seen) == n * 200


def test_one_shard_leaves_ids_untouched() -> None:
    event_id = EventIds(random.Random(1)).next()
    assert Shard(0, 1).stamp(event_id) == event_id
    assert Shard(2, 3).stamp(event_id).endswith("0002")


@pytest.mark.parametrize(
    ("index", "count", "env", "expected"),
    [
        (None, None, {}, Shard(0, 1)),
        (2, 5, {}, Shard(2, 5)),
        (None, None, {"JOB_COMPLETION_INDEX": "3", "LOADGEN_SHARD_COUNT": "4"}, Shard(3, 4)),
        (
            None,
            None,
            {"LOADGEN_SHARD_INDEX": "1", "JOB_COMPLETION_INDEX": "3", "LOADGEN_SHARD_COUNT": "4"},
            Shard(1, 4),
        ),
        (0, None, {"JOB_COMPLETION_INDEX": "3", "LOADGEN_SHARD_COUNT": "4"}, Shard(0, 4)),
        (None, 8, {"JOB_COMPLETION_INDEX": "7"}, Shard(7, 8)),
    ],
)
def test_resolve_shard_prefers_options_then_loadgen_variables_then_the_job_index(
    index: int | None, count: int | None, env: dict[str, str], expected: Shard
) -> None:
    assert resolve_shard(index, count, env) == expected


@pytest.mark.parametrize(
    ("index", "count", "env", "message"),
    [
        (None, None, {"JOB_COMPLETION_INDEX": "3"}, "needs a shard count"),
        (None, 4, {}, "needs --shard-index"),
        (4, 4, {}, "shard index must be 0..3"),
        (0, 0, {}, "shard count must be"),
        (0, MAX_SHARDS + 1, {}, "shard count must be"),
        (None, None, {"JOB_COMPLETION_INDEX": "x", "LOADGEN_SHARD_COUNT": "2"}, "must be an integer"),
    ],
)
def test_resolve_shard_rejects_half_or_bad_settings(
    index: int | None, count: int | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_shard(index, count, env)


def test_bad_rates_and_worker_counts_are_refused() -> None:
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="rate must be a finite number >= 0"):
            Shard(0, 2).rate_share(bad)
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        Shard(0, 2).split(0)


def test_tasks_needed_rounds_up() -> None:
    assert tasks_needed(500_000, 60_000) == 9
    assert tasks_needed(120_000, 60_000) == 2
    with pytest.raises(ValueError, match="rates must be > 0"):
        tasks_needed(0, 1)
