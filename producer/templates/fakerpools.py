"""Faker at start-up only: one seeded Faker per template fills pools of values, and events draw
from the pools. A Faker call costs tens of microseconds (DESIGN.md measured ~650 us for an
event of 11 Faker fields), a pool draw about 0.1 us."""

from __future__ import annotations

import datetime
import decimal
import difflib
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from producer.errors import UsageError

if TYPE_CHECKING:
    from faker import Faker

# Values per Faker pool unless a field or the template says otherwise: enough to look random
# on a dashboard, few enough that three pools build in well under a second.
DEFAULT_POOL_SIZE = 1000
DEFAULT_LOCALE = "en_US"
MAX_POOL_SIZE = 1_000_000


class TemplateError(UsageError):
    """A template that cannot be compiled: one line naming the field and the fix (exit 2)."""


def plain(value: Any) -> Any:
    """A Faker value as JSON can hold it: Decimal to float, dates to ISO-8601, UUID to text,
    tuples and sets to lists (orjson refuses Decimal, and a Glue column needs one type)."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="milliseconds") + "Z"
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


def provider_names(fake: Faker) -> list[str]:
    """Every provider method this Faker (its locale) offers."""
    names = []
    for name in dir(fake):
        if name.startswith("_") or name in _NOT_PROVIDERS:
            continue
        try:
            attr = getattr(fake, name)
        except (AttributeError, TypeError, NotImplementedError):
            continue
        if callable(attr):
            names.append(name)
    return names


# Faker's own plumbing, not value providers.
_NOT_PROVIDERS = frozenset(
    {
        "add_provider",
        "format",
        "get_formatter",
        "get_providers",
        "parse",
        "provider",
        "seed",
        "seed_instance",
        "seed_locale",
        "set_arguments",
        "set_formatter",
        "get_arguments",
        "del_arguments",
        "items",
        "random",
        "enum",
        "xml",
    }
)


class FakerPools:
    """Pools of Faker values keyed by (provider, arguments); each made once, in the order
    fields ask for them, from one seeded Faker, so a seed reproduces every pool."""

    def __init__(self, locale: str, seed: int, pool_size: int, where: str) -> None:
        self.pool_size = pool_size
        self._locale = locale
        self._seed = seed
        self._where = where
        self._fake: Faker | None = None
        self._pools: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._names: list[str] | None = None
        if locale != DEFAULT_LOCALE:
            self.fake  # noqa: B018 - a locale the user names is checked now, used or not

    @property
    def fake(self) -> Faker:
        """The seeded Faker, made when a pool first needs it: importing Faker costs ~0.2 s,
        which a run of built-in generators, or a template without Faker fields, need not pay."""
        if self._fake is None:
            from faker import Faker

            try:
                self._fake = Faker(self._locale)
            except AttributeError:
                raise TemplateError(
                    f"{self._where}.locale: unknown Faker locale {self._locale!r} (e.g. en_US, de_DE, ja_JP)"
                ) from None
            self._fake.seed_instance(self._seed)
        return self._fake

    def _provider(self, name: str, where: str) -> Any:
        attr = None
        if name and not name.startswith("_") and name not in _NOT_PROVIDERS:
            try:
                attr = getattr(self.fake, name)
            except (AttributeError, TypeError, NotImplementedError):
                attr = None
        if not callable(attr):
            if self._names is None:
                self._names = provider_names(self.fake)
            close = difflib.get_close_matches(name, self._names, n=3, cutoff=0.6)
            hint = (
                f"; closest: {', '.join(close)}"
                if close
                else "; see https://faker.readthedocs.io/en/stable/providers.html"
            )
            raise TemplateError(f"{where}: unknown Faker provider {name!r}{hint}")
        return attr

    def pool(
        self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], where: str, size: int | None = None
    ) -> tuple[Any, ...]:
        key = (name, repr((list(args), sorted(kwargs.items()), size)))
        found = self._pools.get(key)
        if found is not None:
            return found
        provider = self._provider(name, where)
        try:
            first = provider(*args, **kwargs)
        except TypeError as exc:
            raise TemplateError(f"{where}: Faker provider {name!r} refused its arguments: {exc}") from None
        except (ValueError, AttributeError, KeyError, IndexError) as exc:
            raise TemplateError(
                f"{where}: Faker provider {name!r} failed with these arguments: {exc}"
            ) from None
        values = [plain(first)]
        values.extend(plain(provider(*args, **kwargs)) for _ in range((size or self.pool_size) - 1))
        pool = tuple(values)
        self._pools[key] = pool
        return pool


def refuse_unknown(spec: Mapping[str, Any], allowed: Sequence[str], where: str, what: str) -> None:
    """One line naming the first setting of ``spec`` that ``what`` does not have."""
    unknown = [str(k) for k in spec if k not in allowed]
    if unknown:
        raise TemplateError(f"{where}.{unknown[0]}: unknown setting of {what}; allowed: {', '.join(allowed)}")
