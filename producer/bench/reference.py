"""The "stock-client" reference of `bench --compare`: firehose-loadgen's own generators and
orjson encoding, delivered by the hand-written loop of bench_handwritten.py (batches of 500,
the stock aiobotocore client with its default configuration, a few calls in flight per
stream).

Its events cost what firehose-loadgen's cost, so firehose-loadgen against it measures the
delivery path alone; the hand-written "reference" (Faker pools) measures generation and
delivery together, the comparison issue 10 sets its target on.
"""

from __future__ import annotations

import time

from producer.bench.handwritten import EventSource
from producer.encoding import encode_json_line
from producer.events.registry import build_generator

MIX = {"web": 0.5, "mobile": 0.3, "iot": 0.2}


def loadgen_events(seed: int | None) -> EventSource:
    """The event source bench_handwritten.run_producer sends for kind "stock-client"."""
    generator = build_generator(MIX, seed)

    def next_event() -> tuple[str, bytes]:
        event = generator.next_event(time.time())
        return event["source"], encode_json_line(event)

    return next_event
