"""Judging checks: live over sliding windows of a run's figures, and at its end.

``Judge`` is pure: it is fed ``Figures`` snapshots (the run takes one every ``TICK_S``) and
says when an ``abort`` check fails; ``verdicts`` gives every check's outcome for the summary's
``checks`` block. ``combine`` judges a merged run (``merge``, ``run --workers``).

Semantics (README, Checks):
- ``for D``: at every snapshot once D seconds (past ``after``) have gone by, the metric over the
  last D seconds is judged; one failing window fails the check. Its reported value is the first
  failing window's, else the worst window's. A run shorter than its window is judged once on
  the whole run (past ``after``).
- no ``for``: judged once at the end on the whole run past ``after``; with ``abort`` also live,
  on the figures so far.
- a metric with nothing to judge (no record sent, no call answered) is skipped live; at the
  end it fails the check (value null), since a run that sent nothing proved nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from producer.checks.expr import Check, parse_check
from producer.checks.figures import Figures

# How often a run snapshots its figures for live checks (seconds).
TICK_S = 0.5
# Window starts kept per `for` window at most (see Judge.__init__).
KEPT_PER_WINDOW = 120


@dataclass(frozen=True, slots=True)
class Verdict:
    check: Check
    value: float | None
    ok: bool
    failed_at_s: float | None = None  # live failures: seconds into generation

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "expression": self.check.text,
            "metric": self.check.metric,
            "value": None if self.value is None else round(self.value, 6),
            "ok": self.ok,
        }
        if self.failed_at_s is not None:
            out["failed_at_s"] = round(self.failed_at_s, 1)
        return out


def _worse(check: Check, a: float, b: float) -> float:
    """Of two values, the one nearer to failing ``check``."""
    if check.op in ("<", "<="):
        return max(a, b)
    if check.op in (">", ">="):
        return min(a, b)
    return a if not check.passes(a) else b


class Judge:
    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = tuple(checks)
        self._history: list[Figures] = []
        self._starts: dict[int, Figures] = {}  # per check: the snapshot its `after` begins at
        self._worst: dict[int, float] = {}
        self._failed: dict[int, tuple[float, float]] = {}  # value, at_s
        self._judged_window: set[int] = set()
        longest = max((c.for_s or 0.0 for c in self.checks), default=0.0)
        self._keep_s = longest + 2 * TICK_S
        # Snapshots kept for window starts: one a tick, or for long windows one per
        # 1/KEPT_PER_WINDOW of the window (a window then starts up to that much early), so
        # a `for 1h` check holds ~KEPT_PER_WINDOW snapshots rather than 7,200.
        self._keep_every_s = max(TICK_S, longest / KEPT_PER_WINDOW)

    def observe(self, now: Figures) -> Check | None:
        """Take a snapshot; the first ``abort`` check it fails, if any."""
        if not self._history or now.at_s - self._history[-1].at_s >= self._keep_every_s - 1e-9:
            self._history.append(now)
        while len(self._history) > 2 and self._history[1].at_s < now.at_s - self._keep_s:
            self._history.pop(0)
        fired: Check | None = None
        for i, check in enumerate(self.checks):
            if now.at_s >= check.after_s and i not in self._starts:
                self._starts[i] = now
            if not check.live or i in self._failed or i not in self._starts:
                continue
            if check.for_s is None:
                base = self._starts[i]
            else:
                base_at = max(now.at_s - check.for_s, self._starts[i].at_s)
                if now.at_s - self._starts[i].at_s < check.for_s - 1e-9:
                    continue  # not a whole window past `after` yet
                base = self._at(base_at)
                if base.at_s < self._starts[i].at_s:  # thinned out: never before `after`
                    base = self._starts[i]
                self._judged_window.add(i)
            value = now.minus(base).value(check)
            if value is None:
                continue
            self._worst[i] = _worse(check, self._worst.get(i, value), value)
            if not check.passes(value):
                self._failed[i] = (value, now.at_s)
                if check.abort and fired is None:
                    fired = check
        return fired

    def _at(self, at_s: float) -> Figures:
        """The latest snapshot taken at or before ``at_s`` (the oldest kept, when none is)."""
        k = bisect_right([f.at_s for f in self._history], at_s + 1e-9)
        return self._history[max(0, k - 1)]

    def verdicts(self, end: Figures) -> list[Verdict]:
        """Every check's outcome, given the figures at the end of the run."""
        out = []
        for i, check in enumerate(self.checks):
            if i in self._failed:
                value, at_s = self._failed[i]
                out.append(Verdict(check, value, False, at_s))
                continue
            start = self._starts.get(i)
            if check.after_s and start is None:
                out.append(Verdict(check, None, False))  # the run ended within its `after`
                continue
            if check.for_s is not None and i in self._judged_window:
                worst = self._worst.get(i)
                out.append(Verdict(check, worst, True))
                continue
            found = (end.minus(start) if start is not None and check.after_s else end).value(check)
            if found is not None and i in self._worst:
                found = _worse(check, self._worst[i], found)
            out.append(Verdict(check, found, found is not None and check.passes(found)))
        return out


def judge_end(checks: Iterable[Check], end: Figures) -> list[Verdict]:
    """Checks judged on a run's end figures alone (no live snapshots): ``merge --check``."""
    verdicts = []
    for check in checks:
        value = end.value(check)
        verdicts.append(Verdict(check, value, value is not None and check.passes(value)))
    return verdicts


def combine(
    checks: Sequence[Check], merged: Figures, shard_checks: Sequence[Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """The checks block of a merged run. A check the shards judged over their own time line
    (``for``, ``after``, ``abort``) fails when any shard's failed, with the worst shard's value;
    the others are judged again on the merged figures (counters summed, histograms merged),
    which is the point: a p99 of the whole run, not an average of the shards' p99s."""
    by_text: dict[str, list[Mapping[str, Any]]] = {}
    for entries in shard_checks:
        for entry in entries:
            by_text.setdefault(str(entry.get("expression")), []).append(entry)
    wanted: list[Check] = list(checks)
    known = {c.text for c in wanted}
    for text in by_text:
        if text not in known:
            wanted.append(parse_check(text, "a shard's check"))
            known.add(text)
    out: list[dict[str, Any]] = []
    for check in wanted:
        if check.live or check.after_s:
            entries = by_text.get(check.text, [])
            values = [float(e["value"]) for e in entries if e.get("value") is not None]
            worst: float | None = None
            for v in values:
                worst = v if worst is None else _worse(check, worst, v)
            ok = bool(entries) and all(e.get("ok") for e in entries) and len(entries) == len(shard_checks)
            out.append(Verdict(check, worst, ok).to_dict() | {"shards_judged": len(entries)})
        else:
            out.extend(v.to_dict() for v in judge_end([check], merged))
    return out
