"""Value pools built once at start-up, so the hot path only samples lists."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Fixed lists: realistic and free at start-up (Faker is not needed for these).
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
]
REFERRERS = [
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.facebook.com/",
    "https://t.co/",
    "https://newsletter.example-shop.com/",
    "",
]
COUNTRIES = [
    ("US", "en-US"),
    ("GB", "en-GB"),
    ("DE", "de-DE"),
    ("FR", "fr-FR"),
    ("IN", "en-IN"),
    ("BR", "pt-BR"),
    ("JP", "ja-JP"),
    ("CA", "en-CA"),
    ("AU", "en-AU"),
    ("ES", "es-ES"),
]


@dataclass(frozen=True, slots=True)
class Pools:
    user_ids: list[str]
    cities: list[tuple[str, str]]
    ips: list[str]
    search_terms: list[str]


def build_pools(rng: random.Random, users: int = 5000) -> Pools:
    """Pools from the seeded RNG; Faker is used only for a few hundred words and cities."""
    from faker import Faker  # imported here: it is slow to import and only used at start-up

    fake = Faker()
    fake.seed_instance(rng.getrandbits(32))
    cities = [(fake.city(), code) for code, _ in COUNTRIES for _ in range(20)]
    words = list(dict.fromkeys(fake.words(nb=300)))
    return Pools(
        user_ids=[f"user_{rng.randrange(10**7):07d}" for _ in range(users)],
        cities=cities,
        ips=[
            f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            for _ in range(2000)
        ],
        search_terms=words,
    )
