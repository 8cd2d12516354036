"""How money, dates and parties read in Slack (locale-aware, in the company's time zone)."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import format_currency

from invoicing.errors import InvalidInput


def money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale="en_GB")


def local(moment: datetime | None, tz: str, *, with_time: bool = True) -> str:
    if moment is None:
        return "—"
    value = moment.astimezone(ZoneInfo(tz))
    return value.strftime("%a %d %b %Y %H:%M %Z" if with_time else "%d %b %Y")


def parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-01") from None


def day_start(day: date, tz: str) -> datetime:
    """Midnight at the start of ``day`` in ``tz`` (as an aware datetime)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


def yes_no(value: str, field: str) -> bool:
    text = value.strip().lower()
    if text in {"yes", "y", "true", "on", "1"}:
        return True
    if text in {"no", "n", "false", "off", "0"}:
        return False
    raise InvalidInput(field, f"{value!r} is not yes or no")
