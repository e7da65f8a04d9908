"""LogHistogram (producer/telemetry/histogram.py): its stated relative error holds against the
raw values, and merging shards' histograms gives the histogram of all their values."""

from __future__ import annotations

import math
import random

import pytest

from producer.results.summing import merge_parts
from producer.telemetry.histogram import RELATIVE_ERROR, LogHistogram


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_the_stated_error_of_the_raw_values(seed: int) -> None:
    rng = random.Random(seed)
    # Loopback round trips around 2 ms with a long tail of throttled seconds.
    values = [rng.lognormvariate(math.log(0.002), 1.2) for _ in range(20_000)]
    h = LogHistogram()
    for v in values:
        h.observe(v)
    for q in (0.5, 0.9, 0.99, 0.999, 1.0):
        exact = _nearest_rank(values, q)
        got = h.quantile(q)
        assert got is not None
        assert abs(got - exact) <= RELATIVE_ERROR * exact, (q, got, exact)
    assert h.max == max(values)


def test_merged_shards_equal_one_histogram_of_everything_and_round_trip_through_json() -> None:
    rng = random.Random(7)
    shards = [[rng.expovariate(1 / (0.005 * (k + 1))) for _ in range(3000)] for k in range(3)]
    parts = []
    for values in shards:
        h = LogHistogram()
        for v in values:
            h.observe(v)
        parts.append(
            {
                "events_generated": 1,
                "streams": {"s": {"sent": 1, "latency": {"put_record_batch": h.to_dict()}}},
            }
        )
    summed = merge_parts(parts)
    merged = LogHistogram.from_dict(summed["streams"]["s"]["latency"]["put_record_batch"])
    everything = [v for values in shards for v in values]
    whole = LogHistogram()
    for v in everything:
        whole.observe(v)
    assert merged.buckets == whole.buckets and merged.count == len(everything)
    assert summed["streams"]["s"]["sent"] == 3
    assert merged.max == pytest.approx(max(everything), abs=1e-6)  # JSON keeps 6 decimals
    p99 = merged.quantile(0.99)
    exact = _nearest_rank(everything, 0.99)
    assert p99 is not None and abs(p99 - exact) <= RELATIVE_ERROR * exact
    # The summary's printed p99 is the merged one, not a sum or an average of the shards'.
    assert summed["streams"]["s"]["latency"]["put_record_batch"]["p99_s"] == pytest.approx(p99, rel=1e-5)


def test_a_window_is_what_was_observed_since() -> None:
    h = LogHistogram()
    for _ in range(100):
        h.observe(0.001)
    before = h.copy()
    for _ in range(10):
        h.observe(0.5)
    window = h.minus(before)
    assert window.count == 10
    q = window.quantile(0.5)
    assert q is not None and abs(q - 0.5) <= RELATIVE_ERROR * 0.5
    assert h.minus(h.copy()).quantile(0.5) is None
