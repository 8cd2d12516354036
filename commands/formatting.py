"""How money, dates and parties read in Slack (locale-aware, in the company's time zone)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import format_currency


def money(amount: Decimal, currency: str) -> str:
    return format_currency(amount, currency, locale="en_GB")


def local(moment: datetime | None, tz: str, *, with_time: bool = True) -> str:
    if moment is None:
        return "—"
    value = moment.astimezone(ZoneInfo(tz))
    return value.strftime("%a %d %b %Y %H:%M %Z" if with_time else "%d %b %Y")
