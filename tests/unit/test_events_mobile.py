"""Mobile app sessions: devices, the in-app funnel, late events from offline phones."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest

from producer.events.catalog import build_catalog
from producer.events.mobile import APP_VERSIONS, DEVICES, NETWORKS, SCREENS, MobileGenerator, MobileParams
from producer.events.pools import build_pools

NOW = 1_700_000_000.0
TYPES = {"app_open", "screen_view", "push_open", "add_to_cart", "in_app_purchase", "app_background"}


def mobile_events(n: int, params: MobileParams | None = None, seed: int = 1) -> list[dict[str, Any]]:
    gen = MobileGenerator(
        random.Random(seed),
        build_pools(random.Random(seed + 1)),
        build_catalog(random.Random(seed + 2)),
        params or MobileParams(),
    )
    return [gen.next_event(NOW + i / 1000) for i in range(n)]


def epoch(text: str) -> float:
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def test_fields_and_value_ranges() -> None:
    devices = {(m, o, v) for m, o, v in DEVICES}
    for e in mobile_events(5000):
        assert e["event_type"] in TYPES
        d = e["device"]
        assert (d["model"], d["os"], d["os_version"]) in devices
        assert e["app_version"] in APP_VERSIONS and e["network"] in NETWORKS
        assert isinstance(e["session_seq"], int) and e["session_seq"] >= 1
        if e["event_type"] == "screen_view":
            assert e["screen"] in SCREENS


def test_sessions_open_first_and_purchase_only_what_is_in_the_cart() -> None:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in mobile_events(40_000):
        sessions[e["session_id"]].append(e)
    purchases = 0
    for events in sessions.values():
        assert events[0]["event_type"] in ("app_open", "push_open")
        assert [e["session_seq"] for e in events] == list(range(1, len(events) + 1))
        assert len({(e["user_id"], e["device"]["model"]) for e in events}) == 1
        cart = 0
        for before, e in zip([None, *events], events, strict=False):
            if e["event_type"] == "add_to_cart":
                cart += 1
            elif e["event_type"] == "in_app_purchase":
                assert before is not None and before["event_type"] == "add_to_cart"
                assert e["cart_items"] == cart > 0
                purchases += 1
                cart = 0
    assert purchases > 100


def test_late_events_are_older_than_their_arrival() -> None:
    params = MobileParams(late_share=0.2, min_late_s=5, max_late_s=900)
    batch = mobile_events(20_000, params)
    late = [e for e in batch if e.get("delayed")]
    assert len(late) / len(batch) == pytest.approx(0.2, abs=0.02)
    for e in late:
        delay = epoch(e["received_at"]) - epoch(e["timestamp"])
        assert 5 - 0.002 <= delay <= 900 + 0.002, delay
    on_time = [e for e in batch if not e.get("delayed")]
    assert all("received_at" not in e for e in on_time)
    assert all(abs(epoch(e["timestamp"]) - NOW) < 30 for e in on_time)
    # Delays spread over the range rather than sitting at one value.
    delays = sorted(epoch(e["received_at"]) - epoch(e["timestamp"]) for e in late)
    assert delays[len(delays) // 10] < 60 < delays[-len(delays) // 10]


def test_no_late_events_when_the_share_is_zero() -> None:
    assert not [e for e in mobile_events(5000, MobileParams(late_share=0.0)) if e.get("delayed")]


def test_cart_to_purchase_setting_changes_revenue() -> None:
    def purchases(p: float) -> int:
        params = MobileParams(cart_to_purchase=p)
        return sum(e["event_type"] == "in_app_purchase" for e in mobile_events(30_000, params))

    assert purchases(0.0) == 0
    assert purchases(0.8) > 2 * purchases(0.2) > 0
