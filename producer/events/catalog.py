"""One product catalog shared by every generator, so amounts and product ids add up."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Price range in the shop's currency for each category; prices are log-uniform inside.
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


@dataclass(frozen=True, slots=True)
class Catalog:
    products: tuple[Product, ...]

    def pick(self, rng: random.Random) -> Product:
        """A product, the first ones more often (a few best sellers, a long tail)."""
        r = rng.random()
        return self.products[int(len(self.products) * r * r)]

    def by_id(self) -> dict[str, Product]:
        return {p.product_id: p for p in self.products}


def build_catalog(rng: random.Random, size: int = 500) -> Catalog:
    """``size`` products with prices typical of their category."""
    names = sorted(CATEGORIES)
    products = []
    for i in range(size):
        category = names[i % len(names)]
        low, high = CATEGORIES[category]
        price = round(low * (high / low) ** rng.random(), 2)
        products.append(Product(f"P{100000 + i}", category, price))
    return Catalog(tuple(products))
