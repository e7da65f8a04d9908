"""Profile files: shipped ones load; invalid ones give one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.errors import UsageError
from producer.events.registry import GENERATORS
from producer.profile.loading import (
    GENERATOR_NAMES,
    Profile,
    ProfileError,
    load_profile,
    resolve_profile,
    shipped_profiles,
)

SHIPPED = ["diurnal", "flash-sale", "iot", "mixed", "mobile", "recipe", "soak", "web"]


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert all(p.startswith(f"{path}: ") and "\n" not in p for p in info.value.problems)
    return [p.removeprefix(f"{path}: ") for p in info.value.problems]


def test_the_schema_knows_every_generator() -> None:
    assert set(GENERATOR_NAMES) == set(GENERATORS)


def test_every_shipped_profile_loads_and_is_named_after_its_file() -> None:
    assert sorted(shipped_profiles()) == SHIPPED
    for name in SHIPPED:
        profile = resolve_profile(name)
        assert profile.name == name and profile.description
        assert profile.rate > 0 and profile.duration_s > 0
        assert profile.rate == pytest.approx(profile.rate_shape.peak)
        own = profile.generator_params.templates
        assert set(profile.mix) <= {*GENERATORS, *own} and sum(profile.mix.values()) > 0


def test_shipped_profiles_have_the_promised_shapes() -> None:
    assert resolve_profile("flash-sale").rate_shape.text.startswith("spike")
    assert resolve_profile("diurnal").rate_shape.text.startswith("diurnal")
    soak = resolve_profile("soak")
    assert soak.duration_s >= 3600 and soak.malformed.share > 0
    mixed = resolve_profile("mixed")
    assert len(mixed.mix) == 3 and mixed.malformed.share == 0 and mixed.routes == {}


def test_a_minimal_profile_gets_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, "mix: {web: 1}\n", "tiny.yaml"))
    assert profile.name == "tiny" and profile.rate == 100 and profile.duration_s == 30
    assert profile.record_format == "json" and profile.malformed.share == 0
    assert profile.generator_params.web.guest_share == 0.3


def test_every_field_is_read(tmp_path: Path) -> None:
    text = """
name: full
description: every field
mix: {web: 2, iot: 1}
generators:
  web: {guest_share: 0.5, active_sessions: 10, funnel: {view_to_cart: 0.25}}
  mobile: {late_share: 0.2, max_late_s: 1h}
  iot: {fleet_size: 50, anomaly_share: 0.05}
rate:
  shape: stages
  stages: [{for: 30s, rate: {shape: ramp, from: 0, to: 400, over: 30s}}, {for: 1m, rate: 400}]
duration: 1m30s
format: csv
malformed: {share: 0.02, kinds: [not_json]}
routes: {realtime-data-stream-opensearch: [web]}
"""
    p: Profile = load_profile(write(tmp_path, text))
    assert p.name == "full" and p.mix == {"web": 2.0, "iot": 1.0}
    assert p.generator_params.web.guest_share == 0.5 and p.generator_params.web.active_sessions == 10
    assert p.generator_params.web.funnel.view_to_cart == 0.25
    assert p.generator_params.web.funnel.checkout_to_purchase == 0.7  # default kept
    assert p.generator_params.mobile.max_late_s == 3600 and p.generator_params.iot.fleet_size == 50
    assert p.rate == 400 and p.rate_shape(15) == pytest.approx(200) and p.rate_shape(50) == 400
    assert p.duration_s == 90 and p.record_format == "csv"
    assert p.malformed.share == 0.02 and p.malformed.kinds == ("not_json",)
    assert p.routes == {"realtime-data-stream-opensearch": ("web",)}
    assert p.resolved()["generators"]["iot"]["fleet_size"] == 50


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mix: {web: 1}\ncolour: red\n", "colour: unknown field; allowed: name, description, mix,"),
        (
            "mix: {web: 1}\nrate: {shape: spike, base: 1, peak: 9, at: 1s, for: 1s, peek: 2}\n",
            "rate.peek: unknown field; allowed: shape, base, peak, at, for",
        ),
        (
            "mix: {web: 1}\ngenerators: {web: {guest_shar: 1}}\n",
            "generators.web.guest_shar: unknown field; allowed: active_sessions, guest_share, funnel",
        ),
        ("mix: {web: yes}\n", "mix.web: should be a valid number, got True"),
        (
            "mix: {web: 1}\nrate: {shape: constant, rate: '200'}\n",
            "rate.rate: should be a valid number, got '200'",
        ),
        ("mix: {web: 1}\nduration: soon\n", "duration: 'soon' is not a duration"),
        (
            "mix: {web: 1}\nrate: {shape: constant, rate: -5}\n",
            "rate.rate: must be a number of events per second > 0",
        ),
        (
            "mix: {web: 1}\nrate: {shape: ramp, from: -1, to: 5, over: 1m}\n",
            "rate.from: must be a number of events per second >= 0",
        ),
        ("mix: {web: -1, iot: 1}\n", "mix.web: weight must be a number >= 0"),
        ("mix: {web: 0, iot: 0}\n", "mix: weights must add up to more than 0"),
        ("mix: {}\n", "mix: weights must add up to more than 0"),
        (
            "mix: {toaster: 1}\n",
            "mix.toaster: unknown generator 'toaster'; allowed: 'web', 'mobile' or 'iot'",
        ),
        (
            "mix: {web: 1}\ngenerators: {fridge: {}}\n",
            # Not a built-in: a generator of the user's own, which needs a kind.
            "generators.fridge: unknown generator; a generator of your own needs `kind: template`",
        ),
        (
            "mix: {web: 1}\nrate: {shape: zigzag}\n",
            "rate.shape: unknown shape 'zigzag'; allowed: constant, ramp, step,",
        ),
        ("mix: {web: 1}\nrate: {rate: 5}\n", "rate.shape: required field missing; allowed: constant,"),
        ("mix: {web: 1}\nformat: xml\n", "format: unknown value 'xml'; allowed: 'json' or 'csv'"),
        ("mix: {web: 1}\nmalformed: {share: 1.5}\n", "malformed.share: must be a share between 0 and 1"),
        ("mix: {web: 1}\nroutes: {s: [web, tv]}\n", "routes.s[1]: unknown generator 'tv'"),
        ("description: no mix\n", "mix: required field missing"),
        (
            "mix: {web: 1}\nrate: {shape: step, stages: [{rate: 5, for: 0s}]}\n",
            "rate.stages[0].for: must be a duration > 0",
        ),
        (
            "mix: {web: 1}\nrate: {shape: ramp, from: 0, to: 0, over: 1m}\n",
            "rate: the shape never rises above 0",
        ),
        ("- just\n- a list\n", "a profile must be a mapping of fields"),
        ("mix: {web: 1\n", "not valid YAML: line 2, column 1:"),
    ],
)
def test_invalid_profile_names_the_field_and_the_allowed_values(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = problems(tmp_path, text)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_listed_and_the_exception_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mix: {web: -1, toaster: 1}\nrate: {shape: constant, rate: 0}\nformat: xml\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert len(info.value.problems) == 4
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{path}: ") and "(and 3 more;" in line
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_unknown_names_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown profile 'nope'; choose one of: diurnal, flash-sale"):
        resolve_profile("nope")
    with pytest.raises(UsageError, match="does not exist"):
        resolve_profile(str(tmp_path / "missing.yaml"))
