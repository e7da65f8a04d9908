"""Event generators: pure functions of a seeded RNG and a timestamp; no I/O, no timing."""

from producer.events.base import Event, EventGenerator
from producer.events.registry import GENERATORS, build_generator

__all__ = ["GENERATORS", "Event", "EventGenerator", "build_generator"]
