"""Profile files: find them by name or path, load and check them, with errors that name the
file, the field and the allowed values (one line per problem)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from producer import schedule
from producer.checks.expr import parse_check
from producer.encoding import MalformedSpec, RecordFormat
from producer.errors import UsageError
from producer.events.iot import IotParams
from producer.events.mobile import MobileParams
from producer.events.registry import GeneratorParams
from producer.events.web import WebFunnel, WebParams
from producer.profile.schema import (
    SHAPE_NAMES,
    ConstantSpec,
    DiurnalSpec,
    GeneratorName,
    GeneratorsSpec,
    ProfileSpec,
    RampSpec,
    SineSpec,
    SpikeSpec,
    StagesSpec,
    StepSpec,
)
from producer.schedule import RateShape
from producer.shipped import shipped_roots
from producer.templates.fakerpools import TemplateError
from producer.templates.user import UserGenerator, declared
from producer.templates.user import build as build_user

GENERATOR_NAMES: tuple[str, ...] = get_args(GeneratorName)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    mix: dict[str, float]
    rate: float  # nominal rate: the shape's peak; ``--rate`` rescales the shape to it
    rate_shape: RateShape
    duration_s: float
    path: Path
    generator_params: GeneratorParams = dataclasses.field(default_factory=GeneratorParams)
    record_format: RecordFormat = "json"
    malformed: MalformedSpec = dataclasses.field(default_factory=MalformedSpec)
    routes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    pack: dict[str, int] = dataclasses.field(default_factory=dict)  # stream: target record bytes
    checks: tuple[str, ...] = ()  # as --check takes them; parsed by the run

    @property
    def text_sources(self) -> tuple[str, ...]:
        """Generators in the mix whose records are text, not JSON (KDG CSV or free-form lines)."""
        return tuple(
            name
            for name, user in self.generator_params.templates.items()
            if name in self.mix and user.text_records
        )

    def _generators(self) -> dict[str, Any]:
        """Built-in generators' parameters, then the profile's own generators as written."""
        built_in = dataclasses.asdict(self.generator_params)
        own = built_in.pop("templates")
        return built_in | {name: dict(user["spec"]) for name, user in own.items()}

    def resolved(self) -> dict[str, Any]:
        """Every setting, defaults filled in, as plain data (``profiles show``)."""
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path),
            "mix": self.mix,
            "generators": self._generators(),
            "rate": {"shape": self.rate_shape.text, "peak_events_per_s": self.rate},
            "duration_s": self.duration_s,
            "format": self.record_format,
            "malformed": {"share": self.malformed.share, "kinds": list(self.malformed.kinds)},
            "routes": {k: list(v) for k, v in self.routes.items()} or "every event to every stream",
            "pack": self.pack or "no stream",
            "checks": list(self.checks),
        }


class ProfileError(UsageError):
    """A profile file with problems; ``str()`` is the first, ``problems`` has them all."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = len(problems) - 1
        suffix = f" (and {more} more; see `firehose-loadgen profiles validate`)" if more else ""
        super().__init__(problems[0] + suffix)


