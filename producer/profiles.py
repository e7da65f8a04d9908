"""Profile files: find them by name or path, load and check them, with errors that name the file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from producer.durations import parse_duration
from producer.errors import UsageError
from producer.events import GENERATORS
from producer.schedule import RateShape, constant


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    mix: dict[str, float]
    rate: float
    rate_shape: RateShape
    duration_s: float
    path: Path


def profile_dirs() -> list[Path]:
    """Where shipped profiles live: the source tree's ``profiles/``, or the installed copy."""
    here = Path(__file__).resolve().parent.parent / "profiles"
    installed = Path(sys.prefix) / "share" / "firehose-loadgen" / "profiles"
    return [d for d in (here, installed) if d.is_dir()]


def shipped_profiles() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in reversed(profile_dirs()):
        for path in sorted(directory.glob("*.yaml")):
            found[path.stem] = path
    return found


def resolve_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise UsageError(f"profile file {name_or_path} does not exist")
        return load_profile(path)
    shipped = shipped_profiles()
    if name_or_path not in shipped:
        names = ", ".join(sorted(shipped)) or "none found"
        raise UsageError(f"unknown profile {name_or_path!r}; choose one of: {names}, or pass a .yaml file")
    return load_profile(shipped[name_or_path])


def load_profile(path: Path) -> Profile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: a profile must be a mapping of fields")
    return _parse(raw, path)


def _fail(path: Path, field: str, problem: str) -> UsageError:
    return UsageError(f"{path}: {field}: {problem}")


def _parse(raw: dict[str, Any], path: Path) -> Profile:
    allowed = {"name", "description", "mix", "rate", "duration"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _fail(path, unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")
    mix = raw.get("mix")
    if not isinstance(mix, dict) or not mix:
        raise _fail(path, "mix", "must map generator names to weights, e.g. {web: 1}")
    for name, weight in mix.items():
        if name not in GENERATORS:
            raise _fail(path, f"mix.{name}", f"unknown generator; choose from {', '.join(GENERATORS)}")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            raise _fail(path, f"mix.{name}", "weight must be a number >= 0")
    if sum(mix.values()) <= 0:
        raise _fail(path, "mix", "weights must add up to more than 0")
    rate_spec = raw.get("rate", {"shape": "constant", "rate": 100})
    if not isinstance(rate_spec, dict) or rate_spec.get("shape", "constant") != "constant":
        raise _fail(path, "rate", "must be {shape: constant, rate: N}")
    rate = rate_spec.get("rate")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
        raise _fail(path, "rate.rate", "must be a number of events per second > 0")
    try:
        duration_s = parse_duration(str(raw.get("duration", "30s")))
    except ValueError as exc:
        raise _fail(path, "duration", str(exc)) from None
    return Profile(
        name=str(raw.get("name", path.stem)),
        description=str(raw.get("description", "")),
        mix={str(k): float(v) for k, v in mix.items()},
        rate=float(rate),
        rate_shape=constant(float(rate)),
        duration_s=duration_s,
        path=path,
    )
