"""Per-stream adaptive send rate: AIMD on throttling signals, and the token gate that applies it.

Firehose throttles a Direct PUT stream past its quota (records/s, requests/s and MiB/s per
stream) by failing records with ServiceUnavailableException "Slow down." or by failing the whole
call with ServiceUnavailableException:
https://docs.aws.amazon.com/firehose/latest/dev/limits.html
https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
Retrying throttled records at full speed only earns more throttling, so the sender paces itself:
on a throttling signal the limit drops to ``decrease_factor`` of what the stream actually
accepted, then rises linearly so that the cut is won back in ``recovery_s`` and probing goes on
at that slope. The limit saw-tooths just under the quota instead of far above it.

Pure and clock-injected: nothing here sleeps; the sender sleeps on ``wait_s``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from producer.firehose import limits


@dataclass(frozen=True, slots=True)
class RateControlSettings:
    # Multiplicative decrease, applied to the accepted rate (not to an untested limit), so one
    # cut lands under the quota however far above it the producer was.
    decrease_factor: float = 0.7
    # Additive increase: the slope regains a cut in this many seconds, then keeps probing.
    recovery_s: float = 5.0
    # At most one cut per cooldown: answers to calls sent before a cut still show the old rate.
    cooldown_s: float = 1.0
    min_rate: float = 10.0  # records/s; never pace slower than this
    # No stream's records/s quota is above the largest default (500,000 in the big regions,
    # https://docs.aws.amazon.com/firehose/latest/dev/limits.html); raised quotas can pass it
    # only by request, and then the limit is not binding anyway.
    max_rate: float = float(limits.LARGE_REGION_QUOTA.records_per_s)
    window_s: float = 2.0  # achieved rate: accepted records over this sliding window
    burst_s: float = 0.5  # the gate lets this many seconds' worth of records through at once

    def validate(self) -> None:
        if not 0.0 < self.decrease_factor < 1.0:
            raise ValueError("decrease_factor must be between 0 and 1")
        if self.recovery_s <= 0 or self.cooldown_s < 0 or self.window_s <= 0 or self.burst_s <= 0:
            raise ValueError("recovery_s, window_s and burst_s must be > 0, cooldown_s >= 0")
        if not 0 < self.min_rate <= self.max_rate:
            raise ValueError("need 0 < min_rate <= max_rate")


class AdaptiveRate:
    """The current send limit of one stream (records/s), the gate enforcing it, and the
    accepted rate it is measured against.

    The limit starts unbounded (``limit()`` is None): a stream that is never throttled is never
    paced. Each cut is then checked. If throttling fell, it was a rate limit. If it did not fall
    but as many records got through as before, the cut was too shallow and the next throttling
    may cut again. If it did not fall and fewer got through, the failures do not depend on the
    rate (injected faults, an outage, a service-side problem): the cut is undone, and throttling
    at that share is treated as background until it fades. Without this check a steady 30%
    failure rate would cut the limit every few seconds down to ``min_rate``.

    Example, with a fake clock::

        rate = AdaptiveRate(RateControlSettings(), clock=lambda: now)
        rate.on_result(accepted=1000, throttled=0)   # at now=1.0
        rate.on_result(accepted=0, throttled=500)    # limit becomes 0.7 x accepted rate
    """

    def __init__(self, settings: RateControlSettings, clock: Callable[[], float] = time.monotonic) -> None:
        settings.validate()
        self.settings = settings
        self._clock = clock
        self._started = clock()
        self._cut_at: float | None = None  # when the limit last changed course
        self._cut_to = 0.0  # the limit right then
        self._slope = 0.0  # records/s gained per second since then
        self._accepted_since_cut = 0
        # (time, accepted, throttled) answers over the last window_s
        self._window: deque[tuple[float, int, int]] = deque()
        self._window_accepted = 0
        self._window_throttled = 0
        # The check of the last cut: (evaluate from, throttled share before, limit before,
        # accepted rate before).
        self._check: tuple[float, float, float | None, float] | None = None
        self._after = [0, 0]  # accepted, throttled since the check began
        self._background_share = 0.0  # throttled share that cuts did not reduce
        self._tokens = 0.0
        self._tokens_at = self._started
        self.cuts = 0
        self.undone = 0

    # -- the limit -----------------------------------------------------------------------------

    def limit(self) -> float | None:
        """Records/s the sender may send now, or None while no cut is in force."""
        if self._cut_at is None:
            return None
        grown = self._cut_to + self._slope * (self._clock() - self._cut_at)
        return min(self.settings.max_rate, grown)

    def achieved_rate(self) -> float:
        """Records/s accepted over the last ``window_s``."""
        now = self._clock()
        self._trim(now)
        # At least half a window: right after start-up the service's burst allowance (a quota
        # bucket starts full) would otherwise read as a rate many times the quota.
        span = max(self.settings.window_s / 2, min(self.settings.window_s, now - self._started))
        return self._window_accepted / span

    def throttled_share(self) -> float:
        """Share of answered records throttled over the last ``window_s``."""
        self._trim(self._clock())
        total = self._window_accepted + self._window_throttled
        return self._window_throttled / total if total else 0.0

    def on_result(self, accepted: int, throttled: int) -> None:
        """Feed one answer: records accepted, and records (or a whole call) throttled."""
        now = self._clock()
        if accepted or throttled:
            self._window.append((now, accepted, throttled))
            self._window_accepted += accepted
            self._window_throttled += throttled
            self._accepted_since_cut += accepted
        if self._check is not None:
            self._evaluate_cut(now, accepted, throttled)
        elif self._background_share and self.throttled_share() < self._background_share / 2:
            self._background_share = 0.0  # the background failures have faded
        if throttled:
            self._maybe_cut(now)

    def _maybe_cut(self, now: float) -> None:
        s = self.settings
        if self._check is not None:
            return  # the last cut is still being judged
        if now - self._started < s.window_s / 2:
            return  # too little history for an accepted rate worth cutting from; backoff copes
        if self._cut_at is not None and now - self._cut_at < s.cooldown_s:
            return
        # Nothing got through since the last cut (or ever): that is an outage or a cold start,
        # which backoff handles; there is no accepted rate to cut from.
        if self._accepted_since_cut == 0:
            return
        share = self.throttled_share()
        if self._background_share and share <= self._background_share + 0.05:
            return
        current = self.limit()
        accepted_rate = self.achieved_rate()
        achieved = max(accepted_rate, s.min_rate)
        base = achieved if current is None else min(current, achieved)
        self._set_course(now, max(s.min_rate, base * s.decrease_factor), base)
        self._check = (now + s.cooldown_s, share, current, accepted_rate)
        self._after = [0, 0]
        # Start the gate empty: the records already in flight used up this moment's budget.
        self._tokens = 0.0
        self._tokens_at = now
        self.cuts += 1

    def _evaluate_cut(self, now: float, accepted: int, throttled: int) -> None:
        assert self._check is not None
        since, share_before, limit_before, rate_before = self._check
        if now < since:
            return
        self._after[0] += accepted
        self._after[1] += throttled
        total = sum(self._after)
        elapsed = now - since
        if not (total and elapsed >= self.settings.window_s / 2) and elapsed < self.settings.window_s:
            return
        self._check = None
        share_after = self._after[1] / total if total else 0.0
        if share_after < 0.6 * share_before:
            return  # the cut helped: a rate limit, as assumed
        if self._after[0] / elapsed >= 0.85 * rate_before:
            return  # as much got through as before: the cut was not deep enough; the next may be
        # Throttling did not fall, and what got through fell with the rate: the failures do not
        # depend on the rate (faults, an outage). Undo the cut.
        self._background_share = max(self._background_share, share_before)
        self.undone += 1
        if limit_before is None:
            self._cut_at = None
        else:
            self._set_course(now, limit_before, limit_before / self.settings.decrease_factor)

    def _set_course(self, now: float, start: float, regain: float) -> None:
        """The limit is ``start`` now and grows to ``regain`` in ``recovery_s``, then beyond."""
        s = self.settings
        self._cut_at = now
        self._cut_to = start
        self._slope = max((regain - start) / s.recovery_s, s.min_rate / s.recovery_s)
        self._accepted_since_cut = 0

    def _trim(self, now: float) -> None:
        horizon = now - self.settings.window_s
        while self._window and self._window[0][0] < horizon:
            _, accepted, throttled = self._window.popleft()
            self._window_accepted -= accepted
            self._window_throttled -= throttled

    # -- the gate ------------------------------------------------------------------------------

    def wait_s(self) -> float:
        """How long to wait before the next batch may go (0 when it may go now).

        A batch may overdraw the bucket (it is never split); the debt delays the next one.
        """
        limit = self.limit()
        if limit is None:
            return 0.0
        self._refill(limit)
        return 0.0 if self._tokens >= 0 else -self._tokens / limit

    def take(self, count: int) -> None:
        """Spend ``count`` records of budget (call when the batch is sent)."""
        limit = self.limit()
        if limit is None:
            return
        self._refill(limit)
        self._tokens -= count

    def _refill(self, limit: float) -> None:
        now = self._clock()
        capacity = limit * self.settings.burst_s
        self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * limit)
        self._tokens_at = now
