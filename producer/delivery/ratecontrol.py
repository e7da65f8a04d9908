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

import math
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
    # How many standard errors a throttled share must move to count as moved. The shares are
    # watched at every answer, so a looser bar would be crossed by chance within seconds: a
    # 2 s window of a stream whose calls fail whole 5% of the time swings by ~0.03.
    significance: float = 3.0

    def validate(self) -> None:
        if not 0.0 < self.decrease_factor < 1.0:
            raise ValueError("decrease_factor must be between 0 and 1")
        if self.recovery_s <= 0 or self.cooldown_s < 0 or self.window_s <= 0 or self.burst_s <= 0:
            raise ValueError("recovery_s, window_s and burst_s must be > 0, cooldown_s >= 0")
        if not 0 < self.min_rate <= self.max_rate:
            raise ValueError("need 0 < min_rate <= max_rate")
        if self.significance <= 0:
            raise ValueError("significance must be > 0")


# A share difference smaller than this is never significant, however many records back it: it
# keeps two windows with no spread at all (every record throttled, an outage) equal.
_MIN_SHARE_DIFFERENCE = 0.02


class _Tally:
    """Throttled share over a set of answers, and its standard error.

    The answers, not the records, are the samples: a whole-call failure throttles every record
    of the call at once, so records are far from independent and a per-record (binomial) error
    would call a run of unlucky calls a change of regime. Ratio estimator over calls:
    share = T / N, variance ~ sum((t_i - share * n_i)^2) / N^2 * k / (k - 1) over k calls.
    Integers only, so that removing what was added leaves exactly nothing.
    """

    __slots__ = ("calls", "hits", "records", "sum_nn", "sum_tn", "sum_tt", "throttled")

    def __init__(self) -> None:
        self.calls = self.hits = self.records = self.throttled = 0
        self.sum_nn = self.sum_tt = self.sum_tn = 0

    def add(self, records: int, throttled: int, sign: int = 1) -> None:
        self.calls += sign
        self.hits += sign * (throttled > 0)
        self.records += sign * records
        self.throttled += sign * throttled
        self.sum_nn += sign * records * records
        self.sum_tt += sign * throttled * throttled
        self.sum_tn += sign * throttled * records

    def share(self) -> float:
        return self.throttled / self.records if self.records else 0.0

    def accepted(self) -> int:
        return self.records - self.throttled

    def spread(self) -> float:
        """Variance of one call's throttled count around ``share`` times its records."""
        if self.calls < 2:
            return 0.0
        r = self.share()
        return max(0.0, self.sum_tt - 2 * r * self.sum_tn + r * r * self.sum_nn) / (self.calls - 1)

    def variance(self, spread: float = 0.0) -> float:
        """Variance of ``share``; with ``spread``, at least what calls that spread would give.

        A few seconds of calls may hold none of the rare whole-call failures and so look
        steadier than the process they come from; the background's spread, measured over
        longer, keeps such a window from passing for a significant change.
        """
        if not self.records:
            return 0.0
        return max(self.spread(), spread) * self.calls / self.records**2

    def merge(self, other: _Tally) -> None:
        self.calls += other.calls
        self.hits += other.hits
        self.records += other.records
        self.throttled += other.throttled
        self.sum_nn += other.sum_nn
        self.sum_tt += other.sum_tt
        self.sum_tn += other.sum_tn

    def copy(self) -> _Tally:
        other = _Tally()
        other.merge(self)
        return other


