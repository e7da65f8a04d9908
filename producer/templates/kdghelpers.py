"""The helpers a Kinesis Data Generator record template may call (faker.js names, as KDG's help
page documents them: https://awslabs.github.io/amazon-kinesis-data-generator/web/help.html),
each mapped to a seeded pool of Python Faker values or to a distribution, and moment.js date
formats (KDG formats dates with moment.js)."""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from producer.events.base import EventIds, parse_time
from producer.templates.fakerpools import FakerPools
from producer.templates.fields import weighted_draw

Render = Callable[[float], Any]  # wall-clock now -> the placeholder's value


def js_text(value: Any) -> str:
    """A value as faker.js's template puts it in text: JavaScript's number and boolean forms."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return ",".join(js_text(v) for v in value)
    return str(value)


# ---- moment.js date formats (KDG formats dates with moment.js: https://momentjs.com/docs/#/displaying/)

_MOMENT = re.compile(
    r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|Do|DD|D|dddd|ddd|dd|d|HH|H|hh|h|mm|m|ss|s|SSS|SS|S|A|a|ZZ|Z|X|x"
)
_ORDINAL = {1: "st", 2: "nd", 3: "rd"}


def _ordinal(day: int) -> str:
    return f"{day}{'th' if 10 <= day % 100 <= 20 else _ORDINAL.get(day % 10, 'th')}"


def _hour12(tm: time.struct_time) -> int:
    return tm.tm_hour % 12 or 12


_TOKENS: dict[str, Callable[[time.struct_time, float], str]] = {
    "YYYY": lambda tm, ts: f"{tm.tm_year:04d}",
    "YY": lambda tm, ts: f"{tm.tm_year % 100:02d}",
    "MMMM": lambda tm, ts: time.strftime("%B", tm),
    "MMM": lambda tm, ts: time.strftime("%b", tm),
    "MM": lambda tm, ts: f"{tm.tm_mon:02d}",
    "M": lambda tm, ts: str(tm.tm_mon),
    "Do": lambda tm, ts: _ordinal(tm.tm_mday),
    "DD": lambda tm, ts: f"{tm.tm_mday:02d}",
    "D": lambda tm, ts: str(tm.tm_mday),
    "dddd": lambda tm, ts: time.strftime("%A", tm),
    "ddd": lambda tm, ts: time.strftime("%a", tm),
    "dd": lambda tm, ts: time.strftime("%a", tm)[:2],
    "d": lambda tm, ts: str((tm.tm_wday + 1) % 7),
    "HH": lambda tm, ts: f"{tm.tm_hour:02d}",
    "H": lambda tm, ts: str(tm.tm_hour),
    "hh": lambda tm, ts: f"{_hour12(tm):02d}",
    "h": lambda tm, ts: str(_hour12(tm)),
    "mm": lambda tm, ts: f"{tm.tm_min:02d}",
    "m": lambda tm, ts: str(tm.tm_min),
    "ss": lambda tm, ts: f"{tm.tm_sec:02d}",
    "s": lambda tm, ts: str(tm.tm_sec),
    "SSS": lambda tm, ts: f"{int(ts * 1000) % 1000:03d}",
    "SS": lambda tm, ts: f"{int(ts * 100) % 100:02d}",
    "S": lambda tm, ts: str(int(ts * 10) % 10),
    "A": lambda tm, ts: "PM" if tm.tm_hour >= 12 else "AM",
    "a": lambda tm, ts: "pm" if tm.tm_hour >= 12 else "am",
    "ZZ": lambda tm, ts: "+0000",
    "Z": lambda tm, ts: "+00:00",
    "X": lambda tm, ts: str(int(ts)),
    "x": lambda tm, ts: str(int(ts * 1000)),
}
_SUBSECOND = frozenset({"SSS", "SS", "S", "x"})


def moment_format(fmt: str) -> Callable[[float], str]:
    """A moment.js format string as a function of Unix seconds (UTC), cached per second."""
    parts: list[str | Callable[[time.struct_time, float], str]] = []
    at = 0
    for match in _MOMENT.finditer(fmt):
        if match.start() > at:
            parts.append(fmt[at : match.start()])
        token = match.group(0)
        parts.append(token[1:-1] if token.startswith("[") else _TOKENS[token])
        at = match.end()
    parts.append(fmt[at:])
    subsecond = any(token in _SUBSECOND for token in _MOMENT.findall(fmt))
    cache: dict[int, str] = {}

    def render(ts: float) -> str:
        second = math.floor(ts)
        if not subsecond:
            found = cache.get(second)
            if found is not None:
                return found
        tm = time.gmtime(second)
        text = "".join(p if isinstance(p, str) else p(tm, ts) for p in parts)
        if not subsecond:
            if len(cache) > 4096:
                cache.clear()
            cache[second] = text
        return text

    return render


# ---- the helpers ----


class Helpers:
    """Builds one placeholder's renderer from its helper name and arguments."""

    def __init__(self, pools: FakerPools, rng: random.Random, where: str) -> None:
        self.pools = pools
        self.rng = rng
        self.where = where
        self.ids: EventIds | None = None

    def faker(self, provider: str, *args: Any, **kwargs: Any) -> Render:
        pool = self.pools.pool(provider, args, kwargs, self.where)
        r = self.rng.random
        n = len(pool)
        return lambda now: pool[int(r() * n)]

    def joined(self, provider: str, count: int, sep: str = " ") -> Render:
        pool = self.pools.pool(provider, (), {}, self.where)
        r = self.rng.random
        n = len(pool)
        return lambda now: sep.join(pool[int(r() * n)] for _ in range(count))

    def choice(self, values: Sequence[Any], weights: Sequence[float] | None = None) -> Render:
        draw = weighted_draw(values, weights or [1.0] * len(values), self.rng)
        return lambda now: draw()

    def uniform(self, low: float, high: float, precision: float | None) -> Render:
        r = self.rng.random
        if precision is None or precision >= 1:
            first, count = math.ceil(low), math.floor(high) - math.ceil(low) + 1
            return lambda now: first + int(r() * max(count, 1))
        digits = max(0, round(-math.log10(precision)))
        return lambda now: round(low + r() * (high - low), digits)

    def uuid(self) -> Render:
        if self.ids is None:
            self.ids = EventIds(self.rng)
        ids = self.ids
        return lambda now: ids.next()

    def window(self, before_s: float, after_s: float) -> Render:
        """A time between now - before_s and now + after_s, as ISO-8601."""
        r = self.rng.random
        fmt = moment_format("YYYY-MM-DDTHH:mm:ss.SSS[Z]")
        return lambda now: fmt(now - before_s + r() * (before_s + after_s))


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


