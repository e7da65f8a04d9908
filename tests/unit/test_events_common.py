"""What every generator promises: the recipe's core fields, types, ids, one catalog, seeds."""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from producer.encoding import encode_json_line
from producer.events.base import CORE_FIELDS, PURCHASE_TYPES, EventIds, Timestamps, Transitions
from producer.events.registry import GENERATORS, build_generator, shared_catalog

NOW = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SOURCES = sorted(GENERATORS)


def events(
    weights: Mapping[str, float], n: int, seed: int | None = 1, now: float = NOW
) -> list[dict[str, Any]]:
    generator = build_generator(weights, seed)
    return [generator.next_event(now + i * 0.001) for i in range(n)]


@pytest.mark.parametrize("source", SOURCES)
def test_core_fields_and_types(source: str) -> None:
    for event in events({source: 1}, 5000):
        for name in CORE_FIELDS:
            assert name in event, (name, event)
            assert isinstance(event[name], str)
        assert event["source"] == source
        assert UUID4.match(event["event_id"]), event["event_id"]
        assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
        parsed = datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert abs(parsed.timestamp() - NOW) < 3600  # late mobile events are minutes old at most
        if event["event_type"] in PURCHASE_TYPES:
            amount = event["amount"]
            assert type(amount) is float and amount > 0
        else:
            assert "amount" not in event
        if "product_id" in event:
            assert isinstance(event["product_id"], str)


@pytest.mark.parametrize("source", SOURCES)
def test_every_event_encodes_as_one_json_line(source: str) -> None:
    for event in events({source: 1}, 500):
        line = encode_json_line(event)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert orjson.loads(line) == event


def test_event_ids_are_unique_in_a_mixed_run() -> None:
    ids = [e["event_id"] for e in events({"web": 1, "mobile": 1, "iot": 1}, 60_000)]
    assert len(set(ids)) == len(ids)


def test_amounts_and_product_ids_come_from_the_one_catalog() -> None:
    catalog = shared_catalog(5).by_id()
    purchases = 0
    for event in events({"web": 1, "mobile": 1, "iot": 1}, 30_000, seed=5):
        if "product_id" in event:
            assert event["product_id"] in catalog
        if "price" in event:
            assert event["price"] == catalog[event["product_id"]].price
        if event["event_type"] in PURCHASE_TYPES:
            purchases += 1
            # A purchase pays for at least the product it names.
            assert event["amount"] >= catalog[event["product_id"]].price - 0.005
    assert purchases > 50


def test_the_same_seed_gives_the_same_sequence() -> None:
    weights = {"web": 0.5, "mobile": 0.3, "iot": 0.2}
    first = events(weights, 3000, seed=42)
    again = events(weights, 3000, seed=42)
    assert first == again


def test_only_timestamps_depend_on_the_clock() -> None:
    def strip(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k not in ("timestamp", "received_at")} for e in batch]

    weights = {"web": 1, "mobile": 1, "iot": 1}
    assert strip(events(weights, 2000, seed=9, now=NOW)) == strip(
        events(weights, 2000, seed=9, now=NOW + 5e5)
    )


def test_different_seeds_differ() -> None:
    weights = {"web": 0.5, "mobile": 0.3, "iot": 0.2}
    a, b = events(weights, 200, seed=1), events(weights, 200, seed=2)
    assert [e["event_id"] for e in a] != [e["event_id"] for e in b]
    assert [e["event_type"] for e in a] != [e["event_type"] for e in b]


def test_no_seed_means_a_fresh_sequence() -> None:
    assert events({"web": 1}, 5, seed=None)[0]["event_id"] != events({"web": 1}, 5, seed=None)[0]["event_id"]


def test_a_mix_follows_its_weights() -> None:
    batch = events({"web": 0.5, "mobile": 0.3, "iot": 0.2}, 20_000, seed=3)
    shares = {s: sum(e["source"] == s for e in batch) / len(batch) for s in SOURCES}
    assert shares["web"] == pytest.approx(0.5, abs=0.02)
    assert shares["mobile"] == pytest.approx(0.3, abs=0.02)
    assert shares["iot"] == pytest.approx(0.2, abs=0.02)


def test_zero_weights_are_left_out_and_all_zero_is_refused() -> None:
    assert {e["source"] for e in events({"web": 0, "iot": 1}, 200)} == {"iot"}
    with pytest.raises(ValueError, match="weight > 0"):
        build_generator({"web": 0}, 1)


def test_timestamps_are_iso_utc_milliseconds_whatever_order_the_clock_gives() -> None:
    # Repeats (one pacer tick), steps back (a clock adjustment) and second boundaries.
    stamps = Timestamps()
    for ts in [1.7e9, 1.7e9, 1.7e9 + 0.999, 1.7e9 + 1.0005, 1.7e9 - 3.25, 1.7e9 - 3.25, 1_800_000_000.625]:
        expected = (
            datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"
        )
        assert stamps.format(ts) == expected, ts


def test_event_ids_are_version_4_uuids_across_refills_and_follow_the_seed() -> None:
    # Ids are made in chunks of 512: go through a few refills.
    def draw(seed: int) -> list[str]:
        ids = EventIds(random.Random(seed))
        return [ids.next() for _ in range(1_300)]

    first = draw(3)
    for text in first:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(set(first)) == len(first)
    assert draw(3) == first
    assert draw(4) != first


def test_transitions_honour_their_probabilities() -> None:
    t = Transitions("convert", 0.18, [("a", 60), ("b", 15), (None, 25)])
    rolls = [(k + 0.5) / 100_000 for k in range(100_000)]  # evenly over [0, 1)
    shares = Counter(t.choose(r) for r in rolls)
    expected = {"convert": 0.18, "a": 0.82 * 0.6, "b": 0.82 * 0.15, None: 0.82 * 0.25}
    for step, share in expected.items():
        assert shares[step] / len(rolls) == pytest.approx(share, abs=1e-4)
    assert t.choose(0.0) == "convert" and t.choose(0.999_999_9) is None