class AdaptiveRate:
    """The current send limit of one stream (records/s), the gate enforcing it, and the
    accepted rate it is measured against.

    The limit starts unbounded (``limit()`` is None): a stream that is never throttled is never
    paced. Each cut is then checked by what it did to the throttled share, the one signal that
    tells a quota from failures that have nothing to do with the rate:

    - the share fell significantly: a rate limit, as assumed; the cut stays;
    - it rose significantly: the cut was too shallow (a quota's burst allowance ran out under
      it, or the quota shrank); the cut stays and the next throttling may cut again at once;
    - it did not move: the failures do not depend on the rate (injected faults, an outage, a
      service-side problem). The cut is undone, and throttling at that share is background:
      the next cut needs a share significantly above it, until the share falls well below it.

    "Significantly" is measured in standard errors over calls (see ``_Tally``), not as a fixed
    margin: under random failures the share of a 2 s window wanders, and a stream watched at
    every answer would otherwise find a peak to cut on, then read the fall back from that peak
    as a cut that helped, and be held below its offered load. Without any check a steady 30%
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
        self._window_tally = _Tally()
        # The check of the last cut: (evaluate from, the answers of the window it was made on,
        # limit before).
        self._check: tuple[float, _Tally, float | None] | None = None
        self._after = _Tally()  # answers since the check began
        # Answers since a cut was found not to move the throttled share: the failures that do
        # not depend on the rate, their share and spread. None while there are none.
        self._background: _Tally | None = None
        # After a cut that proved too shallow: the limit before it, which an undo of the next
        # cut restores, and until when that next cut counts as its sequel.
        self._retest: tuple[float | None, float] | None = None
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
        return self._window_tally.accepted() / span

    def on_result(self, accepted: int, throttled: int) -> None:
        """Feed one answer: records accepted, and records (or a whole call) throttled."""
        now = self._clock()
        if accepted or throttled:
            self._window.append((now, accepted, throttled))
            self._window_tally.add(accepted + throttled, throttled)
            self._accepted_since_cut += accepted
        if self._check is not None:
            self._evaluate_cut(now, accepted, throttled)
        elif self._background is not None and self._background_faded(now):
            self._background = None
        if throttled:
            self._maybe_cut(now)

    def _differs(self, high: float, low: float, variance: float) -> bool:
        """Whether ``high`` is significantly above ``low``, given the variance of the difference."""
        bar = max(_MIN_SHARE_DIFFERENCE, self.settings.significance * math.sqrt(variance))
        return high - low > bar

    def _spread(self) -> float:
        return self._background.spread() if self._background is not None else 0.0

    def _above_background(self, now: float) -> bool:
        """The window's share is significantly above the background's (True without one)."""
        self._trim(now)
        return self._window_above_background()

    def _window_above_background(self) -> bool:
        background = self._background
        if background is None:
            return True
        window = self._window_tally
        variance = window.variance(background.spread()) + background.variance()
        return self._differs(window.share(), background.share(), variance)

    def _background_faded(self, now: float) -> bool:
        """The background failures have faded: the share is down to under half of it, and not
        by chance (a fault rate that merely wanders must not reopen the door to cutting)."""
        assert self._background is not None
        self._trim(now)
        window, background = self._window_tally, self._background
        share, usual = window.share(), background.share()
        variance = window.variance(background.spread()) + background.variance()
        return share < usual / 2 and self._differs(usual, share, variance)

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
        if not self._above_background(now):
            return  # no more throttling than the failures a cut was shown not to reduce
        window = self._window_tally
        current = self.limit()
        achieved = max(self.achieved_rate(), s.min_rate)
        base = achieved if current is None else min(current, achieved)
        self._set_course(now, max(s.min_rate, base * s.decrease_factor), base)
        # The sequel of a cut that proved too shallow is judged as a pair: undone, it restores
        # the limit from before both.
        restore = self._retest[0] if self._retest is not None and now <= self._retest[1] else current
        self._retest = None
        self._check = (now + s.cooldown_s, window.copy(), restore)
        self._after = _Tally()
        # Start the gate empty: the records already in flight used up this moment's budget.
        self._tokens = 0.0
        self._tokens_at = now
        self.cuts += 1

    def _evaluate_cut(self, now: float, accepted: int, throttled: int) -> None:
        assert self._check is not None
        since, before, limit_before = self._check
        if now < since:
            return
        after = self._after
        if accepted or throttled:
            after.add(accepted + throttled, throttled)
        elapsed = now - since
        if not (after.records and elapsed >= self.settings.window_s / 2) and elapsed < self.settings.window_s:
            return
        self._check = None
        share_before, share_after = before.share(), after.share()
        # If the cut changed nothing, both samples come from one process: each is given the
        # largest spread seen in either (or in the background), not just its own.
        spread = max(before.spread(), after.spread(), self._spread())
        variance = before.variance(spread) + after.variance(spread)
        # Throttling the background accounts for is no sign of a quota, and cannot fall.
        floor = self._background.share() if self._background is not None else 0.0
        # Fallen, and by a good part of what the background does not explain: a quota's
        # throttling all but stops under a cut to 0.7 x the accepted rate, while a share that
        # merely falls back from the peak the cut was made on keeps most of it.
        if self._differs(share_before, share_after, variance) and (
            share_after - floor < 0.6 * (share_before - floor)
        ):
            return  # the cut helped: a rate limit, as assumed
        if not after.throttled:
            # Throttling stopped. A rate limit if, at the share of calls throttled before, the
            # calls since would have met a few throttled ones by chance (P(none) < ~5%);
            # otherwise too little to go on (rare whole-call failures are often absent from a
            # second or two of calls): the cut is undone without concluding anything.
            if before.hits / before.calls * after.calls >= 3:
                return
            self._undo(limit_before, now)
            return
        if after.accepted() and self._differs(share_after, share_before, variance):
            # More throttling at a lower rate, and records still got through: the cut was too
            # shallow (a quota's burst allowance ran out under it). Keep it; the next
            # throttling cuts again at once, and that cut's check judges both.
            self._retest = (limit_before, now + self.settings.window_s)
            return
        # The share did not move with the rate (or nothing got through at all: an outage): the
        # failures do not depend on the rate. Undo the cut. The answers after the cut are the
        # background; the share before it is the peak the cut was made on, biased high.
        self._background = after.copy()
        self._undo(limit_before, now)

    def _undo(self, limit_before: float | None, now: float) -> None:
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
        leaving = _Tally()
        while self._window and self._window[0][0] < horizon:
            _, accepted, throttled = self._window.popleft()
            self._window_tally.add(accepted + throttled, throttled, sign=-1)
            leaving.add(accepted + throttled, throttled)
        # The background learns its share and spread from answers as they leave the window,
        # once they have been compared with it there, and only while the throttling fits it: a
        # quota that starts binding must show above the background and be cut for, not be
        # absorbed into it first.
        background = self._background
        if (
            leaving.calls
            and background is not None
            and self._check is None
            and not self._window_above_background()
        ):
            background.merge(leaving)

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
