"""Web clickstream: sessions walking a shopping funnel."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from producer.events.base import Event, EventIds, Timestamps
from producer.events.catalog import Product
from producer.events.pools import REFERRERS, USER_AGENTS, Pools

# Next step probabilities from each funnel step; what is left ends the session.
FUNNEL: dict[str, list[tuple[str, float]]] = {
    "page_view": [("product_view", 0.55), ("search", 0.25), ("page_view", 0.12)],
    "search": [("product_view", 0.7), ("search", 0.15)],
    "product_view": [("add_to_cart", 0.18), ("product_view", 0.5), ("search", 0.12)],
    "add_to_cart": [("checkout", 0.45), ("product_view", 0.3), ("remove_from_cart", 0.1)],
    "remove_from_cart": [("product_view", 0.5), ("checkout", 0.2)],
    "checkout": [("purchase", 0.7), ("remove_from_cart", 0.1)],
    "purchase": [("page_view", 0.15)],
}
PAGES = [
    "/",
    "/deals",
    "/new",
    "/category/electronics",
    "/category/books",
    "/category/home",
    "/category/apparel",
    "/account",
    "/help",
]


@dataclass(slots=True)
class _Session:
    session_id: str
    user_id: str
    user_agent: str
    referrer: str
    ip: str
    city: str
    country: str
    step: str = "page_view"
    cart: list[Product] = field(default_factory=list)
    product: Product | None = None


class WebGenerator:
    source = "web"

    def __init__(
        self,
        rng: random.Random,
        pools: Pools,
        catalog: list[Product],
        active_sessions: int = 200,
        guest_share: float = 0.3,
    ) -> None:
        self._rng = rng
        self._pools = pools
        self._catalog = catalog
        self._guest_share = guest_share
        self._ids = EventIds(rng)
        self._ts = Timestamps()
        self._sessions = [self._new_session() for _ in range(active_sessions)]

    def _new_session(self) -> _Session:
        rng, pools = self._rng, self._pools
        city, country = rng.choice(pools.cities)
        guest = rng.random() < self._guest_share
        return _Session(
            session_id=self._ids.next(),
            user_id="" if guest else rng.choice(pools.user_ids),
            user_agent=rng.choice(USER_AGENTS),
            referrer=rng.choice(REFERRERS),
            ip=rng.choice(pools.ips),
            city=city,
            country=country,
        )

    def _advance(self, slot: int) -> _Session:
        session = self._sessions[slot]
        roll = self._rng.random()
        for nxt, p in FUNNEL[session.step]:
            if roll < p:
                session.step = nxt
                return session
            roll -= p
        session = self._sessions[slot] = self._new_session()
        return session

    def next_event(self, now: float) -> Event:
        rng = self._rng
        slot = rng.randrange(len(self._sessions))
        s = self._advance(slot)
        event: Event = {
            "event_id": self._ids.next(),
            "user_id": s.user_id,
            "event_type": s.step,
            "timestamp": self._ts.format(now),
            "source": "web",
            "session_id": s.session_id,
            "user_agent": s.user_agent,
            "referrer": s.referrer,
            "ip": s.ip,
            "geo": {"city": s.city, "country": s.country},
        }
        step = s.step
        if step == "page_view":
            event["page"] = rng.choice(PAGES)
        elif step == "search":
            event["query"] = rng.choice(self._pools.search_terms)
        elif step == "product_view":
            s.product = rng.choice(self._catalog)
            event["product_id"] = s.product.product_id
            event["category"] = s.product.category
        elif step == "add_to_cart":
            product = s.product or rng.choice(self._catalog)
            s.cart.append(product)
            event["product_id"] = product.product_id
            event["price"] = product.price
        elif step == "remove_from_cart" and s.cart:
            product = s.cart.pop(rng.randrange(len(s.cart)))
            event["product_id"] = product.product_id
        elif step in ("checkout", "purchase"):
            cart = s.cart or [s.product or rng.choice(self._catalog)]
            event["product_id"] = cart[0].product_id
            event["items"] = len(cart)
            if step == "purchase":
                event["amount"] = round(sum(p.price for p in cart), 2)
                s.cart = []
        return event
