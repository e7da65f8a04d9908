"""Token buckets: whole-call throttling on requests/s, per-record on records/s and bytes/s, recovery."""

from __future__ import annotations

from producer.firehose.limits import DirectPutQuota, direct_put_quota
from producer.local.quotas import QuotaOverrides, StreamQuota


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_records_over_quota_are_cut_from_the_end_and_recover() -> None:
    clock = FakeClock()
    quota = StreamQuota(DirectPutQuota(records_per_s=10, requests_per_s=100, bytes_per_s=10_000), clock)
    assert quota.admit_records([1] * 8, 8) == 8
    assert quota.admit_records([1] * 8, 8) == 2  # 2 tokens left
    assert quota.throttled_records == 6
    clock.now += 0.5  # half a second refills 5
    assert quota.admit_records([1] * 8, 8) == 5
    clock.now += 10  # refills to the one-second burst, not more
    assert quota.admit_records([1] * 20, 20) == 10


def test_bytes_quota_binds_per_record() -> None:
    quota = StreamQuota(DirectPutQuota(1000, 100, bytes_per_s=250), FakeClock())
    assert quota.admit_records([100, 100, 100], 300) == 2


def test_requests_over_quota_throttle_the_whole_call() -> None:
    clock = FakeClock()
    quota = StreamQuota(DirectPutQuota(1000, requests_per_s=2, bytes_per_s=1000), clock)
    assert quota.admit_call() and quota.admit_call()
    assert not quota.admit_call()
    clock.now += 0.5
    assert quota.admit_call()


def test_overrides_keep_unset_values_from_the_region() -> None:
    default = direct_put_quota("eu-central-1")
    assert default.records_per_s == 100_000
    assert direct_put_quota("us-east-1").bytes_per_s == 5 * 1024 * 1024
    applied = QuotaOverrides(records_per_s=50).apply(default)
    assert applied == DirectPutQuota(50, default.requests_per_s, default.bytes_per_s)
