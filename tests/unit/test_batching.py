"""The accumulator never breaks a PutRecordBatch limit, loses or reorders a record."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from producer.delivery.batching import Accumulator, Batch
from producer.firehose import limits

# Mostly small records, some near the 1,024,000-byte record limit, so both the 500-record and
# the 4 MiB limit get hit.
SIZES = st.one_of(
    st.integers(0, 2_000),
    st.integers(limits.MAX_RECORD_BYTES - 2_000, limits.MAX_RECORD_BYTES),
    st.integers(0, limits.MAX_RECORD_BYTES),
)
_ZEROS = bytes(limits.MAX_RECORD_BYTES)


def _record(index: int, size: int) -> bytes:
    # The first 4 bytes carry the input position, so order can be checked after batching.
    return index.to_bytes(4, "big") + _ZEROS[: max(size - 4, 0)]


def _run(acc: Accumulator, sizes: list[int]) -> list[Batch]:
    batches: list[Batch] = []
    for i, size in enumerate(sizes):
        record = _record(i, size)
        full = acc.add(record, len(record))
        if full is not None:
            batches.append(full)
    last = acc.drain()
    if last is not None:
        batches.append(last)
    return batches


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(SIZES, max_size=1_200),
    max_records=st.sampled_from([1, 2, 7, 500]),
    max_bytes=st.sampled_from([limits.MAX_RECORD_BYTES, 2_500_000, limits.MAX_BATCH_BYTES]),
)
def test_batches_keep_limits_order_and_every_record(
    sizes: list[int], max_records: int, max_bytes: int
) -> None:
    acc = Accumulator(max_records, max_bytes)
    batches = _run(acc, sizes)
    for batch in batches:
        assert 1 <= len(batch) <= max_records <= limits.MAX_BATCH_RECORDS
        assert batch.size == sum(len(d) for d in batch.data)
        assert batch.size <= max_bytes <= limits.MAX_BATCH_BYTES
    flat = [int.from_bytes(d[:4], "big") for b in batches for d in b.data]
    assert flat == list(range(len(sizes))), "lost, duplicated or reordered"
    assert len(acc) == 0


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(SIZES, min_size=1, max_size=800))
def test_a_batch_is_closed_only_when_the_next_record_would_not_fit(sizes: list[int]) -> None:
    # No needlessly small batches: each batch but the last is full by count, or the first
    # record of the next batch would have broken the byte limit.
    batches = _run(Accumulator(), sizes)
    for batch, following in itertools.pairwise(batches):
        full_by_count = len(batch) == limits.MAX_BATCH_RECORDS
        next_size = len(following.data[0])
        assert full_by_count or batch.size + next_size > limits.MAX_BATCH_BYTES


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(SIZES, max_size=1_200),
    cuts=st.lists(st.integers(0, 700), max_size=40),
    max_records=st.sampled_from([1, 2, 7, 500]),
    max_bytes=st.sampled_from([limits.MAX_RECORD_BYTES, 2_500_000, limits.MAX_BATCH_BYTES]),
)
# Records that fill a batch to the byte exactly, then one more: random sizes rarely do.
@example(sizes=[1_000_000, 1_000_000, 500_000, 1], cuts=[], max_records=500, max_bytes=2_500_000)
@example(sizes=[1_000_000, 1_000_000, 500_000, 1], cuts=[2], max_records=500, max_bytes=2_500_000)
def test_add_many_makes_the_batches_one_add_each_makes(
    sizes: list[int], cuts: list[int], max_records: int, max_bytes: int
) -> None:
    # The generator offers records in chunks of any length (empty ones too): the batches must
    # not depend on where the chunks fall.
    expected = [b.data for b in _run(Accumulator(max_records, max_bytes), sizes)]
    acc = Accumulator(max_records, max_bytes)
    records = [_record(i, size) for i, size in enumerate(sizes)]
    got: list[list[bytes]] = []
    start = 0
    for length in [*cuts, len(records)]:
        chunk = records[start : start + length]
        start += len(chunk)
        for batch in acc.add_many(chunk, [len(r) for r in chunk]):
            assert batch.size == sum(map(len, batch.data))
            got.append(batch.data)
    last = acc.drain()
    if last is not None:
        got.append(last.data)
    assert got == expected


def test_add_many_refuses_a_chunk_with_a_record_over_the_limit() -> None:
    acc = Accumulator()
    with pytest.raises(ValueError, match="MAX_RECORD_BYTES"):
        acc.add_many([b"a", b"x"], [1, limits.MAX_RECORD_BYTES + 1])
    assert len(acc) == 0


def test_record_over_the_limit_is_refused() -> None:
    acc = Accumulator()
    with pytest.raises(ValueError, match="MAX_RECORD_BYTES"):
        acc.add(b"x", limits.MAX_RECORD_BYTES + 1)
    assert len(acc) == 0
    acc.add(b"x", limits.MAX_RECORD_BYTES)  # exactly the limit is fine
    assert len(acc) == 1


def test_limits_match_the_api_reference() -> None:
    # https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
    assert limits.MAX_BATCH_RECORDS == 500
    assert limits.MAX_BATCH_BYTES == 4_194_304
    assert limits.MAX_RECORD_BYTES == 1_024_000


@pytest.mark.parametrize(
    ("max_records", "max_bytes"),
    [(0, limits.MAX_BATCH_BYTES), (501, limits.MAX_BATCH_BYTES), (500, limits.MAX_BATCH_BYTES + 1)],
)
def test_settings_beyond_the_api_limits_are_rejected(max_records: int, max_bytes: int) -> None:
    why = "max_bytes must be" if max_records == 500 else "max_records must be 1..500"
    with pytest.raises(ValueError, match=why):
        Accumulator(max_records, max_bytes)


def test_a_batch_knows_when_its_first_and_last_record_came() -> None:
    now = iter([10.0, 10.5, 20.0, 21.0])
    acc = Accumulator(max_records=2, clock=lambda: next(now))
    assert acc.add(b"a", 1) is None  # opens a batch: clock read once (10.0)
    full = acc.add(b"b", 1)  # full by count: taken at 10.5
    assert full is not None and (full.oldest_at, full.newest_at) == (10.0, 10.5)
    acc.add(b"c", 1)  # 20.0
    last = acc.drain()  # 21.0
    assert last is not None and (last.oldest_at, last.newest_at, last.data) == (20.0, 21.0, [b"c"])


def test_keep_leaves_only_the_failed_records_with_their_errors() -> None:
    batch = Batch([b"aa", b"b", b"cccc"], 7, 1.0, 2.0, attempts=2)
    batch.mark_failed("ServiceUnavailableException", "Slow down.")
    assert batch.error(2) == ("ServiceUnavailableException", "Slow down.")
    batch.keep([0, 2], ["InternalFailure", "ServiceUnavailableException"], ["boom", "slow"])
    assert (batch.data, batch.size) == ([b"aa", b"cccc"], 6)
    assert batch.error(1) == ("ServiceUnavailableException", "slow") and batch.attempts == 2
    assert Batch([b"x"], 1).error(0) == ("", "")


def test_limits_count_the_records_own_bytes_not_their_held_form() -> None:
    # Base64 makes a 500,000-byte record 666,668 bytes long; two still fit a 1,024,000 budget.
    acc = Accumulator(max_bytes=limits.MAX_RECORD_BYTES)
    assert acc.add(b"first", 500_000) is None and acc.add(b"second", 500_000) is None
    full = acc.add(b"third", 500_000)
    assert full is not None and full.data == [b"first", b"second"] and full.size == 1_000_000
