"""A user's generator as a profile declares it, and the one place that builds it."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from producer.templates.compiler import TemplateGenerator, compile_template
from producer.templates.fakerpools import TemplateError
from producer.templates.fields import FieldType
from producer.templates.kdg import KdgGenerator, Parsed, compile_kdg

UserKind = Literal["template", "kdg"]
USER_KINDS: tuple[UserKind, ...] = ("template", "kdg")
# A generator's name is the events' ``source``, a metrics label and a routes key.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class UserGenerator:
    name: str
    kind: UserKind
    spec: Mapping[str, Any]

    @property
    def text_records(self) -> bool:
        """True when its records are not JSON (a KDG template of CSV or free-form lines)."""
        if self.kind != "kdg":
            return False
        return not Parsed(str(self.spec.get("template", "")), f"generators.{self.name}.template").is_json

    def generator(self, seed: int | None) -> TemplateGenerator | KdgGenerator:
        """Built for a run (events/registry.py asks for it through ``UserSource``)."""
        return build(self, seed)


def declared(name: str, spec: Any) -> UserGenerator:
    """The generator ``generators.NAME`` declares; TemplateError when it is not one."""
    if not NAME.fullmatch(name):
        raise TemplateError(
            f"generators.{name}: a generator name is a letter, then letters, digits, _ or - (64 at most)"
        )
    if not isinstance(spec, Mapping) or spec.get("kind") not in USER_KINDS:
        raise TemplateError(
            f"generators.{name}: unknown generator; a generator of your own needs `kind: template` "
            "(fields in YAML) or `kind: kdg` (a KDG record template); built-in: web, mobile, iot"
        )
    return UserGenerator(name, spec["kind"], spec)


def user_seed(seed: int | None, name: str) -> int | None:
    """Each user generator's seed, from the run's seed and its name only: adding a generator
    to the mix does not change another's sequence."""
    return None if seed is None else random.Random(f"template-{seed}-{name}").getrandbits(64)


def build(user: UserGenerator, seed: int | None, check: bool = False) -> TemplateGenerator | KdgGenerator:
    if user.kind == "template":
        return compile_template(user.name, user.spec, user_seed(seed, user.name), check)
    return compile_kdg(user.name, user.spec, user_seed(seed, user.name), check)


def field_types(user: UserGenerator) -> dict[str, tuple[FieldType, bool]]:
    """The generator's fields and their types (``profiles schema``); text records have none."""
    if user.text_records:
        raise TemplateError(
            f"generators.{user.name}: its KDG template makes text records, not JSON: a Glue table or JSON "
            "Schema needs JSON records"
        )
    return build(user, 0, check=True).types
