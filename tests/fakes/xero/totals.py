"""Line and document totals as Xero computes them, so a client can compare its own figures.

- ``UnitAmount`` is rounded to 2 decimal places (4 with ``unitdp=4``), ``Quantity`` to 4;
- ``LineAmount = round(Quantity × UnitAmount × (1 − DiscountRate/100), 2)``;
- tax is computed and rounded per line from the organisation's rate for the line's ``TaxType``:
  Exclusive ``round(LineAmount × rate, 2)``, Inclusive ``round(LineAmount × rate / (1 + rate), 2)``,
  NoTax 0;
- ``SubTotal`` is the sum of line amounts net of tax, ``TotalTax`` the sum of line taxes,
  ``Total = SubTotal + TotalTax``.
Rounding is half away from zero (``ROUND_HALF_UP`` on Decimal). Xero's per-organisation "round tax per
invoice" setting is not modelled: per line is the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def places(value: Decimal, digits: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineTotal:
    quantity: Decimal
    unit_amount: Decimal
    line_amount: Decimal
    tax_amount: Decimal


def line_total(*, quantity: Decimal, unit_amount: Decimal, discount_rate: Decimal, rate_percent: Decimal,
               amount_types: str, unitdp: int = 2) -> LineTotal:
    quantity = places(quantity, 4)
    unit_amount = places(unit_amount, 4 if unitdp == 4 else 2)
    amount = places(quantity * unit_amount * (1 - discount_rate / 100), 2)
    rate = rate_percent / 100
    if amount_types == "NoTax":
        tax = Decimal("0.00")
    elif amount_types == "Inclusive":
        tax = places(amount * rate / (1 + rate), 2)
    else:
        tax = places(amount * rate, 2)
    return LineTotal(quantity, unit_amount, amount, tax)


def document_totals(lines: list[LineTotal], amount_types: str) -> tuple[Decimal, Decimal, Decimal]:
    """(SubTotal, TotalTax, Total) of a document's lines."""
    tax = sum((line.tax_amount for line in lines), Decimal("0.00"))
    amounts = sum((line.line_amount for line in lines), Decimal("0.00"))
    subtotal = amounts - tax if amount_types == "Inclusive" else amounts
    return subtotal, tax, subtotal + tax
