"""Which orders the next XML export file carries, as ``records.ExportOrder`` values (and which are skipped, why).

The emailer's eligibility rules (``invoicing.billing.eligibility``) decide what is in
scope — dispatched before the cutoff, from ``starting_from``, never on hold, errors only
with ``include_errors`` — except "already invoiced": an invoiced order is exported too
(with its invoice number), once. On top of that, the ledger (``XmlExportItem``) decides:

* never exported → revision 0;
* exported, and its record now has another fingerprint, and not yet invoiced → the next
  revision (an accountant's import replaces the earlier one);
* exported with the same fingerprint, or exported and invoiced since → not again (silently:
  nothing to report).

An order that cannot be priced (``invoicing.billing.pricing``) or written
(``records.order_problem``) is skipped with its reason and never blocks the others.

Prices: an invoiced order is exported from its invoice's lines (the immutable snapshot);
any other order from today's price book. A line's ``net`` is its goods
(quantity × unit cost); the order's shipping is the difference to the invoice line nets,
so ``net_total`` is what the invoice says (or will say). VAT is per rate over the order,
rounded once per rate (``money.totals``).

Memory stays bounded in the number of orders: orders are read in chunks and each built
record is spooled to ``spool`` (pickled), not kept; what is returned is the ledger rows
and the skipped list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import reduce
from operator import and_
from typing import IO, Any

from tortoise.expressions import Q

from invoicing.billing import eligibility
from invoicing.billing.eligibility import OrderFacts, Window, ineligibility_reason
from invoicing.billing.money import round_money, totals
from invoicing.billing.pricing import load_price_book, price_items
from invoicing.billing.runs import Skipped
from invoicing.billing.vat_rules import derive_category
from invoicing.integrations.xml_export.records import ExportLine, ExportOrder, order_problem
from models import Company, Integration, Invoice, InvoiceLine, Order, OrderItem, Tenant, XmlExportItem

#: Orders read (and locked, on PostgreSQL) per query.
CHUNK = 1000


@dataclass(frozen=True)
class Ledgered:
    """One order that goes into the file: the ledger row to write."""

    order_id: int
    revision: int
    fingerprint: str


@dataclass(frozen=True)
class Selection:
    items: tuple[Ledgered, ...]
    skipped: tuple[Skipped, ...]

    @property
    def revisions(self) -> int:
        return sum(1 for item in self.items if item.revision > 0)


@dataclass(frozen=True)
class _Item:
    sku: str
    description: str
    quantity: int
    unit_cost: Decimal
    unit_shipping: Decimal
    rate: Decimal
    category: str
    net: Decimal  # goods + shipping, as on the invoice line


def scope(cutoff: datetime, starting_from: datetime | None) -> Q:
    """The emailer's scope rules (``eligibility.RULES``) without "already invoiced"."""
    window = Window(cutoff=cutoff.astimezone(UTC), starting_from=starting_from and starting_from.astimezone(UTC))
    return reduce(and_, (rule.sql(window) for rule in eligibility.RULES
                         if rule.sql is not None and rule.reason != eligibility.ALREADY_INVOICED))


def fingerprint(order: ExportOrder) -> str:
    """SHA-256 of the order's record without its revision (what an import would see change)."""
    data = dataclasses.asdict(dataclasses.replace(order, revision=0))
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


async def select_orders(tenant: Tenant, company: Company, integration: Integration, cutoff: datetime, *,
                        spool: IO[bytes] | None, lock: bool) -> Selection:
    """Select (and, with ``spool``, pickle in file order) the company's orders for the next file.

    ``lock=True`` (inside the run's transaction, on PostgreSQL) locks the candidate orders in
    id order, as every writer of orders does, so none changes before the file is recorded.
    """
    candidates = await Order.filter(scope(cutoff, integration.starting_from), company_id=company.id) \
        .order_by("id").values_list("id", "dispatched_at")
    if lock:
        ids = [row[0] for row in candidates]
        for start in range(0, len(ids), CHUNK):
            await Order.filter(id__in=ids[start:start + CHUNK]).select_for_update().order_by("id").values_list("id")
    ordered = [row[0] for row in sorted(candidates, key=lambda r: (r[1], r[0]))]
    items: list[Ledgered] = []
    skipped: list[Skipped] = []
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start:start + CHUNK]
        for order, outcome in await _chunk(tenant, company, integration, cutoff, chunk):
            if isinstance(outcome, Skipped):
                skipped.append(outcome)
            elif outcome is not None:
                items.append(outcome)
                if spool is not None:
                    pickle.dump(order, spool, protocol=pickle.HIGHEST_PROTOCOL)
    return Selection(items=tuple(items), skipped=tuple(skipped))


def spooled(source: IO[bytes]) -> Iterator[ExportOrder]:
    """The orders ``select_orders`` spooled, in file order."""
    while True:
        try:
            yield pickle.load(source)  # our own temporary file, written just before
        except EOFError:
            return


