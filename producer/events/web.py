"""Web clickstream: sessions walking a shopping funnel with configurable conversion rates."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from producer.events.base import Event, EventIds, Timestamps, Transitions
from producer.events.catalog import Catalog, Product
from producer.events.pools import CITIES, REFERRERS, SEARCH_TERMS, USER_AGENTS, Pools

PAGES = (
    "/",
    "/deals",
    "/new",
    "/category/electronics",
    "/category/books",
    "/category/home",
    "/category/apparel",
    "/account",
    "/help",
)
GEOS = tuple({"city": city, "country": country, "lat": lat, "lon": lon} for city, country, lat, lon in CITIES)
# Steps that need something in the cart; drawn with an empty cart they become product views.
NEEDS_CART = frozenset({"remove_from_cart", "checkout", "purchase"})


@dataclass(frozen=True, slots=True)
class WebFunnel:
    """Probability that a session takes the next funnel step from the previous one."""

    view_to_cart: float = 0.18  # product_view -> add_to_cart
    cart_to_checkout: float = 0.45  # add_to_cart -> checkout
    checkout_to_purchase: float = 0.7  # checkout -> purchase


@dataclass(frozen=True, slots=True)
class WebParams:
    active_sessions: int = 200  # sessions interleaved at any moment
    guest_share: float = 0.3  # sessions without a user_id (the transform's guest path)
    funnel: WebFunnel = field(default_factory=WebFunnel)


def _funnel(f: WebFunnel) -> dict[str, Transitions]:
    return {
        "page_view": Transitions(
            None, 0.0, [("product_view", 55), ("search", 25), ("page_view", 12), (None, 8)]
        ),
        "search": Transitions(None, 0.0, [("product_view", 70), ("search", 15), (None, 15)]),
        "product_view": Transitions(
            "add_to_cart",
            f.view_to_cart,
            [("product_view", 60), ("search", 15), ("page_view", 5), (None, 20)],
        ),
        "add_to_cart": Transitions(
            "checkout",
            f.cart_to_checkout,
            [("product_view", 55), ("remove_from_cart", 15), ("search", 10), (None, 20)],
        ),
        "remove_from_cart": Transitions(
            "checkout", f.cart_to_checkout, [("product_view", 60), ("search", 10), (None, 30)]
        ),
        "checkout": Transitions(
            "purchase",
            f.checkout_to_purchase,
            [("product_view", 30), ("remove_from_cart", 20), (None, 50)],
        ),
        "purchase": Transitions(None, 0.0, [("page_view", 20), (None, 80)]),
    }


@dataclass(slots=True)
class _Session:
    session_id: str
    user_id: str
    user_agent: str
    referrer: str
    ip: str
    geo: dict[str, object]  # one of GEOS, shared by every session in that city
    step: str = "page_view"
    fresh: bool = True  # the first event of a session is its landing page_view
    cart: list[Product] = field(default_factory=list)
    product: Product | None = None


class WebGenerator:
    source = "web"

    def __init__(self, rng: random.Random, pools: Pools, catalog: Catalog, params: WebParams) -> None:
        self._rng = rng
        self._pools = pools
        self._catalog = catalog
        self._params = params
        self._funnel = _funnel(params.funnel)
        self._ids = EventIds(rng)
        self._ts = Timestamps()
        self._sessions = [self._new_session() for _ in range(params.active_sessions)]

    def _new_session(self) -> _Session:
        # A web event in six starts a session, so this is on the hot path too: int(r() * n) draws
        # (see next_event), and one geo object per city, shared by every session there (events
        # are encoded, never changed).
        r, pools = self._rng.random, self._pools
        user_ids, ips = pools.user_ids, pools.ips
        guest = r() < self._params.guest_share
        return _Session(
            self._ids.next(),
            "" if guest else user_ids[int(r() * len(user_ids))],
            USER_AGENTS[int(r() * len(USER_AGENTS))],
            REFERRERS[int(r() * len(REFERRERS))],
            ips[int(r() * len(ips))],
            GEOS[int(r() * len(GEOS))],
        )

    def _advance(self, slot: int) -> _Session:
        session = self._sessions[slot]
        if session.fresh:
            session.fresh = False
            return session
        step = self._funnel[session.step].choose(self._rng.random())
        if step is None:
            session = self._sessions[slot] = self._new_session()
            session.fresh = False
            return session
        if step in NEEDS_CART and not session.cart:
            step = "product_view"
        session.step = step
        return session

    def next_event(self, now: float) -> Event:
        rng = self._rng
        # int(random() * n) rather than randrange/choice on the per-event path: one C call
        # instead of ~0.3 us of pure-Python rejection sampling (the bias is below 1e-13).
        r = rng.random
        s = self._advance(int(r() * len(self._sessions)))
        step = s.step
        event: Event = {
            "event_id": self._ids.next(),
            "user_id": s.user_id,
            "event_type": step,
            "timestamp": self._ts.format(now),
            "source": "web",
            "session_id": s.session_id,
            "user_agent": s.user_agent,
            "referrer": s.referrer,
            "ip": s.ip,
            "geo": s.geo,
        }
        if step == "page_view":
            event["page"] = PAGES[int(r() * len(PAGES))]
        elif step == "search":
            event["query"] = SEARCH_TERMS[int(r() * len(SEARCH_TERMS))]
        elif step == "product_view":
            s.product = self._catalog.pick(rng)
            event["product_id"] = s.product.product_id
            event["category"] = s.product.category
            event["price"] = s.product.price
        elif step == "add_to_cart":
            product = s.product or self._catalog.pick(rng)
            s.cart.append(product)
            event["product_id"] = product.product_id
            event["price"] = product.price
            event["cart_items"] = len(s.cart)
        elif step == "remove_from_cart":
            product = s.cart.pop(rng.randrange(len(s.cart)))
            event["product_id"] = product.product_id
            event["cart_items"] = len(s.cart)
        else:  # checkout or purchase: both have a non-empty cart (NEEDS_CART)
            event["product_id"] = s.cart[0].product_id
            event["cart_items"] = len(s.cart)
            if step == "purchase":
                event["amount"] = round(sum(p.price for p in s.cart), 2)
                event["order_id"] = f"o-{s.session_id[:8]}-{rng.randrange(10**6):06d}"
                s.cart = []
        return event
