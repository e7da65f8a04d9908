"""The adaptive limit, driven by a fake clock: cuts on throttling, probes back, converges near
the quota instead of hammering it, and keeps its nerve through an outage."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import pytest

from producer.delivery.ratecontrol import AdaptiveRate, RateControlSettings


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class QuotaEndpoint:
    """Accepts at most ``rate`` records/s (a token bucket holding one second's worth), fails the
    rest as throttled, like a Firehose stream at its Direct PUT quota."""

    rate: float
    clock: FakeClock
    tokens: float = 0.0
    stamp: float = 0.0

    def put(self, count: int) -> int:
        self.tokens = min(self.rate, self.tokens + (self.clock.now - self.stamp) * self.rate)
        self.stamp = self.clock.now
        accepted = min(count, int(self.tokens))
        self.tokens -= accepted
        return accepted


def _simulate(
    demand: float, quota: float, seconds: float, batch: int = 100, dt: float = 0.005
) -> tuple[AdaptiveRate, list[tuple[float, int, int, float | None]]]:
    """A sender offered ``demand`` records/s (throttled ones are owed again), paced by the gate.
    Returns the controller and per-step (time, attempted, accepted, limit)."""
    clock = FakeClock()
    rate = AdaptiveRate(RateControlSettings(), clock)
    endpoint = QuotaEndpoint(quota, clock)
    owed = 0.0
    trace: list[tuple[float, int, int, float | None]] = []
    while clock.now < seconds:
        clock.now = round(clock.now + dt, 6)
        owed += demand * dt
        attempted = accepted = 0
        budget = owed  # each owed record is tried at most once a step (the sender's backoff)
        while budget >= batch and rate.wait_s() == 0:
            rate.take(batch)
            ok = endpoint.put(batch)
            rate.on_result(accepted=ok, throttled=batch - ok)
            owed -= ok
            budget -= batch
            attempted += batch
            accepted += ok
        trace.append((clock.now, attempted, accepted, rate.limit()))
    return rate, trace


@pytest.mark.parametrize(("demand", "quota"), [(10_000, 2_000), (3_000, 2_000), (50_000, 20_000)])
def test_converges_near_the_quota_without_hammering(demand: float, quota: float) -> None:
    rate, trace = _simulate(demand, quota, seconds=60)
    late = [t for t in trace if t[0] > 30]
    span = late[-1][0] - late[0][0]
    accepted_rate = sum(t[2] for t in late) / span
    attempted_rate = sum(t[1] for t in late) / span
    assert accepted_rate >= 0.8 * quota, f"accepted {accepted_rate:.0f}/s of a {quota}/s quota"
    # Unpaced, the sender would attempt every owed record every step: far above demand.
    assert attempted_rate <= 1.35 * quota, f"attempted {attempted_rate:.0f}/s against {quota}/s"
    limits_seen = [t[3] for t in late if t[3] is not None]
    assert limits_seen and 0.5 * quota <= min(limits_seen) and max(limits_seen) <= 1.5 * quota
    assert rate.cuts >= 3  # it keeps probing, and keeps being told where the quota is


def test_never_paced_while_never_throttled() -> None:
    rate, trace = _simulate(demand=5_000, quota=1_000_000, seconds=5)
    assert rate.limit() is None and rate.cuts == 0
    assert sum(t[2] for t in trace) == pytest.approx(5_000 * 5, rel=0.02)


def test_cut_is_relative_to_what_was_accepted() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(RateControlSettings(decrease_factor=0.5, window_s=2.0), clock)
    for _ in range(20):  # 1,000 records/s accepted for 2 s
        clock.now += 0.1
        rate.on_result(accepted=100, throttled=0)
    assert rate.achieved_rate() == pytest.approx(1_000, rel=0.01)
    rate.on_result(accepted=0, throttled=100)
    assert rate.limit() == pytest.approx(500, rel=0.01)


def test_one_cut_per_cooldown_then_linear_recovery() -> None:
    clock = FakeClock()
    settings = RateControlSettings(decrease_factor=0.7, cooldown_s=1.0, recovery_s=5.0)
    rate = AdaptiveRate(settings, clock)
    for _ in range(20):
        clock.now += 0.1
        rate.on_result(accepted=100, throttled=0)
    rate.on_result(accepted=0, throttled=100)
    first = rate.limit()
    assert first == pytest.approx(700, rel=0.02)
    clock.now += 0.5  # answers to calls sent before the cut: no second cut
    rate.on_result(accepted=50, throttled=50)
    assert rate.cuts == 1
    clock.now += 4.5  # 5 s after the cut the limit is back where the cut started
    assert rate.limit() == pytest.approx(1_000, rel=0.02)
    clock.now += 5.0  # and probing goes on at the same slope
    assert rate.limit() == pytest.approx(1_300, rel=0.02)


def test_an_outage_does_not_collapse_the_limit() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(RateControlSettings(), clock)
    for _ in range(30):
        clock.now += 0.1
        rate.on_result(accepted=200, throttled=0)
    before = rate.achieved_rate()
    for _ in range(50):  # 5 s of whole-call 503s: nothing accepted
        clock.now += 0.1
        rate.on_result(accepted=0, throttled=500)
    # One cut, judged useless (throttling stayed at 100%) and undone: unpaced again.
    assert rate.cuts == 1 and rate.undone == 1
    limit = rate.limit()
    assert limit is None or limit >= before


def test_rate_independent_failures_do_not_drag_the_limit_down() -> None:
    # 30% of records fail whatever the rate (a fault, not a quota): pacing cannot help, so the
    # sender must keep sending at the demand rather than cut again and again.
    clock = FakeClock()
    rate = AdaptiveRate(RateControlSettings(), clock)
    failures = random.Random(4)
    demand, dt = 5_000.0, 0.01
    owed = 0.0
    accepted_total = 0
    while clock.now < 60:
        clock.now = round(clock.now + dt, 6)
        owed += demand * dt
        budget = owed
        while budget >= 100 and rate.wait_s() == 0:
            rate.take(100)
            ok = sum(failures.random() >= 0.3 for _ in range(100))
            rate.on_result(accepted=ok, throttled=100 - ok)
            owed -= ok
            budget -= 100
            if clock.now > 30:
                accepted_total += ok
    assert accepted_total / 30 >= 0.9 * demand
    assert rate.cuts <= 3


def test_gate_paces_to_the_limit() -> None:
    clock = FakeClock()
    settings = RateControlSettings(decrease_factor=0.5, recovery_s=1e9)  # hold the limit still
    rate = AdaptiveRate(settings, clock)
    for _ in range(20):
        clock.now += 0.1
        rate.on_result(accepted=200, throttled=0)
    rate.on_result(accepted=0, throttled=1)  # limit 1,000 records/s
    limit = rate.limit()
    assert limit == pytest.approx(1_000, rel=0.01)
    sent = 0
    start = clock.now
    while clock.now - start < 10:
        wait = rate.wait_s()
        if wait:
            clock.now += wait
            continue
        rate.take(250)
        sent += 250
    assert sent == pytest.approx(10_000, rel=0.06)


def test_achieved_rate_forgets_old_answers() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(RateControlSettings(window_s=2.0), clock)
    clock.now = 1.0
    rate.on_result(accepted=1_000, throttled=0)
    assert rate.achieved_rate() == pytest.approx(1_000)
    clock.now = 10.0
    assert rate.achieved_rate() == 0.0


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="decrease_factor must be between 0 and 1"):
        AdaptiveRate(RateControlSettings(decrease_factor=1.0))
    with pytest.raises(ValueError, match="need 0 < min_rate <= max_rate"):
        AdaptiveRate(RateControlSettings(min_rate=0.0))


def test_window_is_bounded() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(RateControlSettings(window_s=1.0), clock)
    for _ in range(10_000):
        clock.now += 0.01
        rate.on_result(accepted=1, throttled=0)
        rate.achieved_rate()
    window: deque[tuple[float, int, int]] = rate._window
    assert len(window) <= 101


def _random_failures(seed: int, offered: float = 2_000.0, seconds: float = 30.0) -> tuple[int, float]:
    """A stream well under any quota whose records fail at random, whatever the rate: 5% of
    calls answered 503 (the whole call throttled), 20% of the other records refused, half of
    them "Slow down." (throttling to the sender) and half InternalFailure. Every failed record
    is owed again, and everything owed is tried at each 10 ms step, as far as the gate lets it.
    Returns (records accepted, the most records ever owed)."""
    clock = FakeClock()
    rng = random.Random(seed)
    rate = AdaptiveRate(RateControlSettings(), clock)
    owed, accepted, most_owed, batch, dt = 0.0, 0, 0.0, 100, 0.01
    while clock.now < seconds:
        clock.now = round(clock.now + dt, 6)
        owed += offered * dt
        budget = owed
        while budget >= batch and rate.wait_s() == 0:
            rate.take(batch)
            budget -= batch
            if rng.random() < 0.05:
                rate.on_result(accepted=0, throttled=batch)
                continue
            failed = sum(rng.random() < 0.2 for _ in range(batch))
            slow_down = sum(rng.random() < 0.5 for _ in range(failed))
            rate.on_result(accepted=batch - failed, throttled=slow_down)
            owed -= batch - failed
            accepted += batch - failed
        most_owed = max(most_owed, owed)
    return accepted, most_owed


def test_random_failures_never_hold_a_stream_below_its_offered_load() -> None:
    # 200 seeded runs of 30 s at 2,000 records/s. Keeping up means: at least 99% of what was
    # offered accepted by the end, and never more than 2 s of load owed (with ~26% of attempts
    # failing, about 1 s of load is always on its way). Before the controller judged cuts by
    # the significance of the share's move, 126 of these runs fell behind (one owed 48,000
    # records at the end): a peak of the noisy share set off a cut, its fall back to the mean
    # passed for a cut that helped, and cut followed cut.
    offered, seconds = 2_000.0, 30.0
    behind = []
    for seed in range(200):
        accepted, most_owed = _random_failures(seed, offered, seconds)
        if accepted < 0.99 * offered * seconds or most_owed > 2 * offered:
            behind.append((seed, accepted, round(most_owed)))
    assert not behind, f"{len(behind)} of 200 runs fell behind (seed, accepted, most owed): {behind[:10]}"


def _quota_under_random_failures(
    seed: int, quota: float, from_s: float, seconds: float
) -> tuple[float, float]:
    """The failure mix of ``_random_failures`` at 2,000 records/s, and from ``from_s`` on a
    quota below that load as well (records over it throttled, like ``QuotaEndpoint``). At most
    8 calls of 100 records every 10 ms, as a sender's calls in flight would allow. Returns the
    records/s accepted and attempted over the last 20 s."""
    clock = FakeClock()
    rng = random.Random(seed)
    rate = AdaptiveRate(RateControlSettings(), clock)
    endpoint = QuotaEndpoint(quota, clock)
    owed, accepted, attempted, batch, dt = 0.0, 0, 0, 100, 0.01
    while clock.now < seconds:
        clock.now = round(clock.now + dt, 6)
        owed += 2_000 * dt
        calls = 0
        while owed >= batch * (calls + 1) and calls < 8 and rate.wait_s() == 0:
            rate.take(batch)
            calls += 1
            late = clock.now > seconds - 20
            attempted += batch if late else 0
            if rng.random() < 0.05:
                rate.on_result(accepted=0, throttled=batch)
                continue
            failed = sum(rng.random() < 0.2 for _ in range(batch))
            slow_down = sum(rng.random() < 0.5 for _ in range(failed))
            ok = endpoint.put(batch - failed) if clock.now >= from_s else batch - failed
            rate.on_result(accepted=ok, throttled=slow_down + batch - failed - ok)
            owed -= ok
            accepted += ok if late else 0
    return accepted / 20, attempted / 20


@pytest.mark.parametrize("seed", range(5))
def test_a_quota_that_binds_under_random_failures_is_still_found(seed: int) -> None:
    # Random failures first (the controller learns them as background), then a quota of 1,500
    # records/s under the 2,000 offered: throttling above the background must still be cut
    # for. Unpaced, the sender would attempt its 8 calls every 10 ms (80,000 records/s).
    # Pacing to the quota needs ~2,000 attempts/s (1,500 / 0.76 that the failures let pass).
    accepted, attempted = _quota_under_random_failures(seed, quota=1_500, from_s=20, seconds=60)
    assert accepted >= 0.7 * 1_500, f"accepted {accepted:.0f}/s of a 1,500/s quota"
    assert attempted <= 1.5 * 2_000, f"attempted {attempted:.0f}/s"