DAY = 86_400.0
YEAR = 365 * DAY
# faker.js commerce helpers have no Python Faker counterpart: its word lists, shortened.
ADJECTIVES = _words(
    "Small Ergonomic Rustic Intelligent Gorgeous Incredible Fantastic Practical Sleek "
    "Awesome Generic Handcrafted Handmade Licensed Refined Unbranded Tasty"
)
MATERIALS = _words("Steel Wooden Concrete Plastic Cotton Granite Rubber Metal Soft Fresh Frozen")
PRODUCTS = _words(
    "Chair Car Computer Keyboard Mouse Bike Ball Gloves Pants Shirt Table Shoes Hat "
    "Towels Soap Tuna Chicken Fish Cheese Bacon Pizza Salad Sausages Chips"
)
DEPARTMENTS = _words(
    "Books Movies Music Games Electronics Computers Home Garden Tools Grocery Health "
    "Beauty Toys Kids Baby Clothing Shoes Jewelery Sports Outdoors Automotive Industrial"
)

Builder = Callable[[Helpers, list[Any]], Render]


def _int_arg(args: list[Any], at: int, default: int) -> int:
    value = args[at] if len(args) > at else default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"argument {at + 1} must be a number, got {value!r}")
    return int(value)


def _number(h: Helpers, args: list[Any]) -> Render:
    # faker.js random.number(max) or random.number({min, max, precision}); min defaults to 0,
    # max to 99999, both inclusive.
    if not args:
        return h.uniform(0, 99999, None)
    if isinstance(args[0], Mapping):
        opts = args[0]
        unknown = set(opts) - {"min", "max", "precision"}
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; it takes min, max, precision")
        low, high = opts.get("min", 0), opts.get("max", 99999)
        precision = opts.get("precision")
    else:
        low, high, precision = 0, args[0], None
    for value in (low, high, precision):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"min, max and precision must be numbers, got {value!r}")
    if high < low:
        raise ValueError(f"max ({high}) is below min ({low})")
    return h.uniform(float(low), float(high), None if precision is None else float(precision))


