"""Rate shapes are pure functions of elapsed seconds; each factory's docstring Example holds."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from producer import schedule
from producer.schedule import RateShape, constant, diurnal, ramp, scaled, sine, spike, stages, step

FACTORIES: list[Callable[..., RateShape]] = [constant, ramp, spike, sine, diurnal, stages, step, scaled]


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_docstring_example_holds(factory: Callable[..., RateShape]) -> None:
    doc = factory.__doc__ or ""
    examples = re.findall(r"``([^`]+ == [^`]+)``", doc)
    assert examples, f"{factory.__name__} has no ``expr == value`` Example"
    for example in examples:
        assert eval(example, vars(schedule)), example


def test_constant() -> None:
    shape = constant(250)
    assert [shape(t) for t in (0, 1, 1e6)] == [250, 250, 250]
    assert shape.peak == 250


def test_ramp_rises_linearly_then_holds() -> None:
    shape = ramp(100, 500, over_s=40)
    assert shape(0) == 100 and shape(10) == 200 and shape(40) == 500 and shape(400) == 500
    assert shape.peak == 500
    assert ramp(500, 0, 10)(5) == 250 and ramp(500, 0, 10).peak == 500


def test_spike() -> None:
    shape = spike(100, 1000, at_s=60, for_s=30)
    assert [shape(t) for t in (0, 59.99, 60, 89.99, 90)] == [100, 100, 1000, 1000, 100]
    assert shape.peak == 1000


def test_sine_stays_within_its_bounds_and_repeats() -> None:
    shape = sine(50, 150, period_s=20)
    values = [shape(t / 10) for t in range(400)]
    assert min(values) == pytest.approx(50) and max(values) == pytest.approx(150)
    assert shape(3) == pytest.approx(shape(23))


def test_diurnal_is_a_day_with_a_night_trough_and_an_evening_peak() -> None:
    hour = 150.0  # a day in an hour: 24 x 150 s
    shape = diurnal(10, 500, period_s=24 * hour)
    by_hour = [shape(h * hour) for h in range(24)]
    assert min(by_hour) == pytest.approx(10) and by_hour.index(min(by_hour)) == 4
    assert max(by_hour) == pytest.approx(500) and by_hour.index(max(by_hour)) == 20
    assert shape(1.5 * hour) == pytest.approx((by_hour[1] + by_hour[2]) / 2)  # smooth in between
    assert shape(25 * hour) == pytest.approx(by_hour[1])  # the next day repeats
    assert diurnal(10, 500, 24 * hour, start_hour=20)(0) == pytest.approx(500)


def test_stages_compose_shapes_each_on_its_own_clock() -> None:
    shape = stages([(ramp(0, 100, 10), 10), (spike(100, 400, at_s=5, for_s=5), 20), (constant(50), 5)])
    assert shape(5) == 50  # halfway up the ramp
    assert shape(12) == 100 and shape(16) == 400 and shape(21) == 100  # spike 5 s into stage 2
    assert shape(31) == 50 and shape(1000) == 50  # the last stage goes on
    assert shape.peak == 400
    with pytest.raises(ValueError, match="stages needs at least one"):
        stages([])


def test_step() -> None:
    shape = step([(100, 10), (300, 10), (200, 10)])
    assert [shape(t) for t in (0, 9.9, 10, 25, 99)] == [100, 100, 300, 200, 200]
    assert shape.peak == 300


def test_scaled_multiplies_rate_and_peak() -> None:
    shape = scaled(spike(100, 1000, 10, 10), 0.5)
    assert shape(0) == 50 and shape(15) == 500 and shape.peak == 500
    same = constant(7)
    assert scaled(same, 1.0) is same


@pytest.mark.parametrize(
    "shape",
    [constant(5), ramp(0, 9, 3), spike(1, 9, 2, 2), sine(1, 9, 7), diurnal(1, 9, 60), step([(1, 2), (9, 2)])],
)
def test_shapes_are_pure_and_never_negative(shape: RateShape) -> None:
    times = [t / 7 for t in range(500)]
    first = [shape(t) for t in times]
    assert first == [shape(t) for t in reversed(times)][::-1]  # order of calls does not matter
    assert all(0 <= r <= shape.peak + 1e-9 for r in first)
    assert isinstance(shape.text, str) and shape.text
