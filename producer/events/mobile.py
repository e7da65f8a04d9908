"""Mobile app sessions; a share of events arrives late from offline buffering."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from producer.events.base import Event, EventIds, Timestamps, Transitions
from producer.events.catalog import Catalog, Product
from producer.events.pools import Pools

DEVICES = (
    ("iPhone 16", "iOS", "18.1"),
    ("iPhone 15", "iOS", "18.1"),
    ("iPhone 14", "iOS", "17.6"),
    ("iPhone SE", "iOS", "17.6"),
    ("Pixel 9", "Android", "15"),
    ("Pixel 7a", "Android", "14"),
    ("Galaxy S24", "Android", "14"),
    ("Galaxy A54", "Android", "14"),
    ("Redmi Note 13", "Android", "13"),
    ("iPad Air", "iPadOS", "18.1"),
)
DEVICE_OBJECTS = tuple({"model": m, "os": os_name, "os_version": v} for m, os_name, v in DEVICES)
APP_VERSIONS = ("5.13.0", "5.13.0", "5.12.1", "5.12.0", "5.11.4")
NETWORKS = ("wifi", "wifi", "5g", "4g", "4g", "3g")
SCREENS = ("home", "search", "product", "cart", "profile", "orders", "deals")
CAMPAIGNS = ("flash-deal", "back-in-stock", "cart-reminder", "weekly-picks")


@dataclass(frozen=True, slots=True)
class MobileParams:
    active_sessions: int = 200  # app sessions interleaved at any moment
    guest_share: float = 0.1  # sessions without a user_id (not logged in)
    push_share: float = 0.15  # sessions opened from a push notification
    cart_to_purchase: float = 0.35  # add_to_cart -> in_app_purchase
    late_share: float = 0.05  # events delivered late from an offline phone
    min_late_s: float = 5.0
    max_late_s: float = 900.0


def _transitions(p: MobileParams) -> dict[str, Transitions]:
    return {
        "app_open": Transitions(None, 0.0, [("screen_view", 1)]),
        "push_open": Transitions(None, 0.0, [("screen_view", 1)]),
        "screen_view": Transitions(
            None, 0.0, [("screen_view", 60), ("add_to_cart", 12), ("app_background", 20), (None, 8)]
        ),
        "add_to_cart": Transitions(
            "in_app_purchase", p.cart_to_purchase, [("screen_view", 70), ("app_background", 20), (None, 10)]
        ),
        "in_app_purchase": Transitions(None, 0.0, [("screen_view", 50), ("app_background", 40), (None, 10)]),
        "app_background": Transitions(None, 0.0, [("app_open", 40), (None, 60)]),
    }


@dataclass(slots=True)
class _AppSession:
    session_id: str
    user_id: str
    device: dict[str, str]  # one of DEVICE_OBJECTS, shared by every session on that model
    app_version: str
    network: str
    step: str
    fresh: bool = True
    seq: int = 0
    cart: list[Product] = field(default_factory=list)


class MobileGenerator:
    source = "mobile"

    def __init__(self, rng: random.Random, pools: Pools, catalog: Catalog, params: MobileParams) -> None:
        self._rng = rng
        self._pools = pools
        self._catalog = catalog
        self._params = params
        self._late_ratio = params.max_late_s / params.min_late_s
        self._transitions = _transitions(params)
        self._ids = EventIds(rng)
        self._ts = Timestamps()
        self._late_ts = Timestamps()  # separate cache: late timestamps jump around
        self._sessions = [self._new() for _ in range(params.active_sessions)]

    def _new(self) -> _AppSession:
        # On the hot path (a session every few events): int(r() * n) draws as in next_event,
        # and one device object per model, shared (events are never changed).
        r, p = self._rng.random, self._params
        user_ids = self._pools.user_ids
        return _AppSession(
            self._ids.next(),
            "" if r() < p.guest_share else user_ids[int(r() * len(user_ids))],
            DEVICE_OBJECTS[int(r() * len(DEVICE_OBJECTS))],
            APP_VERSIONS[int(r() * len(APP_VERSIONS))],
            NETWORKS[int(r() * len(NETWORKS))],
            "push_open" if r() < p.push_share else "app_open",
        )

    def _advance(self, slot: int) -> _AppSession:
        s = self._sessions[slot]
        if s.fresh:
            s.fresh = False
            return s
        step = self._transitions[s.step].choose(self._rng.random())
        if step is None:
            s = self._sessions[slot] = self._new()
            s.fresh = False
            return s
        if step == "app_open" and self._rng.random() < 0.2:
            s.network = NETWORKS[int(self._rng.random() * len(NETWORKS))]  # resumed elsewhere
        s.step = step
        return s

    def next_event(self, now: float) -> Event:
        rng = self._rng
        r = rng.random  # int(r() * n) for draws on the per-event path: see web.py
        s = self._advance(int(r() * len(self._sessions)))
        s.seq += 1
        step = s.step
        late = rng.random() < self._params.late_share
        event: Event = {
            "event_id": self._ids.next(),
            "user_id": s.user_id,
            "event_type": step,
            "timestamp": "",
            "source": "mobile",
            "session_id": s.session_id,
            "session_seq": s.seq,  # lets consumers reorder late arrivals within a session
            "device": s.device,
            "app_version": s.app_version,
            "network": s.network,
        }
        if late:
            # Log-uniform delay: most phones are offline briefly, a few for many minutes.
            delay = self._params.min_late_s * self._late_ratio ** rng.random()
            event["timestamp"] = self._late_ts.format(now - delay)
            event["received_at"] = self._ts.format(now)
            event["delayed"] = True
        else:
            event["timestamp"] = self._ts.format(now)
        if step == "screen_view":
            event["screen"] = SCREENS[int(r() * len(SCREENS))]
        elif step == "push_open":
            event["campaign"] = CAMPAIGNS[int(r() * len(CAMPAIGNS))]
        elif step == "add_to_cart":
            product = self._catalog.pick(rng)
            s.cart.append(product)
            event["product_id"] = product.product_id
            event["price"] = product.price
        elif step == "in_app_purchase":
            event["product_id"] = s.cart[0].product_id
            event["amount"] = round(sum(p.price for p in s.cart), 2)
            event["cart_items"] = len(s.cart)
            s.cart = []
        return event
