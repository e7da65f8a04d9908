"""Web clickstream: the funnel within each session, guests, conversion settings."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import replace
from typing import Any

import pytest

from producer.events.catalog import build_catalog
from producer.events.pools import CITIES, REFERRERS, SEARCH_TERMS, USER_AGENTS, build_pools
from producer.events.web import PAGES, WebFunnel, WebGenerator, WebParams

STEPS = {"page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout", "purchase"}


def web_events(n: int, params: WebParams | None = None, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    catalog = build_catalog(random.Random(seed + 1))
    gen = WebGenerator(rng, build_pools(random.Random(seed + 2)), catalog, params or WebParams())
    return [gen.next_event(1_700_000_000.0 + i / 1000) for i in range(n)]


def by_session(batch: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in batch:
        sessions[event["session_id"]].append(event)
    return sessions


def test_fields_and_value_ranges() -> None:
    cities = {(c, country) for c, country, _, _ in CITIES}
    for e in web_events(5000):
        assert e["event_type"] in STEPS
        assert e["user_agent"] in USER_AGENTS and e["referrer"] in REFERRERS
        octets = [int(x) for x in e["ip"].split(".")]
        assert len(octets) == 4 and all(0 <= o <= 255 for o in octets)
        assert (e["geo"]["city"], e["geo"]["country"]) in cities
        assert -90 <= e["geo"]["lat"] <= 90 and -180 <= e["geo"]["lon"] <= 180
        if e["event_type"] == "page_view":
            assert e["page"] in PAGES
        if e["event_type"] == "search":
            assert e["query"] in SEARCH_TERMS
        if e["event_type"] in ("product_view", "add_to_cart", "checkout", "purchase", "remove_from_cart"):
            assert e["product_id"].startswith("P")


def test_funnel_order_within_each_session() -> None:
    sessions = by_session(web_events(40_000))
    purchases = 0
    for events in sessions.values():
        assert events[0]["event_type"] == "page_view", "a session lands on a page"
        assert len({e["user_id"] for e in events}) == 1
        cart = 0
        previous = ""
        for e in events:
            kind = e["event_type"]
            if kind == "add_to_cart":
                assert previous in ("product_view", "add_to_cart", "remove_from_cart", "checkout") or cart
                cart += 1
            elif kind == "remove_from_cart":
                assert cart > 0, "nothing to remove"
                cart -= 1
            elif kind == "checkout":
                assert cart > 0, "checkout with an empty cart"
            elif kind == "purchase":
                assert previous == "checkout", "a purchase follows a checkout"
                assert e["cart_items"] == cart
                purchases += 1
                cart = 0
            if "cart_items" in e and kind != "purchase":
                assert e["cart_items"] == cart
            previous = kind
    assert purchases > 100


def test_add_to_cart_follows_a_view_of_the_same_product() -> None:
    for events in by_session(web_events(20_000)).values():
        for before, after in itertools.pairwise(events):
            if after["event_type"] == "add_to_cart" and before["event_type"] == "product_view":
                assert after["product_id"] == before["product_id"]


def test_guests_have_an_empty_user_id_and_registered_users_do_not() -> None:
    sessions = by_session(web_events(30_000, WebParams(guest_share=0.3)))
    guests = [s for s in sessions.values() if s[0]["user_id"] == ""]
    registered = [s for s in sessions.values() if s[0]["user_id"].startswith("user_")]
    assert len(guests) + len(registered) == len(sessions)
    assert len(guests) / len(sessions) == pytest.approx(0.3, abs=0.05)


def test_all_guests_and_no_guests() -> None:
    assert {e["user_id"] for e in web_events(2000, WebParams(guest_share=1.0))} == {""}
    assert "" not in {e["user_id"] for e in web_events(2000, WebParams(guest_share=0.0))}


def _rate(batch: list[dict[str, Any]], frm: str, to: str) -> float:
    """Share of ``frm`` events followed by ``to``; a session's last event counts as a move to
    "session ended" (the conversion rate is the chance of the next step, leaving included)."""
    moves = taken = 0
    for events in by_session(batch).values():
        kinds = [e["event_type"] for e in events] + ["(ended)"]
        for before, after in itertools.pairwise(kinds):
            if before == frm:
                moves += 1
                taken += after == to
    return taken / moves


@pytest.mark.parametrize("view_to_cart", [0.05, 0.4])
def test_view_to_cart_conversion_is_the_configured_one(view_to_cart: float) -> None:
    params = replace(WebParams(), funnel=WebFunnel(view_to_cart=view_to_cart))
    assert _rate(web_events(60_000, params), "product_view", "add_to_cart") == pytest.approx(
        view_to_cart, abs=0.02
    )


def test_checkout_to_purchase_conversion_is_the_configured_one() -> None:
    params = replace(WebParams(), funnel=WebFunnel(checkout_to_purchase=0.9, cart_to_checkout=0.8))
    assert _rate(web_events(60_000, params), "checkout", "purchase") == pytest.approx(0.9, abs=0.03)


def test_no_conversion_means_no_purchases() -> None:
    params = replace(WebParams(), funnel=WebFunnel(view_to_cart=0.0))
    kinds = {e["event_type"] for e in web_events(20_000, params)}
    assert kinds.isdisjoint({"add_to_cart", "checkout", "purchase", "remove_from_cart"})


def test_purchase_amount_is_the_cart_total() -> None:
    catalog = build_catalog(random.Random(2))
    prices = {p.product_id: p.price for p in catalog.products}
    for events in by_session(web_events(40_000)).values():
        cart: list[str] = []
        for e in events:
            if e["event_type"] == "add_to_cart":
                cart.append(e["product_id"])
            elif e["event_type"] == "remove_from_cart":
                cart.remove(e["product_id"])
            elif e["event_type"] == "purchase":
                assert e["amount"] == pytest.approx(sum(prices[p] for p in cart), abs=0.011)
                cart = []
