"""Numbers, money and dates of one document, written in one babel locale (see ``labels.locale_for``).

Every year has four digits: header dates use "dd MMM y" ("08 Nov 2026", "08 nov. 2026"),
table dates the locale's short pattern with its two-digit year widened ("08/11/2026",
"02.11.2026").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern, parse_pattern

__all__ = ["Formats"]

_DATE_FORMAT = "dd MMM y"
_RATE_PATTERN = parse_pattern("#,##0.###")


class Formats:
    """Locale-aware formatting of the figures of one document."""

    def __init__(self, locale_id: str, currency: str, timezone: str) -> None:
        self.locale, self._money, self._number, self._short = _patterns(locale_id)
        self.currency = currency
        self.zone = ZoneInfo(timezone)
        self._dates: dict[tuple[date, bool], str] = {}

    def money(self, amount: Decimal, currency: str | None = None) -> str:
        """With the currency sign: "£1,234.50", "1.234,50 €"."""
        return str(self._money.apply(amount, self.locale, currency=currency or self.currency, currency_digits=True))

    def amount(self, amount: Decimal) -> str:
        """Without the sign, for the table whose header names the currency."""
        return str(self._number.apply(amount, self.locale, currency=self.currency, currency_digits=True))

    def unit(self, amount: Decimal) -> str:
        """A unit price: the currency's digits, or more when the price has them ("3.333"),
        so every line net can be recomputed from the printed figures."""
        return str(self._number.apply(amount.normalize(), self.locale, currency=self.currency, currency_digits=True,
                                      decimal_quantization=False))

    def rate(self, rate: Decimal) -> str:
        """A VAT rate in percent without trailing zeros: "20", "5,5"."""
        return str(_RATE_PATTERN.apply(rate, self.locale))

    def number(self, value: Decimal) -> str:
        """A plain decimal as written in the locale, every given digit kept (an exchange rate: "0,8523")."""
        return str(_RATE_PATTERN.apply(value, self.locale, decimal_quantization=False))

    def day(self, moment: datetime, *, short: bool = False) -> str:
        """The local date of an aware datetime: "01 Nov 2026", or short "01/11/2026"."""
        return self.calendar_date(moment.astimezone(self.zone).date(), short=short)

    def calendar_date(self, day: date, *, short: bool = False) -> str:
        """A calendar date: "01 Nov 2026", or short "01/11/2026"."""
        key = (day, short)
        if key not in self._dates:
            self._dates[key] = format_date(day, self._short if short else _DATE_FORMAT, locale=self.locale)
        return self._dates[key]


@lru_cache(maxsize=32)
def _patterns(locale_id: str) -> tuple[Locale, NumberPattern, NumberPattern, str]:
    locale = Locale.parse(locale_id)
    money = locale.currency_formats["standard"]
    bare = ";".join(p.replace("¤", "").strip(" \xa0\u202f") for p in money.pattern.split(";"))
    short = locale.date_formats["short"].pattern
    if "yyyy" not in short:
        short = short.replace("yy", "y")
    return locale, money, parse_pattern(bare), short
