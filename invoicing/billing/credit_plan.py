"""What a credit note may credit: the pure arithmetic of "never beyond what remains".

An invoice line can be credited in parts (a quantity of its units) over several credit
notes; an invoice can be credited until nothing remains. The rules, over plain values:

* **Per line**: the credited quantity of a line never exceeds its invoiced quantity, and its
  credited net never exceeds its invoiced net. ``q`` units are credited for
  ``line_net(q, unit cost, unit shipping)`` (``invoicing.billing.money``), capped at what
  remains of the line's net; the **last** units of a line take exactly the rest of its net,
  so a line credited in parts adds up to the cent to what was invoiced.
* **Per VAT band** (category and rate, as on the invoice): a credit note's VAT per band is
  computed with the money rule (once per band over the line nets, ROUND_HALF_UP), capped at
  the band's remaining VAT; a credit note that clears a band's remaining net credits exactly
  the remaining VAT. So the VAT credited never exceeds the VAT invoiced, and invoice minus
  all its credit notes is exactly zero once everything is credited.
* Amounts on a credit note are **positive**: it credits, it is not a negative invoice.

``lines=`` selects invoice lines by their printed position (1-based): ``1,4-6`` credits what
remains of lines 1, 4, 5, 6; ``2:1`` credits one unit of line 2; ``all`` credits everything
that remains (void).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from invoicing.billing.document import DocumentLine
from invoicing.billing.money import HUNDRED, ZERO, line_net, plain, round_money
from invoicing.errors import Conflict, InvalidInput

#: A VAT band's key: (EN 16931 category, rate percent without trailing zeros).
BandKey = tuple[str, Decimal]
#: A selection: invoice line position → units to credit (``None``: all that remains of it).
Selection = dict[int, int | None]

_MAX_SELECTION = 100  # characters of ``lines=``; more is a typo, not a request


@dataclass(frozen=True)
class CreditableLine:
    """One invoice line with what earlier credit notes already credited of it."""

    invoice_line_id: int
    position: int
    order_id: int
    order_ref: str
    dispatched_at: datetime
    sku: str
    description: str
    quantity: int
    unit_cost: Decimal
    unit_shipping: Decimal
    tax_rate: Decimal
    vat_category: str
    net: Decimal
    credited_quantity: int = 0
    credited_net: Decimal = ZERO

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.credited_quantity

    @property
    def remaining_net(self) -> Decimal:
        return self.net - self.credited_net

    @property
    def band(self) -> BandKey:
        return band_key(self.vat_category, self.tax_rate)


@dataclass(frozen=True)
class CreditedLine(DocumentLine):
    """A line as the credit note prints it, plus the invoice line it credits."""

    invoice_line_id: int = 0
    invoice_position: int = 0
    order_id: int = 0


@dataclass(frozen=True)
class Band:
    """Net and VAT of one VAT band (category and rate)."""

    category: str
    rate: Decimal
    net: Decimal
    tax: Decimal


@dataclass(frozen=True)
class CreditPlan:
    """What one credit note credits, and what remains on the invoice after it."""

    currency: str
    lines: tuple[CreditedLine, ...]
    bands: tuple[Band, ...]
    net: Decimal
    tax: Decimal
    gross: Decimal
    remaining_net: Decimal
    remaining_tax: Decimal
    remaining_gross: Decimal
    #: Orders none of whose lines remain on the invoice after this credit note.
    cleared_orders: tuple[int, ...]
    #: Orders of this credit note of which a line (or part of one) stays on the invoice.
    partly_credited_orders: tuple[str, ...]

    @property
    def order_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(line.order_id for line in self.lines))


def band_key(category: str, rate: Decimal) -> BandKey:
    return (category or "S", plain(Decimal(rate)))


def parse_selection(text: str) -> Selection | None:
    """``lines=`` as positions → units (``None`` = all that remains of it); ``all`` → ``None``.

    Accepts ``3``, ``4-6`` (a range, both ends included) and ``2:1`` (one unit of line 2),
    separated by commas, spaces tolerated. Raises ``InvalidInput("lines", …)`` otherwise,
    also for a line named twice.
    """
    value = text.strip().lower()
    if value == "all":
        return None
    if not value or len(value) > _MAX_SELECTION:
        raise InvalidInput("lines", "give line numbers as printed on the invoice, e.g. lines=1,4-6 or lines=all")
    selection: Selection = {}
    for raw in value.split(","):
        item = raw.strip()
        units: int | None = None
        if ":" in item:
            item, _, count = item.partition(":")
            units = _number(count.strip(), "a quantity")
            if units < 1:
                raise InvalidInput("lines", f"{raw.strip()!r}: credit at least 1 unit")
        first, dash, last = item.strip().partition("-")
        low = _number(first.strip(), "a line number")
        high = _number(last.strip(), "a line number") if dash else low
        if low < 1 or high < low or (units is not None and dash):
            raise InvalidInput("lines", f"{raw.strip()!r} is not a line, a range like 4-6 or a line:quantity like 2:1")
        for position in range(low, min(high, low + 10_000) + 1):
            if position in selection:
                raise InvalidInput("lines", f"line {position} is named twice")
            selection[position] = units
    return selection


def _number(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise InvalidInput("lines", f"{text!r} is not {what}; e.g. lines=1,4-6 or lines=2:1")
    return int(text)


def plan_credit(
    invoice_number: str,
    currency: str,
    lines: Sequence[CreditableLine],
    invoice_bands: Iterable[Band],
    credited_bands: Iterable[Band],
    selection: Selection | None,
) -> CreditPlan:
    """The credit note for ``selection`` of the invoice's ``lines`` (``None``: everything that remains).

    ``invoice_bands`` is the invoice's VAT breakdown, ``credited_bands`` every band of its
    earlier credit notes. Raises ``Conflict`` when nothing remains to credit and
    ``InvalidInput("lines", …)`` for a line that does not exist, is fully credited, or has
    fewer units left than asked.
    """
    by_position = {line.position: line for line in lines}
    if selection is None:
        chosen = {line.position: line.remaining_quantity for line in lines if line.remaining_quantity > 0}
        if not chosen:
            raise Conflict(f"Invoice {invoice_number} is already fully credited; nothing remains to credit.")
    else:
        chosen = {position: _units(invoice_number, by_position, position, units)
                  for position, units in sorted(selection.items())}
    credited: list[CreditedLine] = []
    for position, units in sorted(chosen.items()):
        line = by_position[position]
        net = line.remaining_net if units == line.remaining_quantity else min(
            line_net(units, line.unit_cost, line.unit_shipping, currency), line.remaining_net)
        credited.append(CreditedLine(
            order_ref=line.order_ref, dispatched_at=line.dispatched_at, sku=line.sku, description=line.description,
            quantity=units, unit_cost=line.unit_cost, unit_shipping=line.unit_shipping, tax_rate=line.tax_rate,
            net=net, vat_category=line.vat_category, invoice_line_id=line.invoice_line_id,
            invoice_position=position, order_id=line.order_id,
        ))
    remaining = _remaining_bands(invoice_bands, credited_bands)
    bands = _credit_bands(credited, remaining, currency)
    net = sum((b.net for b in bands), ZERO)
    tax = sum((b.tax for b in bands), ZERO)
    left_net = sum((r.net for r in remaining.values()), ZERO) - net
    left_tax = sum((r.tax for r in remaining.values()), ZERO) - tax
    cleared, partly = _orders(lines, credited)
    return CreditPlan(currency=currency, lines=tuple(credited), bands=bands, net=net, tax=tax, gross=net + tax,
                      remaining_net=left_net, remaining_tax=left_tax, remaining_gross=left_net + left_tax,
                      cleared_orders=cleared, partly_credited_orders=partly)


def _units(invoice_number: str, by_position: Mapping[int, CreditableLine], position: int, units: int | None) -> int:
    line = by_position.get(position)
    if line is None:
        raise InvalidInput("lines", f"invoice {invoice_number} has lines 1–{len(by_position)}; there is no line "
                                    f"{position}")
    if line.remaining_quantity <= 0:
        raise InvalidInput("lines", f"line {position} of invoice {invoice_number} is already fully credited")
    if units is None:
        return line.remaining_quantity
    if units > line.remaining_quantity:
        raise InvalidInput("lines", f"line {position} has {line.remaining_quantity} unit(s) left to credit "
                                    f"({line.quantity} invoiced, {line.credited_quantity} already credited)")
    return units


def _remaining_bands(invoice_bands: Iterable[Band], credited_bands: Iterable[Band]) -> dict[BandKey, Band]:
    left: dict[BandKey, Band] = {}
    for band in invoice_bands:
        key = band_key(band.category, band.rate)
        left[key] = Band(key[0], key[1], band.net, band.tax)
    for band in credited_bands:
        key = band_key(band.category, band.rate)
        was = left.get(key, Band(key[0], key[1], ZERO, ZERO))
        left[key] = Band(key[0], key[1], was.net - band.net, was.tax - band.tax)
    return left


def _credit_bands(lines: Sequence[CreditedLine], remaining: Mapping[BandKey, Band], currency: str) -> tuple[Band, ...]:
    """One band per (category, rate) of ``lines``, highest rate first (as on the invoice)."""
    nets: dict[BandKey, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        nets[band_key(line.vat_category, line.tax_rate)] += line.net
    bands = []
    for key, net in sorted(nets.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        net = round_money(net, currency)
        left = remaining.get(key, Band(key[0], key[1], net, round_money(net * key[1] / HUNDRED, currency)))
        tax = round_money(net * key[1] / HUNDRED, currency)
        tax = left.tax if net >= left.net else max(ZERO, min(tax, left.tax))
        bands.append(Band(category=key[0], rate=key[1], net=net, tax=tax))
    return tuple(bands)


def _orders(lines: Sequence[CreditableLine],
            credited: Sequence[CreditedLine]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    now: dict[int, int] = defaultdict(int)
    for credit in credited:
        now[credit.invoice_line_id] += credit.quantity
    left: dict[int, int] = defaultdict(int)
    refs: dict[int, str] = {}
    for line in lines:
        refs[line.order_id] = line.order_ref
        left[line.order_id] += line.remaining_quantity - now.get(line.invoice_line_id, 0)
    touched = dict.fromkeys(credit.order_id for credit in credited)
    cleared = tuple(order for order in touched if left[order] == 0)
    partly = tuple(refs[order] for order in touched if left[order] > 0)
    return cleared, partly
