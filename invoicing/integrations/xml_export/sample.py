"""The committed sample file ``docs/xml/sample-orders-1.0.xml``, and realistic orders made on the fly.

``python -m invoicing.integrations.xml_export.sample [PATH]`` (or ``scripts/xml-sample``) writes
the sample with ``writer.write_orders`` from ``SAMPLE_HEADER``/``sample_orders()``; a test checks
the committed file is byte-for-byte what the writer produces now and that it validates, so the
sample never drifts from the format. It shows every element: two currencies, a revision, an
invoiced order, an order with an error, shipping, several VAT categories, skipped orders.

``generated_orders(n)`` yields ``n`` valid orders lazily (one at a time, nothing kept), for the
benchmark and the memory tests: figures computed with ``invoicing.billing.money``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from invoicing.billing.money import round_money
from invoicing.integrations.xml_export.file_names import file_name
from invoicing.integrations.xml_export.records import ExportHeader, ExportLine, ExportOrder
from invoicing.integrations.xml_export.schema import schema_path
from invoicing.integrations.xml_export.writer import write_orders

__all__ = ["SAMPLE_HEADER", "export_order", "generated_orders", "main", "sample_orders", "sample_path"]

_CUTOFF = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)

SAMPLE_HEADER = ExportHeader(
    tenant="inkwell", company="zeta", company_name="Zeta Gifts & Prints Ltd", sequence=17,
    file_name=file_name("inkwell", "zeta", 17), created_at=datetime(2026, 11, 29, 0, 0, 42, tzinfo=UTC),
    starting_from=datetime(2026, 11, 22, 0, 0, tzinfo=UTC), cutoff=_CUTOFF,
    skipped=(("ZT-10488", "no EUR price for SKU POSTER-A2"), ("ZT-10490", "on hold")),
)


def line(sku: str, description: str, quantity: int, unit_cost: str, rate: str, category: str,
         currency: str) -> ExportLine:
    """A line with its net and VAT computed by the money rules (``quantity × unit cost``, VAT at ``rate`` %)."""
    net = round_money(quantity * Decimal(unit_cost), currency)
    return ExportLine(sku=sku, description=description, quantity=quantity, unit_cost=Decimal(unit_cost), net=net,
                      vat_rate=Decimal(rate), vat_category=category,
                      vat=round_money(net * Decimal(rate) / 100, currency))


def export_order(order_id: int, ref: str, dispatched_at: datetime, country: str, currency: str,
                 lines: tuple[ExportLine, ...], *, shipping: str = "0", shipping_rate: str = "0", revision: int = 0,
                 invoice_number: str | None = None, error: str | None = None) -> ExportOrder:
    """An order whose totals follow the money rules: VAT per rate over the lines of that rate (shipping at
    ``shipping_rate``), rounded once per rate; gross = net + VAT."""
    shipping_net = Decimal(shipping)
    by_rate: dict[Decimal, Decimal] = {}
    for item in lines:
        by_rate[item.vat_rate] = by_rate.get(item.vat_rate, Decimal(0)) + item.net
    by_rate[Decimal(shipping_rate)] = by_rate.get(Decimal(shipping_rate), Decimal(0)) + shipping_net
    vat = sum((round_money(net * rate / 100, currency) for rate, net in by_rate.items()), Decimal(0))
    net_total = sum((item.net for item in lines), Decimal(0)) + shipping_net
    return ExportOrder(
        order_id=order_id, order_ref=ref, revision=revision, dispatched_at=dispatched_at, ship_to_country=country,
        currency=currency, lines=lines, shipping_net=shipping_net,
        shipping_vat=round_money(shipping_net * Decimal(shipping_rate) / 100, currency),
        net_total=net_total, vat_total=vat, gross_total=net_total + vat, invoice_number=invoice_number, error=error,
    )


def sample_orders() -> list[ExportOrder]:
    """The sample's orders: GBP and EUR, a revision, an invoiced order, an error, Unicode text."""
    day = _CUTOFF - timedelta(days=6)
    return [
        export_order(4101, "ZT-10481", day + timedelta(hours=9, minutes=12), "GB", "GBP", (
            line("TEE-BLK-M", "T-shirt, black, M — “Sunrise” print", 3, "7.3350", "20", "S", "GBP"),
            line("MUG-11OZ", "Mug 11 oz, white", 2, "4.10", "20", "S", "GBP"),
        ), shipping="3.95", shipping_rate="20"),
        export_order(4102, "ZT-10482", day + timedelta(days=1, hours=14), "GB", "GBP", (
            line("BOOK-A5", "Notebook A5, ruled", 10, "2.25", "0", "Z", "GBP"),
            line("CARD-XMAS", "Christmas card, pack of 10", 1, "6.00", "20", "S", "GBP"),
        ), shipping="4.50", shipping_rate="20", revision=1),
        export_order(4103, "ZT-10485", day + timedelta(days=2, hours=8, minutes=30), "DE", "EUR", (
            line("TEE-WHT-L", "T-Shirt weiß, L — Größe „L“", 2, "8.90", "0", "K", "EUR"),
        ), shipping="5.00"),
        export_order(4104, "ZT-10486", day + timedelta(days=3, hours=11), "US", "GBP", (
            line("POSTER-A2", "Poster A2, matte — 日本語 / עברית", 1, "12.00", "0", "G", "GBP"),
        ), shipping="9.00", invoice_number="INK-000311"),
        export_order(4105, "ZT-10487", day + timedelta(days=4, hours=16, minutes=45), "GB", "GBP", (
            line("HOODIE-GRY-XL", "Hoodie, grey, XL", 1, "18.5000", "20", "S", "GBP"),
        ), shipping="3.95", shipping_rate="20", error="Print file re-sent by the retailer"),
    ]


_SKUS = ("TEE-BLK-M", "MUG-11OZ", "HOODIE-GRY-XL", "POSTER-A2", "BOOK-A5", "CARD-XMAS", "TOTE-NAT", "CAP-NVY")


def generated_orders(count: int, *, start: datetime = _CUTOFF - timedelta(days=7),
                     currency: str = "GBP") -> Iterator[ExportOrder]:
    """``count`` valid orders of 1-3 lines, made one at a time (memory does not grow with ``count``)."""
    for index in range(count):
        items = tuple(
            line(_SKUS[(index + k) % len(_SKUS)], f"Item {k + 1} of order {index} — “print” №{index % 97}",
                 1 + (index + k) % 5, f"{3 + (index * 7 + k) % 40}.{(index * 13 + k) % 10000:04d}",
                 "20" if k != 2 else "0", "S" if k != 2 else "Z", currency)
            for k in range(1 + index % 3)
        )
        yield export_order(100_000 + index, f"BENCH-{index:07d}", start + timedelta(seconds=5 * index), "GB",
                           currency, items, shipping="3.95", shipping_rate="20", revision=index % 11 // 10)


def sample_path() -> Path:
    """Where the committed sample is: next to the XSD."""
    return schema_path().with_name("sample-orders-1.0.xml")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else sample_path()
    with path.open("wb") as out:
        count = write_orders(out, SAMPLE_HEADER, sample_orders())
    print(f"wrote {count} orders to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
