"""Write an export file in the ``urn:invoicebot:xml-export:orders:1.0`` format, streamed.

``write_orders`` writes through lxml's incremental ``etree.xmlfile``: each order is written
as it is read from ``orders`` and nothing of it is kept, so memory does not grow with the
number of orders (only the per-currency file totals are kept). The bytes depend only on the
input: same header and orders → same bytes (a re-upload after a crash is the same file).

Layout (documented element by element in ``docs/xml/invoicebot-orders-1.0.xsd``): UTF-8,
two-space indentation, ``Header`` → ``SkippedOrders`` → ``Orders`` → ``FileTotals``. Amounts
are plain decimals with two places (three for currencies whose minor unit has three, e.g. BHD),
unit costs with two to four, VAT rates as percentages without trailing zeros (``20``, ``5.5``),
times as ``2026-12-02T09:30:00+00:00``.

A value the format cannot carry (see ``records``) raises ``XmlExportInvalid`` naming the order;
what was written to ``out`` until then is not a valid file and must be discarded (callers write
to a temporary file).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import BinaryIO

from lxml import etree

from invoicing.billing.money import minor_unit
from invoicing.integrations.xml_export.records import (
    ExportHeader,
    ExportLine,
    ExportOrder,
    clean_text,
    header_problem,
    order_problem,
    utc_text,
)
from invoicing.integrations.xml_export.schema import NAMESPACE, SCHEMA_VERSION, XmlExportInvalid

__all__ = ["NAMESPACE", "SCHEMA_VERSION", "money_text", "rate_text", "unit_cost_text", "write_orders"]

_INDENT = "  "


@lru_cache(maxsize=64)
def _places(currency: str) -> int:
    return max(2, -int(minor_unit(currency).as_tuple().exponent))


def money_text(amount: Decimal, currency: str) -> str:
    """An amount as written: two decimals, or the currency's minor unit when it has more (never rounded:
    ``records.order_problem`` refuses amounts that are not multiples of the minor unit)."""
    return f"{amount:.{_places(currency)}f}"


def unit_cost_text(amount: Decimal) -> str:
    """A unit cost: at least two decimals, up to the four the price columns hold."""
    exponent = int(amount.normalize().as_tuple().exponent)
    return f"{amount:.{max(2, -exponent)}f}"


def rate_text(rate: Decimal) -> str:
    """A VAT rate in percent without trailing zeros: ``20``, ``5.5``, ``0``."""
    text = f"{rate:f}"
    return (text.rstrip("0").rstrip(".") or "0") if "." in text else text


@dataclass
class _CurrencyTotal:
    orders: int = 0
    net: Decimal = Decimal(0)
    vat: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)


class _Out:
    """Indented elements on an ``etree.xmlfile`` (whitespace between elements only, never inside values)."""

    def __init__(self, xf: etree._IncrementalFileWriter) -> None:
        self.xf = xf

    def leaf(self, depth: int, name: str, text: str, attrib: dict[str, str] | None = None) -> None:
        self.xf.write("\n" + _INDENT * depth)
        with self.xf.element(f"{{{NAMESPACE}}}{name}", attrib or {}):
            if text:
                self.xf.write(text)

    @contextmanager
    def block(self, depth: int, name: str, attrib: dict[str, str] | None = None) -> Iterator[None]:
        self.xf.write("\n" + _INDENT * depth)
        with self.xf.element(f"{{{NAMESPACE}}}{name}", attrib or {}):
            yield
            self.xf.write("\n" + _INDENT * depth)


def write_orders(out: BinaryIO, header: ExportHeader, orders: Iterable[ExportOrder]) -> int:
    """Write the file of ``header`` and ``orders`` (in the order given) to ``out``; return the order count.

    Raises ``XmlExportInvalid`` (nothing usable written) if the header or an order cannot be written.
    """
    problem = header_problem(header)
    if problem is not None:
        raise XmlExportInvalid(f"Cannot write {header.file_name}: {problem}.")
    totals: dict[str, _CurrencyTotal] = {}
    count = 0
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(f"{{{NAMESPACE}}}OrderExport", {"version": SCHEMA_VERSION}, nsmap={None: NAMESPACE}):
            w = _Out(xf)
            _header(w, header)
            _skipped(w, header.skipped)
            with w.block(1, "Orders"):
                for order in orders:
                    problem = order_problem(order)
                    if problem is not None:
                        raise XmlExportInvalid(f"Cannot write order {order.order_ref!r} to {header.file_name}: "
                                               f"{problem}.")
                    _order(w, order)
                    total = totals.setdefault(order.currency, _CurrencyTotal())
                    total.orders += 1
                    total.net += order.net_total
                    total.vat += order.vat_total
                    total.gross += order.gross_total
                    count += 1
            _file_totals(w, count, len(header.skipped), totals)
            xf.write("\n")
    return count


def _header(w: _Out, header: ExportHeader) -> None:
    with w.block(1, "Header"):
        w.leaf(2, "Tenant", header.tenant)
        w.leaf(2, "Company", header.company)
        w.leaf(2, "CompanyName", clean_text(header.company_name))
        w.leaf(2, "Sequence", str(header.sequence))
        w.leaf(2, "FileName", header.file_name)
        w.leaf(2, "Created", utc_text(header.created_at))
        with w.block(2, "Period"):
            if header.starting_from is not None:
                w.leaf(3, "DispatchedFrom", utc_text(header.starting_from))
            w.leaf(3, "DispatchedBefore", utc_text(header.cutoff))


def _skipped(w: _Out, skipped: tuple[tuple[str, str], ...]) -> None:
    with w.block(1, "SkippedOrders", {"count": str(len(skipped))}):
        for ref, reason in skipped:
            with w.block(2, "SkippedOrder"):
                w.leaf(3, "OrderRef", ref)
                w.leaf(3, "Reason", clean_text(reason))


def _order(w: _Out, order: ExportOrder) -> None:
    currency = order.currency
    with w.block(2, "Order", {"revision": str(order.revision)}):
        w.leaf(3, "OrderId", str(order.order_id))
        w.leaf(3, "OrderRef", order.order_ref)
        w.leaf(3, "DispatchedAt", utc_text(order.dispatched_at))
        w.leaf(3, "ShipToCountry", order.ship_to_country)
        w.leaf(3, "Currency", currency)
        if order.invoice_number is not None:
            w.leaf(3, "InvoiceNumber", order.invoice_number)
        if order.error is not None:
            w.leaf(3, "Error", clean_text(order.error))
        with w.block(3, "Lines"):
            for number, line in enumerate(order.lines, start=1):
                _line(w, number, line, currency)
        with w.block(3, "Shipping"):
            w.leaf(4, "Net", money_text(order.shipping_net, currency))
            w.leaf(4, "Vat", money_text(order.shipping_vat, currency))
        with w.block(3, "Totals"):
            w.leaf(4, "Net", money_text(order.net_total, currency))
            w.leaf(4, "Vat", money_text(order.vat_total, currency))
            w.leaf(4, "Gross", money_text(order.gross_total, currency))


def _line(w: _Out, number: int, line: ExportLine, currency: str) -> None:
    with w.block(4, "Line", {"number": str(number)}):
        w.leaf(5, "Sku", line.sku)
        w.leaf(5, "Description", clean_text(line.description))
        w.leaf(5, "Quantity", str(line.quantity))
        w.leaf(5, "UnitCost", unit_cost_text(line.unit_cost))
        w.leaf(5, "Net", money_text(line.net, currency))
        w.leaf(5, "VatRate", rate_text(line.vat_rate))
        w.leaf(5, "VatCategory", line.vat_category)
        w.leaf(5, "Vat", money_text(line.vat, currency))


def _file_totals(w: _Out, count: int, skipped: int, totals: dict[str, _CurrencyTotal]) -> None:
    with w.block(1, "FileTotals"):
        w.leaf(2, "OrderCount", str(count))
        w.leaf(2, "SkippedCount", str(skipped))
        for currency in sorted(totals):
            total = totals[currency]
            with w.block(2, "CurrencyTotal", {"currency": currency}):
                w.leaf(3, "OrderCount", str(total.orders))
                w.leaf(3, "Net", money_text(total.net, currency))
                w.leaf(3, "Vat", money_text(total.vat, currency))
                w.leaf(3, "Gross", money_text(total.gross, currency))
