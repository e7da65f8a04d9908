"""Which streams get which sources: every event to every stream unless a profile routes."""

from __future__ import annotations

from dataclasses import dataclass

from producer.generation import route


@dataclass
class FakeChannel:
    name: str


def names(channels: list[FakeChannel]) -> list[str]:
    return [c.name for c in channels]


def test_default_every_source_to_every_stream() -> None:
    a, b = FakeChannel("a"), FakeChannel("b")
    table = route([a, b], {})
    assert {source: names(chs) for source, chs in table.items()} == {
        "web": ["a", "b"],
        "mobile": ["a", "b"],
        "iot": ["a", "b"],
    }


def test_a_routed_stream_gets_only_its_sources_others_get_all() -> None:
    a, b = FakeChannel("a"), FakeChannel("search")
    table = route([a, b], {"search": ["web", "mobile"], "not-in-this-run": ["iot"]})
    assert names(table["web"]) == ["a", "search"]
    assert names(table["mobile"]) == ["a", "search"]
    assert names(table["iot"]) == ["a"]


def test_a_stream_routed_to_nothing_gets_nothing() -> None:
    table = route([FakeChannel("quiet")], {"quiet": []})
    assert all(chs == [] for chs in table.values())
