"""The check expression: ``METRIC[{stream=NAME}] OP VALUE [for D] [after D] [abort]``.

Examples: ``throttled_ratio<1%``, ``put_latency_p99{stream=loadgen-events}<250ms``,
``accepted_ratio>0.9 for 3s abort``, ``achieved_rate_ratio>=0.95 after 30s``.

- METRIC is one of ``METRICS`` (one line lists them when it is not); without ``{stream=...}``
  it is computed over every stream of the run (counters summed, histograms merged).
- VALUE is a number; a latency also takes a duration (``250ms``, ``2s``), a ratio a percentage
  (``1%``).
- ``for D``: judged live, over a window sliding along the run: the check fails as soon as the
  figures of the last D seconds break it. Without ``for``, it is judged once on the whole run.
- ``after D``: the first D seconds (the ramp) do not count.
- ``abort``: a failure stops the run at once, through the normal drain, with the check named.

Parsing is pure; a problem is a UsageError of one line (exit 2).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from producer.durations import parse_duration
from producer.errors import UsageError


class Unit(StrEnum):
    RATIO = "ratio"  # 0..1; VALUE may be a percentage
    SECONDS = "seconds"  # VALUE may be a duration
    COUNT = "count"
    USD = "usd"


@dataclass(frozen=True, slots=True)
class Metric:
    unit: Unit
    doc: str
    live: bool = True  # can be judged during the run (``for``, ``abort``)


METRICS: dict[str, Metric] = {
    "accepted_ratio": Metric(Unit.RATIO, "accepted / sent records"),
    "dead_lettered_ratio": Metric(Unit.RATIO, "dead-lettered / sent records"),
    "dead_lettered": Metric(Unit.COUNT, "records dead-lettered"),
    "throttled_ratio": Metric(Unit.RATIO, "throttled / record attempts (accepted + failed)"),
    "failed_call_ratio": Metric(Unit.RATIO, "failed / PutRecordBatch calls"),
    "possible_duplicates": Metric(Unit.COUNT, "records resent after a call that may have landed"),
    "achieved_rate_ratio": Metric(Unit.RATIO, "accepted records / the records the schedule asked for"),
    "shortfall": Metric(Unit.RATIO, "events not generated on time / events asked for", live=False),
    "rate_cuts": Metric(Unit.COUNT, "times the adaptive rate limit was cut"),
    "cost_per_hour": Metric(Unit.USD, "the achieved rate's Firehose cost for an hour (USD)", live=False),
    **{
        f"put_latency_{p}": Metric(Unit.SECONDS, f"PutRecordBatch call latency, {p}")
        for p in ("p50", "p90", "p99", "max")
    },
    **{
        f"ack_latency_{p}": Metric(Unit.SECONDS, f"a record's time from offer to acceptance, {p}")
        for p in ("p50", "p90", "p99", "max")
    },
}
# Metrics about dead letters: a check on one replaces the built-in "any dead letter is exit 1".
DEAD_LETTER_METRICS = frozenset({"dead_lettered_ratio", "dead_lettered"})

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}

_HEAD = re.compile(
    r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:\{\s*stream\s*=\s*(?P<stream>[^}\s]+)\s*\})?\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[^\s]+)(?P<rest>.*)"
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
GRAMMAR = "METRIC[{stream=NAME}] OP VALUE [for D] [after D] [abort]"


@dataclass(frozen=True, slots=True)
class Check:
    text: str  # as the user wrote it (whitespace trimmed): how the summary and errors name it
    metric: str
    op: str
    threshold: float
    stream: str | None = None
    for_s: float | None = None
    after_s: float = 0.0
    abort: bool = False

    def passes(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    @property
    def live(self) -> bool:
        """Judged during the run: a sliding window, or an abort."""
        return self.for_s is not None or self.abort


def metric_names() -> str:
    return ", ".join(METRICS)


def parse_check(text: str, option: str = "--check") -> Check:
    """One expression; UsageError naming what is wrong (and the metrics, for a bad name)."""
    shown = text.strip()
    head = _HEAD.fullmatch(text)
    if head is None:
        raise UsageError(f"{option} {shown!r}: not a check; write {GRAMMAR}, e.g. 'throttled_ratio<1%'")
    name = head["metric"]
    metric = METRICS.get(name)
    if metric is None:
        raise UsageError(f"{option} {shown!r}: unknown metric {name!r}; metrics: {metric_names()}")
    threshold = _value(head["value"], metric.unit, f"{option} {shown!r}")
    for_s, after_s, abort = _tail(head["rest"].split(), f"{option} {shown!r}")
    if (for_s is not None or abort) and not metric.live:
        raise UsageError(
            f"{option} {shown!r}: {name} is known only at the end of the run; drop 'for'/'abort'"
        )
    return Check(shown, name, head["op"], threshold, head["stream"], for_s, after_s, abort)


def parse_checks(texts: Iterable[str], option: str = "--check") -> tuple[Check, ...]:
    return tuple(parse_check(t, option) for t in texts if t.strip())


def _value(text: str, unit: Unit, where: str) -> float:
    if text.endswith("%"):
        if unit is not Unit.RATIO or not _NUMBER.fullmatch(text[:-1]):
            raise UsageError(f"{where}: {text!r}: a percentage fits only a *_ratio metric or shortfall")
        return float(text[:-1]) / 100.0
    if _NUMBER.fullmatch(text):
        return float(text)
    if unit is Unit.SECONDS:
        try:
            return parse_duration(text)
        except ValueError:
            pass
    hint = {
        Unit.SECONDS: "a number of seconds or a duration such as 250ms or 2s",
        Unit.RATIO: "a number such as 0.01 or a percentage such as 1%",
        Unit.COUNT: "a number",
        Unit.USD: "a number of US dollars",
    }[unit]
    raise UsageError(f"{where}: {text!r} is not a value; use {hint}")


def _tail(words: list[str], where: str) -> tuple[float | None, float, bool]:
    for_s: float | None = None
    after_s = 0.0
    abort = False
    seen: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i].lower()
        if word in seen:
            raise UsageError(f"{where}: {word!r} given twice")
        seen.add(word)
        if word == "abort":
            abort = True
            i += 1
            continue
        if word not in ("for", "after"):
            raise UsageError(f"{where}: unexpected {words[i]!r}; after VALUE come [for D] [after D] [abort]")
        if i + 1 >= len(words):
            raise UsageError(f"{where}: {word!r} needs a duration, e.g. '{word} 10s'")
        try:
            seconds = parse_duration(words[i + 1])
        except ValueError as exc:
            raise UsageError(f"{where}: {word}: {exc}") from None
        if word == "for":
            if seconds <= 0:
                raise UsageError(f"{where}: 'for' needs a window longer than 0s")
            for_s = seconds
        else:
            after_s = seconds
        i += 2
    return for_s, after_s, abort
