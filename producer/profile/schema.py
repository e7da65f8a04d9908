"""The profile file format as pydantic models: one place that says what a field may hold.

pydantic (already a pinned dependency of the tool chain) is used at run time because it
reports *every* problem with its location and the allowed values, which a hand-written
checker only approximates; profiles.py turns its errors into one line per problem.
Strict mode: ``rate: "200"`` is a wrong type, not silently a number.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from producer.durations import parse_duration

GeneratorName = Literal["web", "mobile", "iot"]
MalformedKindName = Literal["not_json", "string_amount", "missing_fields"]
SHAPE_NAMES = ("constant", "ramp", "step", "spike", "sine", "diurnal", "stages")


def _number_check(text: str, ok: Any) -> Any:
    def check(value: float) -> float:
        if math.isnan(value) or math.isinf(value) or not ok(value):
            raise ValueError(text)
        return value

    return check


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return value  # numbers are seconds; anything else fails the float check after this


EventsPerS = Annotated[
    float, AfterValidator(_number_check("must be a number of events per second >= 0", lambda v: v >= 0))
]
PositiveEventsPerS = Annotated[
    float, AfterValidator(_number_check("must be a number of events per second > 0", lambda v: v > 0))
]
Seconds = Annotated[
    float,
    BeforeValidator(_duration),
    AfterValidator(_number_check("must be a duration > 0 (30s, 10m, 1h)", lambda v: v > 0)),
]


def _run_duration(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "forever":
        return math.inf  # until stopped
    return _duration(value)


def _run_seconds_check(value: float) -> float:
    if math.isnan(value) or not value > 0 or (math.isinf(value) and value != math.inf):
        raise ValueError("must be a duration > 0 (30s, 10m, 1h) or forever")
    return value


RunSeconds = Annotated[float, BeforeValidator(_run_duration), AfterValidator(_run_seconds_check)]
StartSeconds = Annotated[
    float,
    BeforeValidator(_duration),
    AfterValidator(_number_check("must be a duration >= 0 (0s, 30s, 10m)", lambda v: v >= 0)),
]
Share = Annotated[
    float, AfterValidator(_number_check("must be a share between 0 and 1", lambda v: 0 <= v <= 1))
]
Weight = Annotated[float, AfterValidator(_number_check("weight must be a number >= 0", lambda v: v >= 0))]
NonNegative = Annotated[float, AfterValidator(_number_check("must be a number >= 0", lambda v: v >= 0))]
Count = Annotated[int, AfterValidator(_number_check("must be a whole number >= 1", lambda v: v >= 1))]
Hour = Annotated[
    float, AfterValidator(_number_check("must be an hour of day, 0 to 24", lambda v: 0 <= v < 24))
]


def _mix_total(mix: dict[str, float]) -> dict[str, float]:
    if sum(mix.values()) <= 0:
        raise ValueError("weights must add up to more than 0, e.g. {web: 1}")
    return mix


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


# ---- rate shapes (see schedule.py for what each means) ----


class ConstantSpec(Strict):
    shape: Literal["constant"]
    rate: PositiveEventsPerS


class RampSpec(Strict):
    shape: Literal["ramp"]
    from_: EventsPerS = Field(alias="from")
    to: EventsPerS
    over: Seconds


class StepLevel(Strict):
    rate: EventsPerS
    for_: Seconds = Field(alias="for")


class StepSpec(Strict):
    shape: Literal["step"]
    stages: list[StepLevel] = Field(min_length=1)


class SpikeSpec(Strict):
    shape: Literal["spike"]
    base: EventsPerS
    peak: PositiveEventsPerS
    at: StartSeconds
    for_: Seconds = Field(alias="for")


class SineSpec(Strict):
    shape: Literal["sine"]
    min: EventsPerS
    max: PositiveEventsPerS
    period: Seconds


class DiurnalSpec(Strict):
    shape: Literal["diurnal"]
    min: EventsPerS
    max: PositiveEventsPerS
    period: Seconds = 86_400.0
    start_hour: Hour = 0.0


class Stage(Strict):
    for_: Seconds = Field(alias="for")
    rate: ShapeSpec


class StagesSpec(Strict):
    shape: Literal["stages"]
    stages: list[Stage] = Field(min_length=1)


def _shorthand_rate(value: Any) -> Any:
    # ``rate: 200`` is the common case; spell it without the mapping.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"shape": "constant", "rate": value}
    return value


ShapeSpec = Annotated[
    ConstantSpec | RampSpec | StepSpec | SpikeSpec | SineSpec | DiurnalSpec | StagesSpec,
    Field(discriminator="shape"),
    BeforeValidator(_shorthand_rate),
]
Stage.model_rebuild()
StagesSpec.model_rebuild()

# ---- generator parameters (defaults live in the generator modules) ----


class WebFunnelSpec(Strict):
    view_to_cart: Share | None = None
    cart_to_checkout: Share | None = None
    checkout_to_purchase: Share | None = None


class WebSpec(Strict):
    active_sessions: Count | None = None
    guest_share: Share | None = None
    funnel: WebFunnelSpec | None = None


class MobileSpec(Strict):
    active_sessions: Count | None = None
    guest_share: Share | None = None
    push_share: Share | None = None
    cart_to_purchase: Share | None = None
    late_share: Share | None = None
    min_late_s: Seconds | None = None
    max_late_s: Seconds | None = None


class IotSpec(Strict):
    fleet_size: Count | None = None
    anomaly_share: Share | None = None
    drift_c: NonNegative | None = None
    mover_share: Share | None = None
    firmware_update_share: Share | None = None


class GeneratorsSpec(Strict):
    web: WebSpec | None = None
    mobile: MobileSpec | None = None
    iot: IotSpec | None = None


class MalformedSpecModel(Strict):
    share: Share = 0.0
    kinds: list[MalformedKindName] = Field(
        default_factory=lambda: list(get_args(MalformedKindName)), min_length=1
    )


class ProfileSpec(Strict):
    """A whole profile file. profiles/README.md documents every field."""

    name: str | None = None
    description: str = ""
    # Built-in generator names or the profile's own (generators: NAME: {kind: ...}); loading.py
    # checks the names once it knows the profile's own.
    mix: Annotated[dict[str, Weight], AfterValidator(_mix_total)]
    generators: GeneratorsSpec = GeneratorsSpec()
    rate: ShapeSpec = ConstantSpec(shape="constant", rate=100)
    duration: RunSeconds = 30.0  # forever: until stopped (run --duration forever)
    format: Literal["json", "csv"] = "json"
    malformed: MalformedSpecModel = MalformedSpecModel()
    routes: dict[str, list[str]] = Field(default_factory=dict)
    # Streams whose events are packed several to a record, with the target record size in bytes
    # (--pack); a stream this run does not send to is ignored, as in routes.
    pack: dict[str, Annotated[int, Field(gt=0, le=1_024_000)]] = Field(default_factory=dict)
    # Pass/fail checks of every run of this profile, as --check takes them (producer/checks/).
    checks: list[str] = Field(default_factory=list)
