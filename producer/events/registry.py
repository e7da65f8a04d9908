"""Named generators and the weighted mix of them."""

from __future__ import annotations

import random
from collections.abc import Callable

from producer.events.base import Event, EventGenerator
from producer.events.catalog import Product, build_catalog
from producer.events.iot import IotGenerator
from producer.events.mobile import MobileGenerator
from producer.events.pools import Pools, build_pools
from producer.events.web import WebGenerator

Factory = Callable[[random.Random, Pools, list[Product]], EventGenerator]
GENERATORS: dict[str, Factory] = {
    "web": WebGenerator,
    "mobile": MobileGenerator,
    "iot": IotGenerator,
}


class Mix:
    """Draws each event from one of several generators by weight."""

    source = "mix"

    def __init__(self, rng: random.Random, parts: list[tuple[EventGenerator, float]]) -> None:
        self._rng = rng
        self._generators = [g for g, _ in parts]
        total = sum(w for _, w in parts)
        acc, self._cumulative = 0.0, []
        for _, w in parts:
            acc += w / total
            self._cumulative.append(acc)

    def next_event(self, now: float) -> Event:
        roll = self._rng.random()
        for gen, edge in zip(self._generators, self._cumulative, strict=True):
            if roll < edge:
                return gen.next_event(now)
        return self._generators[-1].next_event(now)


def build_generator(weights: dict[str, float], seed: int | None) -> EventGenerator:
    """A generator for ``{"web": 0.5, ...}``; one seed drives every part."""
    rng = random.Random(seed)
    pools = build_pools(random.Random(rng.getrandbits(64)))
    catalog = build_catalog(random.Random(rng.getrandbits(64)))
    parts = [
        (GENERATORS[name](random.Random(rng.getrandbits(64)), pools, catalog), w)
        for name, w in weights.items()
        if w > 0
    ]
    if len(parts) == 1:
        return parts[0][0]
    return Mix(random.Random(rng.getrandbits(64)), parts)