def profile_dirs() -> list[Path]:
    """Where shipped profiles live: the source tree's ``profiles/``, or the installed copy."""
    return [root / "profiles" for root in shipped_roots() if (root / "profiles").is_dir()]


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
    """The profile in ``path``; raises ProfileError listing every problem found."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError([f"{path}: not valid YAML: {_yaml_problem(exc)}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError([f"{path}: cannot read: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ProfileError([f"{path}: a profile must be a mapping of fields, e.g. `mix: {{web: 1}}`"])
    raw, users, problems = _split_generators(raw)
    try:
        spec = ProfileSpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(describe_errors(exc))
        spec = None
    problems.extend(_check_names(raw, users))
    if problems:
        raise ProfileError([f"{path}: {line}" for line in problems])
    assert spec is not None
    for user in users.values():
        try:
            build_user(user, 0, check=True)
        except TemplateError as exc:
            raise ProfileError([f"{path}: {exc}"]) from None
    if spec.format == "csv":
        json_users = [u.name for u in users.values() if u.name in spec.mix and not u.text_records]
        if json_users:
            raise ProfileError(
                [
                    f"{path}: format: csv: generator {json_users[0]!r} makes JSON events (CSV columns are "
                    "the built-in events'); for CSV records give it `kind: kdg` with a CSV template, or use "
                    "format: json"
                ]
            )
    return build_profile(spec, path, users)


def _split_generators(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, UserGenerator], list[str]]:
    """The profile without its own generators (pydantic checks the built-ins' parameters), the
    generators it declares, and the problems with them."""
    generators = raw.get("generators")
    if not isinstance(generators, dict):
        return raw, {}, []
    users: dict[str, UserGenerator] = {}
    problems: list[str] = []
    for name, body in generators.items():
        if name in GENERATOR_NAMES:
            continue
        try:
            users[str(name)] = declared(str(name), body)
        except TemplateError as exc:
            problems.append(str(exc))
    builtin = {k: v for k, v in generators.items() if k in GENERATOR_NAMES}
    return {**raw, "generators": builtin}, users, problems


def _allowed(users: dict[str, UserGenerator]) -> str:
    names = [repr(n) for n in (*GENERATOR_NAMES, *users)]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _check_names(raw: dict[str, Any], users: dict[str, UserGenerator]) -> list[str]:
    """Generator names in ``mix`` and ``routes`` that are neither built in nor declared."""
    known = {*GENERATOR_NAMES, *users}
    mix = raw.get("mix")
    problems = [
        f"mix.{name}: unknown generator {name!r}; allowed: {_allowed(users)}"
        for name in (mix if isinstance(mix, dict) else {})
        if name not in known
    ]
    routes = raw.get("routes")
    for stream, sources in (routes if isinstance(routes, dict) else {}).items():
        problems.extend(
            f"routes.{stream}[{i}]: unknown generator {name!r}; allowed: {_allowed(users)}"
            for i, name in enumerate(sources if isinstance(sources, list) else [])
            if isinstance(name, str) and name not in known
        )
    return problems


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return (where + problem).replace("\n", " ")


# ---- from the validated document to run objects ----


def build_profile(spec: ProfileSpec, path: Path, users: dict[str, UserGenerator] | None = None) -> Profile:
    shape = build_shape(spec.rate)
    if not shape.peak > 0:
        raise ProfileError([f"{path}: rate: the shape never rises above 0 events per second"])
    problems = []
    for i, text in enumerate(spec.checks):
        try:
            parse_check(text, f"checks.{i}")
        except UsageError as exc:
            problems.append(f"{path}: {exc}")
    if problems:
        raise ProfileError(problems)
    return Profile(
        name=spec.name or path.stem,
        description=spec.description,
        mix={str(k): float(v) for k, v in spec.mix.items()},
        rate=shape.peak,
        rate_shape=shape,
        duration_s=spec.duration,
        path=path,
        generator_params=dataclasses.replace(build_params(spec.generators), templates=dict(users or {})),
        record_format=spec.format,
        malformed=MalformedSpec(share=spec.malformed.share, kinds=tuple(spec.malformed.kinds)),
        routes={stream: tuple(sources) for stream, sources in spec.routes.items()},
        pack=dict(spec.pack),
        checks=tuple(spec.checks),
    )


def build_shape(spec: BaseModel) -> RateShape:
    if isinstance(spec, ConstantSpec):
        return schedule.constant(spec.rate)
    if isinstance(spec, RampSpec):
        return schedule.ramp(spec.from_, spec.to, spec.over)
    if isinstance(spec, StepSpec):
        return schedule.step([(s.rate, s.for_) for s in spec.stages])
    if isinstance(spec, SpikeSpec):
        return schedule.spike(spec.base, spec.peak, spec.at, spec.for_)
    if isinstance(spec, SineSpec):
        return schedule.sine(spec.min, spec.max, spec.period)
    if isinstance(spec, DiurnalSpec):
        return schedule.diurnal(spec.min, spec.max, spec.period, spec.start_hour)
    if isinstance(spec, StagesSpec):
        return schedule.stages([(build_shape(s.rate), s.for_) for s in spec.stages])
    raise TypeError(f"no shape for {type(spec).__name__}")


def _set_fields(spec: BaseModel | None) -> dict[str, Any]:
    if spec is None:
        return {}
    return {k: v for k, v in spec if v is not None and not isinstance(v, BaseModel)}


def build_params(spec: GeneratorsSpec) -> GeneratorParams:
    """Generator parameters: what the profile sets, the generators' defaults for the rest."""
    web = WebParams(**_set_fields(spec.web))
    if spec.web is not None and spec.web.funnel is not None:
        web = dataclasses.replace(web, funnel=WebFunnel(**_set_fields(spec.web.funnel)))
    return GeneratorParams(
        web=web,
        mobile=MobileParams(**_set_fields(spec.mobile)),
        iot=IotParams(**_set_fields(spec.iot)),
    )


# ---- pydantic errors as one line each: field path, problem, allowed values ----


def describe_errors(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        ctx = error.get("ctx", {})
        if kind == "extra_forbidden":
            shown, model = _walk(ProfileSpec, loc[:-1])
            allowed = _field_names(model)
            where = _join([*shown, str(loc[-1])])
            lines.append(f"{where}: unknown field; allowed: {', '.join(allowed)}")
            continue
        shown, _ = _walk(ProfileSpec, loc)
        where = _join(shown)
        if kind == "literal_error":
            expected = str(ctx.get("expected"))
            what = "generator" if all(f"'{g}'" in expected for g in GENERATOR_NAMES) else "value"
            message = f"unknown {what} {error['input']!r}; allowed: {expected}"
        elif kind == "union_tag_invalid":
            where = _join([*shown, "shape"])
            message = f"unknown shape {ctx.get('tag')!r}; allowed: {', '.join(SHAPE_NAMES)}"
        elif kind == "union_tag_not_found":
            where = _join([*shown, "shape"])
            message = f"required field missing; allowed: {', '.join(SHAPE_NAMES)}"
        elif kind == "missing":
            message = "required field missing"
        elif kind == "value_error":
            message = str(error["msg"]).removeprefix("Value error, ")
        elif kind == "model_attributes_type" and shown and shown[-1] == "rate":
            message = f"must be events per second or a mapping with a shape, got {_show(error['input'])}"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"must be a mapping of fields, got {_show(error['input'])}"
        else:
            message = f"{str(error['msg']).lower().removeprefix('input ')}, got {_show(error['input'])}"
        lines.append(f"{where}: {message}" if where else message)
    return lines


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out += part if part.startswith("[") else ("." if out else "") + part
    return out


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_names(tp: Any) -> list[str]:
    if not _is_model(tp):
        return []
    return [info.alias or name for name, info in tp.model_fields.items()]


def _union_members(tp: Any) -> tuple[Any, ...]:
    if get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(_unwrap(a) for a in get_args(tp))
    return ()


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], Any]:
    """The displayed path of ``loc`` (union tags dropped) and the type found at its end."""
    tp: Any = root
    shown: list[str] = []
    for part in loc:
        tp = _unwrap(tp)
        members = _union_members(tp)
        if members:
            tagged = [m for m in members if _is_model(m) and part in _tags(m)]
            if tagged:
                tp = tagged[0]  # a discriminated union's tag: not part of the user's path
                continue
            models = [m for m in members if _is_model(m)]  # ``X | None``
            tp = models[0] if models else None
            tp = _unwrap(tp)
        if part == "[key]":
            continue
        if _is_model(tp):
            fields = {info.alias or name: info for name, info in tp.model_fields.items()}
            shown.append(str(part))
            tp = fields[part].annotation if part in fields else None
        elif get_origin(tp) is dict:
            shown.append(str(part))
            tp = get_args(tp)[1]
        elif get_origin(tp) is list and isinstance(part, int):
            shown.append(f"[{part}]")
            tp = get_args(tp)[0]
        else:
            shown.append(f"[{part}]" if isinstance(part, int) else str(part))
            tp = None
    tp = _unwrap(tp)
    models = [m for m in _union_members(tp) if _is_model(m)]
    return shown, models[0] if len(models) == 1 else tp


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    info = model.model_fields.get("shape")
    return get_args(info.annotation) if info is not None else ()
