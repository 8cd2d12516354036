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
    """Locale-aware formatting of the figures of one document.

    Figures are formatted through a process-wide cache keyed by the locale, the currency and
    the decimal's exact text (``str``: ``1.10`` and ``1.1`` are equal decimals, not equal
    texts): unit prices, rates and many totals repeat from invoice to invoice.
    """

    def __init__(self, locale_id: str, currency: str, timezone: str) -> None:
        self.locale, _, _, self._short = _patterns(locale_id)
        self._locale_id = locale_id
        self.currency = currency
        self.zone = ZoneInfo(timezone)
        self._dates: dict[tuple[date, bool], str] = {}

    def money(self, amount: Decimal, currency: str | None = None) -> str:
        """With the currency sign: "£1,234.50", "1.234,50 €"."""
        return _formatted(self._locale_id, currency or self.currency, "money", str(amount))

    def amount(self, amount: Decimal) -> str:
        """Without the sign, for the table whose header names the currency."""
        return _formatted(self._locale_id, self.currency, "amount", str(amount))

    def unit(self, amount: Decimal) -> str:
        """A unit price: the currency's digits, or more when the price has them ("3.333"),
        so every line net can be recomputed from the printed figures."""
        return _formatted(self._locale_id, self.currency, "unit", str(amount))

    def rate(self, rate: Decimal) -> str:
        """A VAT rate in percent without trailing zeros: "20", "5,5"."""
        return _formatted(self._locale_id, "", "rate", str(rate))

    def number(self, value: Decimal) -> str:
        """A plain decimal as written in the locale, every given digit kept (an exchange rate: "0,8523")."""
        return _formatted(self._locale_id, "", "number", str(value))

    def day(self, moment: datetime, *, short: bool = False) -> str:
        """The local date of an aware datetime: "01 Nov 2026", or short "01/11/2026"."""
        return self.calendar_date(moment.astimezone(self.zone).date(), short=short)

    def calendar_date(self, day: date, *, short: bool = False) -> str:
        """A calendar date: "01 Nov 2026", or short "01/11/2026"."""
        key = (day, short)
        if key not in self._dates:
            self._dates[key] = format_date(day, self._short if short else _DATE_FORMAT, locale=self.locale)
        return self._dates[key]


@lru_cache(maxsize=8192)
def _formatted(locale_id: str, currency: str, kind: str, text: str) -> str:
    """One figure of ``Formats`` (``kind`` is the method), from the decimal's exact text."""
    locale, money, number, _ = _patterns(locale_id)
    value = Decimal(text)
    if kind == "money":
        return str(money.apply(value, locale, currency=currency, currency_digits=True))
    if kind == "amount":
        return str(number.apply(value, locale, currency=currency, currency_digits=True))
    if kind == "unit":
        return str(number.apply(value.normalize(), locale, currency=currency, currency_digits=True,
                                decimal_quantization=False))  # fmt: skip
    if kind == "rate":
        return str(_RATE_PATTERN.apply(value, locale))
    return str(_RATE_PATTERN.apply(value, locale, decimal_quantization=False))


@lru_cache(maxsize=32)
def _patterns(locale_id: str) -> tuple[Locale, NumberPattern, NumberPattern, str]:
    locale = Locale.parse(locale_id)
    money = locale.currency_formats["standard"]
    bare = ";".join(p.replace("¤", "").strip(" \xa0\u202f") for p in money.pattern.split(";"))
    short = locale.date_formats["short"].pattern
    if "yyyy" not in short:
        short = short.replace("yy", "y")
    return locale, money, parse_pattern(bare), short
