"""Named generators, their parameters, and the weighted mix of them."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from producer.events.base import Event, EventGenerator, UserSource
from producer.events.catalog import Catalog, build_catalog
from producer.events.iot import IotGenerator, IotParams
from producer.events.mobile import MobileGenerator, MobileParams
from producer.events.pools import Pools, build_pools
from producer.events.web import WebGenerator, WebParams


@dataclass(frozen=True, slots=True)
class GeneratorParams:
    """Every generator's parameters; a profile overrides some, the rest keep defaults."""

    web: WebParams = field(default_factory=WebParams)
    mobile: MobileParams = field(default_factory=MobileParams)
    iot: IotParams = field(default_factory=IotParams)
    # Generators the profile declares itself (`kind: template` or `kind: kdg`), by name.
    templates: Mapping[str, UserSource] = field(default_factory=dict)


Factory = Callable[[random.Random, Pools, Catalog, GeneratorParams], EventGenerator]
GENERATORS: dict[str, Factory] = {
    "web": lambda rng, pools, catalog, p: WebGenerator(rng, pools, catalog, p.web),
    "mobile": lambda rng, pools, catalog, p: MobileGenerator(rng, pools, catalog, p.mobile),
    "iot": lambda rng, pools, catalog, p: IotGenerator(rng, pools, catalog, p.iot),
}


class Mix:
    """Draws each event from one of several generators by weight."""

    source = "mix"

    # Slots in the lookup table: weights are honoured to 1/4096, and a draw is one
    # getrandbits call and an index instead of a walk over cumulative weights.
    TABLE_BITS = 12

    def __init__(self, rng: random.Random, parts: list[tuple[EventGenerator, float]]) -> None:
        self._bits = rng.getrandbits
        size = 1 << self.TABLE_BITS
        total = sum(w for _, w in parts)
        table: list[Callable[[float], Event]] = []
        acc = 0.0
        for gen, w in parts:
            acc += w / total
            table.extend([gen.next_event] * (round(acc * size) - len(table)))
        table.extend([parts[-1][0].next_event] * (size - len(table)))  # float rounding
        self._table = table

    def next_event(self, now: float) -> Event:
        return self._table[self._bits(self.TABLE_BITS)](now)


def build_generator(
    weights: Mapping[str, float], seed: int | None, params: GeneratorParams | None = None
) -> EventGenerator:
    """A generator for ``{"web": 0.5, ...}``; one seed drives every part.

    Each part gets its own RNG derived from the seed in a fixed order, so adding a weight
    to one generator does not change the others' sequences.
    """
    params = params or GeneratorParams()
    rng = random.Random(seed)
    pools = build_pools(random.Random(rng.getrandbits(64)))
    catalog = build_catalog(random.Random(rng.getrandbits(64)))
    part_seeds = {name: rng.getrandbits(64) for name in GENERATORS}
    parts: list[tuple[EventGenerator, float]] = []
    for name, w in weights.items():
        if w <= 0:
            continue
        if name in GENERATORS:
            parts.append((GENERATORS[name](random.Random(part_seeds[name]), pools, catalog, params), w))
        elif name in params.templates:
            parts.append((params.templates[name].generator(seed), w))
        else:
            raise ValueError(f"unknown generator {name!r}")
    if not parts:
        raise ValueError("at least one generator needs a weight > 0")
    if len(parts) == 1:
        return parts[0][0]
    return Mix(random.Random(rng.getrandbits(64)), parts)


def shared_catalog(seed: int | None) -> Catalog:
    """The catalog ``build_generator`` uses for ``seed`` (tests check amounts against it)."""
    rng = random.Random(seed)
    rng.getrandbits(64)  # the pools' seed comes first
    return build_catalog(random.Random(rng.getrandbits(64)))
