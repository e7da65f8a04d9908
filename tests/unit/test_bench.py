"""The benchmark's arithmetic: one-second windows on the producer's clock, RSS growth, the table."""

from __future__ import annotations

import math

import pytest

from producer.bench.trials import MEDIANS, Scrape, elapsed, rss_growth, window_rates
from producer.cli.bench import _print_table


def _scrape(at: float, clock: float | None, events: float) -> Scrape:
    return Scrape(at=at, clock=clock, accepted=2 * events, events=events, cpu_s=0.0, rss_mb=100.0)


def test_windows_use_the_producers_clock_not_when_the_scrape_arrived() -> None:
    # The producer read its counters exactly 1 s apart at 50,000 events/s; the answers arrived
    # 0.95 s, then 1.05 s apart (a busy loop answered the second one late).
    scrapes = [_scrape(0.0, 10.0, 0), _scrape(0.95, 11.0, 50_000), _scrape(2.0, 12.0, 100_000)]
    assert window_rates(scrapes) == [50_000, 50_000]
    assert elapsed(scrapes[0], scrapes[-1]) == 2.0


def test_windows_fall_back_to_the_scrape_time_without_the_gauge() -> None:
    scrapes = [_scrape(0.0, None, 0), _scrape(0.8, None, 40_000), _scrape(2.0, 12.0, 100_000)]
    assert window_rates(scrapes) == [50_000, 50_000]  # the second pair lacks one clock too
    assert window_rates(scrapes[:1]) == []


def test_rss_growth_compares_the_last_tenth_with_the_first() -> None:
    assert rss_growth([100.0] * 30) == 0.0
    # 20 samples: the first two and the last two, medians 100 and 110; a spike in between
    # does not count.
    samples = [100.0, 100.0, *[300.0] * 16, 110.0, 110.0]
    assert rss_growth(samples) == pytest.approx(0.10)
    # Medians: one odd sample in a tenth does not decide it.
    assert rss_growth([100.0, 100.0, 500.0, *[120.0] * 27, 90.0, 90.0, 200.0]) == pytest.approx(-0.1)
    assert rss_growth([80.0, 88.0]) == pytest.approx(0.1)  # fewer than 10: one sample each end
    assert math.isnan(rss_growth([]))


def test_table_prints_every_row_and_both_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    medians = {kind: dict.fromkeys(MEDIANS, 1.0) for kind in ("loadgen", "reference", "stock-client")}
    medians["loadgen"]["rss_growth"] = 0.034
    result = {"medians": medians, "ratio_events_per_s": 4.2, "ratio_vs_stock_client_events_per_s": 1.5}
    _print_table(result)
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["median", "of", "trials", "loadgen", "reference", "stock-client"]
    assert "RSS growth over window" in out and "+3.4%" in out
    assert "firehose-loadgen / reference, events/s: 4.20x" in out
    assert "firehose-loadgen / stock-client, events/s: 1.50x" in out
