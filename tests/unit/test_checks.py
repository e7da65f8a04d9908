"""Check expressions (producer/checks/expr.py), their metrics over figures (figures.py) and the
live judge's sliding windows (judge.py): pure, no run."""

from __future__ import annotations

import pytest

from producer.checks.expr import METRICS, Check, parse_check, parse_checks
from producer.checks.figures import COUNTERS, Figures, StreamFigures
from producer.checks.judge import Judge, combine, judge_end
from producer.errors import UsageError
from producer.results.url import parse_results_url
from producer.summary import RunSummary, StreamSummary
from producer.telemetry.histogram import LogHistogram


def test_a_full_expression_parses() -> None:
    c = parse_check(" put_latency_p99{stream=s3-stream} < 250ms for 10s after 30s abort ")
    assert (c.metric, c.stream, c.op, c.threshold) == ("put_latency_p99", "s3-stream", "<", 0.25)
    assert (c.for_s, c.after_s, c.abort, c.live) == (10.0, 30.0, True, True)
    assert c.text == "put_latency_p99{stream=s3-stream} < 250ms for 10s after 30s abort"


@pytest.mark.parametrize(
    ("text", "threshold"),
    [("throttled_ratio<1%", 0.01), ("accepted_ratio>=0.995", 0.995), ("rate_cuts==0", 0.0)],
)
def test_values(text: str, threshold: float) -> None:
    assert parse_check(text).threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("throughput>5", "unknown metric 'throughput'; metrics: accepted_ratio, "),
        ("accepted_ratio", "not a check; write METRIC[{stream=NAME}] OP VALUE"),
        ("accepted_ratio>>1", "is not a value"),
        ("put_latency_p99<5%", "a percentage fits only a *_ratio metric"),
        ("accepted_ratio>fast", "is not a value; use a number such as 0.01 or a percentage"),
        ("accepted_ratio>0.9 for", "'for' needs a duration"),
        ("accepted_ratio>0.9 for 3x", "for: '3x' is not a duration"),
        ("accepted_ratio>0.9 for 0s", "'for' needs a window longer than 0s"),
        ("accepted_ratio>0.9 during 3s", "unexpected 'during'"),
        ("accepted_ratio>0.9 abort abort", "'abort' given twice"),
        ("shortfall<1% for 5s", "shortfall is known only at the end of the run"),
    ],
)
def test_bad_expressions_say_what_is_wrong_in_one_line(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_check(text)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_metric_is_listed_in_the_error() -> None:
    with pytest.raises(UsageError) as caught:
        parse_check("nope<1")
    assert all(name in str(caught.value) for name in METRICS)


def _stream(latencies: list[float] = (), **counts: int) -> StreamFigures:  # type: ignore[assignment]
    put, ack = LogHistogram(), LogHistogram()
    for v in latencies:
        put.observe(v)
        ack.observe(v * 10)
    return StreamFigures({k: counts.get(k, 0) for k in COUNTERS}, put, ack)


def _figures(at_s: float, asked: float = 0.0, **streams: StreamFigures) -> Figures:
    return Figures(at_s=at_s, asked=asked, streams=streams)


def test_metrics_over_every_stream_or_one() -> None:
    f = _figures(
        10,
        asked=100,
        a=_stream(
            [0.1] * 99 + [2.0], sent=100, accepted=90, dead_lettered=10, requests=10, failed_requests=1
        ),
        b=_stream(sent=100, accepted=100, throttled_records=50, failed_record_attempts=50, requests=4),
    )
    assert f.value(parse_check("accepted_ratio>0")) == pytest.approx(190 / 200)
    assert f.value(parse_check("accepted_ratio{stream=a}>0")) == pytest.approx(0.9)
    assert f.value(parse_check("dead_lettered_ratio<1")) == pytest.approx(10 / 200)
    assert f.value(parse_check("throttled_ratio{stream=b}<1")) == pytest.approx(50 / 150)
    assert f.value(parse_check("failed_call_ratio<1")) == pytest.approx(1 / 14)
    assert f.value(parse_check("achieved_rate_ratio{stream=b}>0")) == pytest.approx(1.0)
    assert f.value(parse_check("achieved_rate_ratio>0")) == pytest.approx(190 / 200)
    p99 = f.value(parse_check("put_latency_p99<1"))
    assert p99 is not None and abs(p99 - 0.1) <= 0.01 * 0.1
    assert f.value(parse_check("put_latency_max<1")) == 2.0
    ack = f.value(parse_check("ack_latency_p50<1"))
    assert ack is not None and abs(ack - 1.0) <= 0.01
    assert f.value(parse_check("ack_latency_p50{stream=b}<1")) is None  # nothing observed


def test_every_metric_reads_the_books() -> None:
    # The counters come from telemetry/stats.Books (one table): a renamed counter fails here.
    f = _figures(10, asked=10, a=_stream([0.1], sent=10, accepted=10, requests=1))
    f = Figures(f.at_s, f.asked, f.streams, shortfall=0.0, cost_per_hour=0.01)
    for name in METRICS:
        assert f.value(parse_check(f"{name}>=0")) is not None, name


def _run_of(judge: Judge, series: list[tuple[float, int, int]]) -> list[Check | None]:
    fired: list[Check | None] = []
    for at_s, sent, accepted in series:
        fired.append(judge.observe(_figures(at_s, s=_stream(sent=sent, accepted=accepted))))
    return fired


def test_a_for_window_fails_on_the_last_d_seconds_only() -> None:
    # 100 records/s, all accepted for 5 s, then nothing accepted: the cumulative ratio stays
    # above 0.9 for a while, the 2-second window falls below at once.
    series = [(t / 2, 50 * t, 50 * t) for t in range(11)]
    series += [(5 + t / 2, 500 + 50 * t, 500) for t in range(1, 7)]
    judge = Judge(parse_checks(["accepted_ratio>0.9 for 2s abort", "accepted_ratio>0.5"]))
    fired = _run_of(judge, series)
    first = next(i for i, f in enumerate(fired) if f is not None)
    assert series[first][0] == 5.5  # the first window holding a refused record: 0.75 accepted
    end = _figures(8, s=_stream(sent=800, accepted=500))
    verdicts = {v.check.text: v for v in judge.verdicts(end)}
    window = verdicts["accepted_ratio>0.9 for 2s abort"]
    assert not window.ok and window.value == pytest.approx(0.75) and window.failed_at_s == 5.5
    whole = verdicts["accepted_ratio>0.5"]
    assert whole.ok and whole.value == pytest.approx(500 / 800)


def test_after_skips_the_ramp_and_a_steady_run_passes() -> None:
    # Nothing accepted in the first 2 s (a ramp), all of it afterwards.
    series = [(t / 2, 50 * t, max(0, 50 * t - 200)) for t in range(13)]
    judge = Judge(parse_checks(["accepted_ratio>0.9 for 1s after 2s abort"]))
    assert all(f is None for f in _run_of(judge, series))
    (v,) = judge.verdicts(_figures(6, s=_stream(sent=600, accepted=400)))
    assert v.ok and v.value == pytest.approx(1.0)
    failing = Judge(parse_checks(["accepted_ratio>0.9 for 1s abort"]))
    assert any(f is not None for f in _run_of(failing, series))


def test_a_long_window_keeps_few_snapshots_and_still_spans_its_length() -> None:
    judge = Judge(parse_checks(["accepted_ratio>0.5 for 600s"]))
    # 100 records/s, all accepted until 1200s, then none: the 600s window's ratio is
    # (1800 - t) / 600 from then on, and first breaks 0.5 at t = 1500s.
    series = [(t / 2, 50 * t, 50 * min(t, 2400)) for t in range(2 * 1600)]
    _run_of(judge, series)
    assert len(judge._history) <= 125  # not 1,200: one kept per 5s (600s / 120)
    (v,) = judge.verdicts(_figures(1600, s=_stream(sent=160_000, accepted=120_000)))
    assert not v.ok and v.failed_at_s is not None and v.value is not None
    # A thinned window starts up to one kept step (5s) early: it fails a little late, never early.
    assert 1500 <= v.failed_at_s <= 1505 and 0.49 <= v.value <= 0.5


def test_a_run_shorter_than_its_window_is_judged_on_the_whole_run() -> None:
    judge = Judge(parse_checks(["accepted_ratio>0.9 for 60s"]))
    _run_of(judge, [(0.5, 50, 50), (1.0, 100, 20)])
    (v,) = judge.verdicts(_figures(1.0, s=_stream(sent=100, accepted=20)))
    assert not v.ok and v.value == pytest.approx(0.2)


def test_a_run_that_sent_nothing_fails_its_checks() -> None:
    (v,) = judge_end(parse_checks(["accepted_ratio>0.9"]), _figures(1.0, s=_stream()))
    assert v.value is None and not v.ok


def _summary(checks: list[dict[str, object]] | None, dead: int = 0) -> RunSummary:
    return RunSummary(
        kind="run",
        target="local",
        duration_s=1.0,
        streams={"s": StreamSummary(sent=10, accepted=10 - dead, dead_lettered=dead)},
        checks=checks,
    )


def test_exit_codes_with_checks() -> None:
    assert _summary(None, dead=1).exit_code() == 1
    failing = [{"expression": "throttled_ratio<0.01", "metric": "throttled_ratio", "value": 0.2, "ok": False}]
    assert _summary(failing).exit_code() == 5
    tolerant = [{"expression": "dead_lettered_ratio<20%", "metric": "dead_lettered_ratio", "ok": True}]
    assert _summary(tolerant, dead=1).exit_code() == 0  # the dead-letter check replaces "any is 1"
    other = [{"expression": "throttled_ratio<1%", "metric": "throttled_ratio", "ok": True}]
    assert _summary(other, dead=1).exit_code() == 1
    lost = _summary(tolerant)
    lost.streams["s"] = StreamSummary(sent=10, accepted=5, lost=5)
    assert lost.exit_code() == 4  # loss is never overridden


def test_combine_rejudges_plain_checks_on_merged_figures_and_takes_the_worst_window() -> None:
    merged = _figures(1.0, s=_stream([0.01] * 98 + [1.0, 1.0], sent=100, accepted=100))
    shard_checks = [
        [{"expression": "accepted_ratio>0.9 for 5s", "value": 0.95, "ok": True}],
        [{"expression": "accepted_ratio>0.9 for 5s", "value": 0.5, "ok": False}],
    ]
    out = combine(parse_checks(["put_latency_p99<500ms"]), merged, shard_checks)
    by = {c["expression"]: c for c in out}
    p99 = by["put_latency_p99<500ms"]
    assert p99["ok"] is False and abs(p99["value"] - 1.0) <= 0.01 + 1e-9  # the stated 1%
    assert by["accepted_ratio>0.9 for 5s"] == {
        "expression": "accepted_ratio>0.9 for 5s",
        "metric": "accepted_ratio",
        "value": 0.5,
        "ok": False,
        "shards_judged": 2,
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("http://x/y", "use file://DIR or s3://BUCKET/PREFIX"),
        ("file://", "name a folder"),
        ("s3://No_Such/prefix", "is not an S3 bucket name"),
        ("s3://", "is not an S3 bucket name"),
    ],
)
def test_bad_results_urls(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_results_url(text)
    assert says in str(caught.value)


def test_results_urls() -> None:
    s3 = parse_results_url("s3://my-bucket/ci/runs/")
    assert (s3.scheme, s3.root, s3.prefix) == ("s3", "my-bucket", "ci/runs/")
    f = parse_results_url("file:///tmp/x")
    assert (f.scheme, f.root) == ("file", "/tmp/x")
