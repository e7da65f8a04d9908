"""Mobile app sessions; a share of events arrives late from offline buffering."""

from __future__ import annotations

import random
from dataclasses import dataclass

from producer.events.base import Event, EventIds, Timestamps
from producer.events.catalog import Product
from producer.events.pools import Pools

DEVICES = [
    ("iPhone 16", "iOS", "18.1"),
    ("iPhone 14", "iOS", "17.6"),
    ("Pixel 9", "Android", "15"),
    ("Galaxy S24", "Android", "14"),
    ("Galaxy A54", "Android", "14"),
    ("iPad Air", "iPadOS", "18.1"),
]
APP_VERSIONS = ["5.12.0", "5.12.1", "5.13.0", "5.11.4"]
NETWORKS = ["wifi", "5g", "4g", "3g"]
SCREENS = ["home", "search", "product", "cart", "profile", "orders", "deals"]
TRANSITIONS: dict[str, list[tuple[str, float]]] = {
    "app_open": [("screen_view", 0.85), ("push_open", 0.1)],
    "push_open": [("screen_view", 0.9)],
    "screen_view": [("screen_view", 0.55), ("add_to_cart", 0.12), ("app_background", 0.2)],
    "add_to_cart": [("in_app_purchase", 0.35), ("screen_view", 0.5)],
    "in_app_purchase": [("screen_view", 0.5), ("app_background", 0.4)],
    "app_background": [("app_open", 0.3)],
}


@dataclass(slots=True)
class _AppSession:
    session_id: str
    user_id: str
    device: tuple[str, str, str]
    app_version: str
    network: str
    step: str = "app_open"
    product: Product | None = None


class MobileGenerator:
    source = "mobile"

    def __init__(
        self,
        rng: random.Random,
        pools: Pools,
        catalog: list[Product],
        active_sessions: int = 200,
        late_share: float = 0.05,
        max_late_s: float = 900.0,
    ) -> None:
        self._rng = rng
        self._pools = pools
        self._catalog = catalog
        self._late_share = late_share
        self._max_late_s = max_late_s
        self._ids = EventIds(rng)
        self._ts = Timestamps()
        self._sessions = [self._new() for _ in range(active_sessions)]

    def _new(self) -> _AppSession:
        rng = self._rng
        return _AppSession(
            session_id=self._ids.next(),
            user_id=rng.choice(self._pools.user_ids),
            device=rng.choice(DEVICES),
            app_version=rng.choice(APP_VERSIONS),
            network=rng.choice(NETWORKS),
        )

    def next_event(self, now: float) -> Event:
        rng = self._rng
        slot = rng.randrange(len(self._sessions))
        s = self._sessions[slot]
        roll = rng.random()
        for nxt, p in TRANSITIONS[s.step]:
            if roll < p:
                s.step = nxt
                break
            roll -= p
        else:
            s = self._sessions[slot] = self._new()
        event_time = now
        late = rng.random() < self._late_share
        if late:
            event_time = now - rng.uniform(5.0, self._max_late_s)
        model, os_name, os_version = s.device
        event: Event = {
            "event_id": self._ids.next(),
            "user_id": s.user_id,
            "event_type": s.step,
            "timestamp": self._ts.format(event_time) if not late else _iso(event_time),
            "source": "mobile",
            "session_id": s.session_id,
            "device": {"model": model, "os": os_name, "os_version": os_version},
            "app_version": s.app_version,
            "network": s.network,
        }
        if late:
            event["delayed"] = True
        if s.step == "screen_view":
            event["screen"] = rng.choice(SCREENS)
        elif s.step == "add_to_cart":
            s.product = rng.choice(self._catalog)
            event["product_id"] = s.product.product_id
        elif s.step == "in_app_purchase":
            product = s.product or rng.choice(self._catalog)
            event["product_id"] = product.product_id
            event["amount"] = product.price
        return event


def _iso(ts: float) -> str:
    return Timestamps().format(ts)
