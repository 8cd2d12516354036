"""Money arithmetic: the one place where InvoiceBot rounds.

The rule (also in README "Money"):

* Amounts are ``Decimal`` end to end, never float.
* Cost price and shipping are per unit. A line's net is
  ``quantity × (cost price + shipping)`` rounded **once** to the currency's minor
  unit with ROUND_HALF_UP (GBP/EUR/USD: 2 decimals, JPY: 0, BHD: 3).
* VAT is computed **per tax rate** over the sum of the (rounded) line nets of that
  rate and rounded once per rate, ROUND_HALF_UP. The invoice shows this breakdown.
* Net total = Σ line nets; VAT total = Σ per-rate VAT; gross = net + VAT.

So an accountant can recompute every figure from the printed lines.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision

from invoicing.errors import InvalidInput

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@functools.lru_cache(maxsize=512)  # a few hundred ISO codes at most; babel's lookup is costly per call
def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: ``Decimal('0.01')`` for GBP, ``Decimal('1')`` for JPY."""
    return Decimal(1).scaleb(-get_currency_precision(currency.upper()))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half up to the currency's minor unit."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def line_net(quantity: int, unit_cost: Decimal, unit_shipping: Decimal, currency: str) -> Decimal:
    return round_money(Decimal(quantity) * (unit_cost + unit_shipping), currency)


@dataclass(frozen=True)
class TaxBand:
    """Net and VAT of all lines sharing one tax rate (percent)."""

    rate: Decimal
    net: Decimal
    tax: Decimal


@dataclass(frozen=True)
class Totals:
    net: Decimal
    tax: Decimal
    gross: Decimal
    bands: tuple[TaxBand, ...]


def totals(lines: Iterable[tuple[Decimal, Decimal]], currency: str) -> Totals:
    """Totals of ``(net, tax_rate_percent)`` pairs; bands sorted by rate, highest first."""
    by_rate: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    add_lines(by_rate, lines)
    return band_totals(by_rate, currency)


def add_lines(by_rate: dict[Decimal, Decimal], lines: Iterable[tuple[Decimal, Decimal]]) -> None:
    """Add ``(net, tax_rate_percent)`` pairs to the net per rate ``by_rate`` (in place)."""
    for net, rate in lines:
        key = plain(rate)
        by_rate[key] = by_rate.get(key, ZERO) + net


def band_totals(by_rate: Mapping[Decimal, Decimal], currency: str) -> Totals:
    """The totals of nets summed per rate: ``totals`` of lines is ``band_totals`` of their ``add_lines``.

    Lets a caller that adds lines one group at a time (a run checking each order against the
    invoice limits) see exactly the totals the invoice will have, without re-adding every line.
    """
    bands = tuple(
        TaxBand(rate=rate, net=round_money(net, currency), tax=round_money(net * rate / HUNDRED, currency))
        for rate, net in sorted(by_rate.items(), key=lambda kv: kv[0], reverse=True)
    )
    net_total = round_money(sum((b.net for b in bands), ZERO), currency)
    tax_total = round_money(sum((b.tax for b in bands), ZERO), currency)
    return Totals(net=net_total, tax=tax_total, gross=net_total + tax_total, bands=bands)


def plain(value: Decimal) -> Decimal:
    """``Decimal('20.000')`` → ``Decimal('20')`` without exponent notation (``2E+1``)."""
    return Decimal(format(value.normalize(), "f"))


def parse_amount(value: object, field: str, *, at_most: Decimal, allow_negative: bool = False,
                 max_places: int = 4) -> Decimal:
    """Parse a decimal string (or int/Decimal) strictly; floats are refused (they lie about cents).

    Any spelling ``Decimal`` reads is accepted (``1E+3``, ``-0``) as long as the value is finite,
    has at most ``max_places`` decimals and is at most ``at_most`` (the refusal names the limit;
    see ``invoicing.billing.limits`` for where limits come from). ``-0`` is returned as ``0``.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidInput(field, "must be a decimal string such as \"12.50\", not a float")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(field, f"{value!r} is not a number; write it like 12.50") from None
    if not amount.is_finite():
        raise InvalidInput(field, "must be a finite number")
    if amount < 0 and not allow_negative:
        raise InvalidInput(field, "must not be negative")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > max_places:
        raise InvalidInput(field, f"at most {max_places} decimal places")
    if amount.copy_abs() > at_most:  # copy_abs, not abs(): no context, so 1E+999999999 cannot overflow
        raise InvalidInput(field, f"is too large; at most {at_most:,f}")
    return amount + 0  # -0 → 0 (Decimal addition drops the sign of a zero)


def parse_tax_rate(value: object, field: str = "tax") -> Decimal:
    try:
        return parse_amount(value, field, at_most=HUNDRED, max_places=3)
    except InvalidInput as exc:
        if exc.reason.startswith("is too large"):
            raise InvalidInput(field, "is a percentage between 0 and 100 (e.g. 20 for 20 %)") from None
        raise
