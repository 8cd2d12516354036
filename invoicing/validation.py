"""Validators for the small values every entry point shares (names, currencies, zones)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.numbers import list_currencies

from invoicing.errors import InvalidInput

_SHORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_CURRENCIES = frozenset(list_currencies())


def short_name(value: str, field: str = "company") -> str:
    name = value.strip().lower()
    if not _SHORT_NAME.match(name):
        raise InvalidInput(field, f"{value!r} is not a valid short name; use 1-40 letters, digits, - or _ (e.g. acme)")
    return name


def currency(value: str, field: str = "currency") -> str:
    code = value.strip().upper()
    if code not in _CURRENCIES or len(code) != 3:
        raise InvalidInput(field, f"{value!r} is not an ISO 4217 currency code; use e.g. GBP, EUR or USD")
    return code


def timezone(value: str, field: str = "timezone") -> str:
    name = value.strip()
    try:
        if name not in available_timezones():
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(field, f"{value!r} is not an IANA time zone; use e.g. Europe/London or America/New_York") from None
    return name


def sku(value: str, field: str = "sku") -> str:
    text = value.strip()
    if not _SKU.match(text):
        raise InvalidInput(field, f"{value!r} is not a valid SKU; 1-64 letters, digits and . _ / -")
    return text


def storable(value: str, max_len: int) -> bool:
    """Whether ``value`` could be stored in a column of ``max_len``; a lookup of anything else finds nothing.

    Check before filtering on user input: Tortoise raises on values longer than the column
    and PostgreSQL on NUL bytes, instead of answering "no such row".
    """
    return len(value) <= max_len and "\x00" not in value


def text(value: object, field: str, *, max_len: int = 200, required: bool = True) -> str:
    result = "" if value is None else str(value).strip()
    if required and not result:
        raise InvalidInput(field, "is required")
    if len(result) > max_len:
        raise InvalidInput(field, f"is {len(result)} characters long; at most {max_len}")
    if re.search(r"[\x00-\x1f\x7f]", result):
        raise InvalidInput(field, "must not contain line breaks or control characters")
    return result