def _array_element(h: Helpers, args: list[Any]) -> Render:
    if len(args) != 1 or not isinstance(args[0], list) or not args[0]:
        raise ValueError('takes one non-empty array, e.g. ["OK","FAIL","WARN"]')
    return h.choice(args[0])


def _weighted(h: Helpers, args: list[Any]) -> Render:
    opts = args[0] if len(args) == 1 and isinstance(args[0], Mapping) else None
    if opts is None or not isinstance(opts.get("weights"), list) or not isinstance(opts.get("data"), list):
        raise ValueError('takes {"weights": [...], "data": [...]}')
    weights, data = opts["weights"], opts["data"]
    if len(weights) != len(data) or not data:
        raise ValueError(f"weights ({len(weights)}) and data ({len(data)}) must be non-empty and as long")
    if (
        any(isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in weights)
        or sum(weights) <= 0
    ):
        raise ValueError("weights must be numbers >= 0 adding up to more than 0")
    return h.choice(data, [float(w) for w in weights])


def _date_now(default: str) -> Builder:
    def build(h: Helpers, args: list[Any]) -> Render:
        if len(args) > 1 or (args and not isinstance(args[0], str)):
            raise ValueError('takes one moment.js format, e.g. date.now("YYYY-MM-DD HH:mm:ss")')
        return moment_format(args[0] if args else default)

    return build


def _no_args(build: Callable[[Helpers], Render]) -> Builder:
    def checked(h: Helpers, args: list[Any]) -> Render:
        if args:
            raise ValueError("takes no arguments")
        return build(h)

    return checked


def _faker(provider: str) -> Builder:
    return _no_args(lambda h: h.faker(provider))


def _count_joined(provider: str, default: int, sep: str = " ") -> Builder:
    def build(h: Helpers, args: list[Any]) -> Render:
        return h.joined(provider, _int_arg(args, 0, default), sep)

    return build


def _amount(h: Helpers, args: list[Any]) -> Render:
    # faker.js finance.amount(min=0, max=1000, dec=2) and commerce.price(min=1, max=1000, dec=2):
    # a string with that many decimals.
    low = float(args[0]) if args else 0.0
    high = float(args[1]) if len(args) > 1 else 1000.0
    dec = _int_arg(args, 2, 2)
    r = h.rng.random
    return lambda now: f"{low + r() * (high - low):.{dec}f}"


def _product_name(h: Helpers) -> Render:
    r = h.rng.random
    a, m, p = ADJECTIVES, MATERIALS, PRODUCTS
    return lambda now: f"{a[int(r() * len(a))]} {m[int(r() * len(m))]} {p[int(r() * len(p))]}"


def _digits(h: Helpers, args: list[Any]) -> Render:
    length = _int_arg(args, 0, 8)
    r = h.rng.random
    return lambda now: "".join(str(int(r() * 10)) for _ in range(length))


def _alphanumeric(h: Helpers, args: list[Any]) -> Render:
    length = _int_arg(args, 0, 1)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    r = h.rng.random
    return lambda now: "".join(chars[int(r() * 36)] for _ in range(length))


def _between(h: Helpers, args: list[Any]) -> Render:
    if len(args) != 2 or not all(isinstance(a, str | int | float) for a in args):
        raise ValueError('takes two dates, e.g. date.between("2024-01-01","2024-12-31")')
    bounds = [parse_time(a) if isinstance(a, str) else float(a) / 1000 for a in args]
    if bounds[0] is None or bounds[1] is None:
        raise ValueError("its dates must be ISO-8601, e.g. 2024-01-01 or 2024-01-01T00:00:00Z")
    low, high = sorted((bounds[0], bounds[1]))
    r = h.rng.random
    fmt = moment_format("YYYY-MM-DDTHH:mm:ss.SSS[Z]")
    return lambda now: fmt(low + r() * (high - low))


def _relative(unit: float, default: float, future: bool) -> Builder:
    def build(h: Helpers, args: list[Any]) -> Render:
        span = float(_int_arg(args, 0, int(default))) * unit if args else default * unit
        return h.window(0.0, span) if future else h.window(span, 0.0)

    return build


def _boolean(h: Helpers, args: list[Any]) -> Render:
    if args:
        raise ValueError("takes no arguments")
    return h.choice([True, False])


