"""Value pools the hot path samples from, shipped as data so start-up costs milliseconds.

Faker is not imported: building 10k-value Faker pools took 5 s on this machine kind
(DESIGN.md), and its default locale invents US-style towns for every country. Real cities
with coordinates and a shop's search terms are both smaller and more believable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
)
REFERRERS = (
    "https://www.google.com/",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.facebook.com/",
    "https://www.instagram.com/",
    "https://t.co/",
    "https://newsletter.example-shop.com/",
    "",  # direct traffic: no referrer
    "",
)
# (city, ISO country, latitude, longitude)
CITIES = (
    ("New York", "US", 40.71, -74.01),
    ("Los Angeles", "US", 34.05, -118.24),
    ("Chicago", "US", 41.88, -87.63),
    ("Houston", "US", 29.76, -95.37),
    ("Seattle", "US", 47.61, -122.33),
    ("Atlanta", "US", 33.75, -84.39),
    ("Denver", "US", 39.74, -104.99),
    ("Boston", "US", 42.36, -71.06),
    ("London", "GB", 51.51, -0.13),
    ("Manchester", "GB", 53.48, -2.24),
    ("Edinburgh", "GB", 55.95, -3.19),
    ("Berlin", "DE", 52.52, 13.40),
    ("Munich", "DE", 48.14, 11.58),
    ("Hamburg", "DE", 53.55, 9.99),
    ("Paris", "FR", 48.86, 2.35),
    ("Lyon", "FR", 45.76, 4.84),
    ("Mumbai", "IN", 19.08, 72.88),
    ("Bengaluru", "IN", 12.97, 77.59),
    ("Delhi", "IN", 28.70, 77.10),
    ("São Paulo", "BR", -23.55, -46.63),
    ("Rio de Janeiro", "BR", -22.91, -43.17),
    ("Tokyo", "JP", 35.68, 139.69),
    ("Osaka", "JP", 34.69, 135.50),
    ("Toronto", "CA", 43.65, -79.38),
    ("Vancouver", "CA", 49.28, -123.12),
    ("Sydney", "AU", -33.87, 151.21),
    ("Melbourne", "AU", -37.81, 144.96),
    ("Madrid", "ES", 40.42, -3.70),
    ("Barcelona", "ES", 41.39, 2.17),
    ("Amsterdam", "NL", 52.37, 4.90),
)
SEARCH_TERMS = (
    "wireless headphones", "running shoes", "laptop stand", "coffee grinder", "yoga mat",
    "phone case", "usb-c cable", "air fryer", "desk lamp", "winter jacket", "water bottle",
    "backpack", "mechanical keyboard", "sunscreen", "board game", "lego", "cookbook",
    "bluetooth speaker", "smart watch", "hiking boots", "face serum", "gaming mouse",
    "throw pillow", "espresso machine", "kids bike", "tennis racket", "protein powder",
    "olive oil", "notebook", "monitor 27 inch", "rain jacket", "sneakers", "sofa cover",
    "led strip", "tea", "dog food", "vacuum cleaner", "kindle", "jeans", "t-shirt",
    "gift card", "perfume", "camping tent", "electric toothbrush", "puzzle", "novel",
    "frying pan", "socks", "charger", "headphones sale",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pools:
    """Values built once per run from the run's RNG, shared by every generator."""

    user_ids: tuple[str, ...]
    ips: tuple[str, ...]


def build_pools(rng: random.Random, users: int = 5000, ips: int = 2000) -> Pools:
    """Registered user ids and client IPs; about 5 ms for the defaults."""
    user_ids = dict.fromkeys(f"user_{rng.randrange(10**7):07d}" for _ in range(users))
    return Pools(
        user_ids=tuple(user_ids),
        ips=tuple(
            f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            for _ in range(ips)
        ),
    )
