"""Event generators: pure functions of a seeded RNG and a timestamp; no I/O, no timing."""

from producer.events.base import CORE_FIELDS, PURCHASE_TYPES, Event, EventGenerator
from producer.events.registry import GENERATORS, GeneratorParams, build_generator

__all__ = [
    "CORE_FIELDS",
    "GENERATORS",
    "PURCHASE_TYPES",
    "Event",
    "EventGenerator",
    "GeneratorParams",
    "build_generator",
]