async def _chunk(tenant: Tenant, company: Company, integration: Integration, cutoff: datetime,
                 ids: Sequence[int]) -> list[tuple[ExportOrder | None, Ledgered | Skipped | None]]:
    orders = {o.id: o for o in await Order.filter(id__in=list(ids)).prefetch_related("items")}
    last: dict[int, tuple[int, str]] = {}
    for order_id, revision, print_ in await XmlExportItem.filter(order_id__in=list(ids)).order_by("id") \
            .values_list("order_id", "revision", "fingerprint"):
        last[order_id] = (revision, print_)
    invoiced = [o for o in orders.values() if o.invoice_id is not None]
    numbers: dict[int, str] = {}
    snapshot: dict[int, list[InvoiceLine]] = {}
    if invoiced:
        numbers = dict(await Invoice.filter(id__in=list({o.invoice_id for o in invoiced}))
                       .values_list("id", "display_number"))
        on_invoice = {o.id: o.invoice_id for o in invoiced}
        for line in await InvoiceLine.filter(order_id_ref__in=list(on_invoice)).order_by("position"):
            if on_invoice.get(line.order_id_ref) == line.invoice_id:
                snapshot.setdefault(line.order_id_ref, []).append(line)
    book = await load_price_book(company.tenant_id, company.id, company.currency,
                                 (item.sku for o in orders.values() if o.invoice_id is None for item in o.items))
    out: list[tuple[ExportOrder | None, Ledgered | Skipped | None]] = []
    for order_id in ids:
        order = orders[order_id]
        previous = last.get(order_id)
        if previous is not None and order.invoice_id is not None:
            out.append((None, None))  # exported, and invoiced since: the invoice is the final word
            continue
        record = _record(tenant, company, integration, cutoff, order, book, snapshot.get(order_id),
                         numbers.get(order.invoice_id or 0), revision=previous[0] + 1 if previous else 0)
        if isinstance(record, str):
            out.append((None, Skipped(order.external_ref, record)))
            continue
        print_ = fingerprint(record)
        if previous is not None and previous[1] == print_:
            out.append((None, None))
            continue
        out.append((record, Ledgered(order_id, record.revision, print_)))
    return out


def _record(tenant: Tenant, company: Company, integration: Integration, cutoff: datetime, order: Order,
            book: Any, invoice_lines: list[InvoiceLine] | None, invoice_number: str | None, *,
            revision: int) -> ExportOrder | str:
    """The order's record, or why it is skipped."""
    facts = OrderFacts(status=order.status, dispatched_at=order.dispatched_at, on_hold=order.on_hold,
                       error=order.error, invoiced=False, item_count=len(order.items))
    reason = ineligibility_reason(facts, cutoff=cutoff, starting_from=integration.starting_from,
                                  include_errors=integration.include_errors)
    if reason is not None:
        return reason
    currency = company.currency
    if order.invoice_id is not None and invoice_lines:
        items = [_Item(l.sku, l.description, l.quantity, Decimal(l.unit_cost), Decimal(l.unit_shipping),
                       Decimal(l.tax_rate), l.vat_category, Decimal(l.net)) for l in invoice_lines]
    else:
        ordered: list[OrderItem] = sorted(order.items, key=lambda i: (i.position, i.id))
        priced = price_items(ordered, book)
        if isinstance(priced, str):
            return priced
        items = [_Item(p.item.sku, p.item.description or p.price.product_name, p.item.quantity, p.price.cost_price,
                       p.price.shipping, p.price.tax_rate,
                       p.price.vat_category or derive_category(tenant.country, company.country, company.vat_number,
                                                               p.price.tax_rate), p.net)
                 for p in priced]
    money = totals(((i.net, i.rate) for i in items), currency)
    lines = []
    for i in items:
        goods = round_money(Decimal(i.quantity) * i.unit_cost, currency)
        lines.append(ExportLine(sku=i.sku, description=i.description, quantity=i.quantity, unit_cost=i.unit_cost,
                                net=goods, vat_rate=i.rate, vat_category=i.category,
                                vat=round_money(goods * i.rate / 100, currency)))
    goods_net = sum((line.net for line in lines), Decimal(0))
    lines_vat = sum((line.vat for line in lines), Decimal(0))
    assert order.dispatched_at is not None
    record = ExportOrder(
        order_id=order.id, order_ref=order.external_ref, revision=revision,
        dispatched_at=order.dispatched_at.astimezone(UTC),
        ship_to_country=str((order.ship_to or {}).get("country") or company.country).upper(),
        currency=currency, lines=tuple(lines), shipping_net=money.net - goods_net,
        shipping_vat=max(Decimal(0), money.tax - lines_vat), net_total=money.net, vat_total=money.tax,
        gross_total=money.gross, invoice_number=invoice_number, error=order.error or None,
    )
    return order_problem(record) or record
