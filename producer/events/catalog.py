"""One product catalog shared by every generator, so amounts and product ids add up."""

from __future__ import annotations

import random
from dataclasses import dataclass

CATEGORIES = {
    "electronics": (49.0, 1499.0),
    "books": (6.0, 45.0),
    "apparel": (12.0, 180.0),
    "home": (9.0, 400.0),
    "beauty": (5.0, 90.0),
    "sports": (10.0, 350.0),
    "toys": (7.0, 120.0),
    "grocery": (2.0, 60.0),
}


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    category: str
    price: float


def build_catalog(rng: random.Random, size: int = 500) -> list[Product]:
    """``size`` products with prices typical of their category (log-uniform within range)."""
    names = sorted(CATEGORIES)
    products = []
    for i in range(size):
        category = names[i % len(names)]
        low, high = CATEGORIES[category]
        price = round(low * (high / low) ** rng.random(), 2)
        products.append(Product(f"P{100000 + i}", category, price))
    return products