HELPERS: dict[str, Builder] = {
    "random.number": _number,
    "datatype.number": _number,
    "random.arrayElement": _array_element,
    "random.weightedArrayElement": _weighted,
    "random.uuid": _no_args(Helpers.uuid),
    "datatype.uuid": _no_args(Helpers.uuid),
    "random.boolean": _boolean,
    "datatype.boolean": _boolean,
    "random.word": _faker("word"),
    "random.words": _count_joined("word", 3),
    "random.alphaNumeric": _alphanumeric,
    "date.now": _date_now("YYYY-MM-DDTHH:mm:ssZ"),
    "date.utc": _date_now("YYYY-MM-DDTHH:mm:ss[Z]"),
    "date.simTime": _date_now("YYYY-MM-DDTHH:mm:ssZ"),
    "date.past": _relative(YEAR, 1, future=False),
    "date.future": _relative(YEAR, 1, future=True),
    "date.recent": _relative(DAY, 1, future=False),
    "date.soon": _relative(DAY, 1, future=True),
    "date.between": _between,
    "date.month": _faker("month_name"),
    "date.weekday": _faker("day_of_week"),
    "name.firstName": _faker("first_name"),
    "name.lastName": _faker("last_name"),
    "name.findName": _faker("name"),
    "name.fullName": _faker("name"),
    "name.prefix": _faker("prefix"),
    "name.suffix": _faker("suffix"),
    "name.title": _faker("job"),
    "name.jobTitle": _faker("job"),
    "internet.ip": _faker("ipv4"),
    "internet.ipv6": _faker("ipv6"),
    "internet.email": _faker("email"),
    "internet.exampleEmail": _faker("safe_email"),
    "internet.userName": _faker("user_name"),
    "internet.url": _faker("url"),
    "internet.domainName": _faker("domain_name"),
    "internet.domainWord": _faker("domain_word"),
    "internet.domainSuffix": _faker("tld"),
    "internet.userAgent": _faker("user_agent"),
    "internet.mac": _faker("mac_address"),
    "internet.password": _faker("password"),
    "internet.color": _faker("hex_color"),
    "internet.avatar": _faker("image_url"),
    "internet.protocol": _no_args(lambda h: h.choice(["http", "https"])),
    "commerce.productName": _no_args(_product_name),
    "commerce.product": _no_args(lambda h: h.choice(PRODUCTS)),
    "commerce.productAdjective": _no_args(lambda h: h.choice(ADJECTIVES)),
    "commerce.productMaterial": _no_args(lambda h: h.choice(MATERIALS)),
    "commerce.department": _no_args(lambda h: h.choice(DEPARTMENTS)),
    "commerce.color": _faker("color_name"),
    "commerce.price": _amount,
    "address.city": _faker("city"),
    "address.cityName": _faker("city"),
    "address.country": _faker("country"),
    "address.countryCode": _faker("country_code"),
    "address.state": _faker("state"),
    "address.stateAbbr": _faker("state_abbr"),
    "address.zipCode": _faker("postcode"),
    "address.streetAddress": _faker("street_address"),
    "address.streetName": _faker("street_name"),
    "address.secondaryAddress": _faker("secondary_address"),
    "address.buildingNumber": _faker("building_number"),
    "address.latitude": _faker("latitude"),
    "address.longitude": _faker("longitude"),
    "address.timeZone": _faker("timezone"),
    "lorem.word": _faker("word"),
    "lorem.words": _count_joined("word", 3),
    "lorem.sentence": _faker("sentence"),
    "lorem.sentences": _count_joined("sentence", 3),
    "lorem.paragraph": _faker("paragraph"),
    "lorem.paragraphs": _count_joined("paragraph", 3, "\n \r"),
    "lorem.text": _faker("text"),
    "lorem.slug": _faker("slug"),
    "company.companyName": _faker("company"),
    "company.companySuffix": _faker("company_suffix"),
    "company.catchPhrase": _faker("catch_phrase"),
    "company.bs": _faker("bs"),
    "phone.phoneNumber": _faker("phone_number"),
    "finance.amount": _amount,
    "finance.account": _digits,
    "finance.currencyCode": _faker("currency_code"),
    "finance.currencyName": _faker("currency_name"),
    "finance.creditCardNumber": _faker("credit_card_number"),
    "finance.iban": _faker("iban"),
    "finance.bic": _faker("swift"),
    "system.fileName": _faker("file_name"),
    "system.mimeType": _faker("mime_type"),
    "system.fileExt": _faker("file_extension"),
    "system.filePath": _faker("file_path"),
    "image.imageUrl": _faker("image_url"),
    "image.image": _faker("image_url"),
}
