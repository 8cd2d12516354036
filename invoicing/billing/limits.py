"""How large an amount, a quantity or an id may be: the limits of the columns they are stored in.

Every limit here is read from the column definitions in ``models`` (``numeric(p, s)`` holds less
than ``10**(p-s)``; an ``IntField`` is a 32-bit integer on PostgreSQL), so a migration that
widens a column widens the limit with it. Entry points (feed, CSV, Slack) refuse values past
them with a message that names the limit; the invoice run checks them again on what is stored,
because rows written before these checks (or by hand) may hold anything SQLite accepted.

The limits chain, so that every line of valid input fits its column:

* a quantity is at most ``MAX_QUANTITY`` (a business bound, far inside the integer column);
* a unit price — cost price **plus** shipping, the amount a line multiplies — is at most
  ``MAX_UNIT_PRICE``: ``MAX_QUANTITY`` units of it still fit an invoice line
  (``MAX_LINE_NET``, the ``invoice_line.net`` column). That is ``9,999,999.9999`` per unit,
  in any currency, with columns of ``numeric(16,4)`` lines and 100,000 units;
* what no entry point can bound is a sum of lines (1,000 items an order, VAT up to 100 % on
  top): an invoice's net, VAT and gross must each stay within ``MAX_INVOICE_TOTAL`` (the
  ``invoice`` total columns). ``InvoiceRoom`` keeps a run's plan inside it: an order too large
  for any invoice is skipped and reported; when the next order no longer fits, the invoice is
  full and the rest waits for the next run (``DEFERRED``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tortoise.fields import DecimalField, IntField
from tortoise.models import Model

from invoicing.billing.money import Totals, add_lines, band_totals
from invoicing.errors import InvalidInput
from models import Invoice, InvoiceLine, OrderItem, Price


def _largest(model: type[Model], name: str) -> Decimal:
    """The largest value a ``numeric(p, s)`` column holds: ``10**(p-s) - 10**-s``."""
    column: Any = model._meta.fields_map[name]
    assert isinstance(column, DecimalField)
    return Decimal(10) ** (column.max_digits - column.decimal_places) - Decimal(1).scaleb(-column.decimal_places)


def _places(model: type[Model], name: str) -> int:
    column: Any = model._meta.fields_map[name]
    assert isinstance(column, DecimalField)
    return int(column.decimal_places)


def _int_range(model: type[Model], name: str) -> tuple[int, int]:
    column: Any = model._meta.fields_map[name]
    assert isinstance(column, IntField)
    return int(column.constraints["ge"]), int(column.constraints["le"])


def _shown(amount: Decimal) -> str:
    """A limit as people write it: ``9,999,999.9999``."""
    return f"{amount:,f}"


#: The decimal places an amount is stored with (the scale of the price and line columns).
AMOUNT_PLACES = _places(Price, "cost_price")
#: The range of an integer id or count column (``IntField``: int4 on PostgreSQL).
MIN_INT, MAX_INT = _int_range(OrderItem, "quantity")
#: Units of one SKU on one order: a business bound, far inside the column.
MAX_QUANTITY = 100_000
#: The largest net of one invoice line (``invoice_line.net``).
MAX_LINE_NET = _largest(InvoiceLine, "net")
#: The largest net, VAT and gross of one invoice (the smallest of its total columns).
MAX_INVOICE_TOTAL = min(_largest(Invoice, name) for name in ("net_total", "tax_total", "gross_total"))
#: The largest cost price + shipping of one unit: ``MAX_QUANTITY`` of them fit ``MAX_LINE_NET``.
MAX_UNIT_PRICE = (MAX_LINE_NET / MAX_QUANTITY).quantize(Decimal(1).scaleb(-AMOUNT_PLACES), rounding=ROUND_DOWN)
#: What the per-unit price columns themselves hold (larger than ``MAX_UNIT_PRICE``; rows written
#: before that bound may be up to here on PostgreSQL, and anything on SQLite).
MAX_STORED_UNIT = min(_largest(Price, "cost_price"), _largest(Price, "shipping"),
                      _largest(InvoiceLine, "unit_cost"), _largest(InvoiceLine, "unit_shipping"))
assert MAX_UNIT_PRICE <= MAX_STORED_UNIT and MAX_QUANTITY <= MAX_INT

#: The reason reported for orders a run leaves for the next one because its invoice is full.
DEFERRED = f"left for the next run: this invoice reached its limit ({_shown(MAX_INVOICE_TOTAL)})"
UNIT_PRICE_LIMIT = (f"at most {_shown(MAX_UNIT_PRICE)} per unit (cost price + shipping), so that "
                    f"{MAX_QUANTITY:,} units fit on an invoice line (at most {_shown(MAX_LINE_NET)})")


def check_unit_price(cost_price: Decimal, shipping: Decimal, *, cost_field: str, shipping_field: str) -> None:
    """Refuse a price whose cost + shipping per unit is over ``MAX_UNIT_PRICE`` (``InvalidInput`` naming it).

    The error names the cost field when the cost alone is too large, else the shipping field.
    """
    if cost_price > MAX_UNIT_PRICE:
        raise InvalidInput(cost_field, f"{cost_price} is too large; {UNIT_PRICE_LIMIT}")
    if cost_price + shipping > MAX_UNIT_PRICE:
        raise InvalidInput(shipping_field, f"{cost_price} + {shipping} is too large; {UNIT_PRICE_LIMIT}")


def line_problem(quantity: int, unit_cost: Decimal, unit_shipping: Decimal, tax_rate: Decimal) -> str | None:
    """Why a stored item cannot become an invoice line, or None.

    For values read back from the database, which older versions (and SQLite) let through:
    a quantity outside ``1..MAX_INT``, a price outside the line's columns, a tax rate outside
    0-100 %. Check this before computing the net: a huge price would overflow ``Decimal``'s
    precision there.
    """
    if not 1 <= quantity <= MAX_INT:
        return f"quantity {quantity} is not between 1 and {MAX_INT:,}"
    for name, amount in (("cost price", unit_cost), ("shipping", unit_shipping)):
        if not amount.is_finite() or not 0 <= amount <= MAX_STORED_UNIT:
            return f"its {name} {amount} is not between 0 and {_shown(MAX_STORED_UNIT)}"
    if not tax_rate.is_finite() or not 0 <= tax_rate <= 100:
        return f"its tax rate {tax_rate} is not between 0 and 100 %"
    if Decimal(quantity) * (unit_cost + unit_shipping) > MAX_LINE_NET:
        return (f"a line of {quantity} × {unit_cost + unit_shipping} is more than an invoice line holds "
                f"(at most {_shown(MAX_LINE_NET)})")
    return None


def totals_problem(money: Totals) -> str | None:
    """Why totals cannot be stored on one invoice (net, VAT or gross over ``MAX_INVOICE_TOTAL``), or None."""
    largest = max(money.net, money.tax, money.gross)
    if largest > MAX_INVOICE_TOTAL:
        return f"a total of {largest} is more than one invoice holds (at most {_shown(MAX_INVOICE_TOTAL)})"
    return None


@dataclass
class InvoiceRoom:
    """What is left of one invoice's totals (``MAX_INVOICE_TOTAL``) as a run plans orders into it."""

    currency: str
    by_rate: dict[Decimal, Decimal] = field(default_factory=dict)  # net per tax rate planned so far
    full: bool = False
    bound: Decimal = Decimal(0)  # the absolute nets of every order offered so far

    def take(self, lines: Sequence[tuple[Decimal, Decimal]]) -> str | None:
        """Plan one order's ``(net, tax rate)`` lines in, or say why not.

        An order too large for any invoice gets the reason (skipped, reported every run); once
        an order does not fit what is planned already, the invoice is full and it and every
        later order get ``DEFERRED``. Totals are computed as ``money.totals`` will compute them.
        """
        # Far below the limit the exact totals cannot reach it: every total is at most twice the
        # nets' absolute sum (a rate is at most 100 %) plus a unit of rounding per band.
        self.bound += sum((abs(net) for net, _ in lines), Decimal(0))
        if not self.full and 2 * self.bound + len(self.by_rate) + len(lines) + 2 < MAX_INVOICE_TOTAL:
            add_lines(self.by_rate, lines)
            return None
        alone: dict[Decimal, Decimal] = {}
        add_lines(alone, lines)
        problem = totals_problem(band_totals(alone, self.currency))
        if problem is not None:
            return problem
        if not self.full:
            merged = dict(self.by_rate)
            add_lines(merged, lines)
            if totals_problem(band_totals(merged, self.currency)) is None:
                self.by_rate = merged
                return None
            self.full = True
        return DEFERRED
