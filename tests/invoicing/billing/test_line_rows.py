"""Invoice lines written by hand store exactly what the ORM's ``bulk_create`` stored, and read back as it reads them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from invoicing import sql
from invoicing.billing.document import InvoiceDocument
from invoicing.billing.line_rows import LineRow, insert_lines, lines_of
from invoicing.sql import Statement
from models import Invoice, InvoiceLine
from tests import factories as f
from tests.factories import T0

COLUMNS = "invoice_id, position, order_id_ref, order_ref, dispatched_at, sku, description, quantity, unit_cost, " \
          "unit_shipping, tax_rate, net, vat_category"


def row(position: int, **changes: object) -> LineRow:
    values: dict[str, object] = dict(
        position=position, order_id_ref=1000 + position, order_ref=f"R-{position}",
        dispatched_at=T0 - timedelta(days=position), sku="MUG", description="Mug – «blue» 'quoted' ✓",
        quantity=3, unit_cost=Decimal("5.1234"), unit_shipping=Decimal("1.5"), tax_rate=Decimal("20.000"),
        net=Decimal("19.8702"), vat_category="S")
    values.update(changes)
    return LineRow(**values)  # type: ignore[arg-type]


async def invoices(n: int) -> list[Invoice]:
    t = await f.tenant()
    c = await f.company(t)
    made = []
    for k in range(n):
        invoice = Invoice(tenant_id=t.id, company_id=c.id, number=k + 1, display_number=f"{k + 1:06d}",
                          issued_at=T0, period_end=T0, currency="GBP", timezone="Europe/London",
                          seller={"legal_name": "Inkwell Ltd", "country": "GB"},
                          buyer={"legal_name": "Acme Ltd", "country": "GB"},
                          net_total=Decimal(0), tax_total=Decimal(0), gross_total=Decimal(0), tax_breakdown=[],
                          order_count=1, payment_terms_days=30)
        await invoice.save()
        made.append(invoice)
    return made


async def stored(invoice_id: int) -> list[tuple[object, ...]]:
    """The raw column values as the database returns them (SQLite: the stored text)."""
    q = Statement()
    return await q.rows(f"SELECT {COLUMNS} FROM invoice_line WHERE invoice_id = {q(invoice_id)} ORDER BY position")


async def test_hand_written_lines_store_what_bulk_create_stored(db):
    by_hand, by_orm = await invoices(2)
    lines = [row(1), row(2, dispatched_at=datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
                         quantity=1, unit_cost=Decimal("0.0001"), net=Decimal("0.0001"), vat_category=""),
             # More places than the columns hold: rounded half to even as the model's field does (PostgreSQL's
             # own numeric rounding is half up, which would store 0.0001 and 20.001).
             row(3, unit_shipping=Decimal("0.00005"), tax_rate=Decimal("20.0005"))]
    await insert_lines([(by_hand.id, line) for line in lines])
    await InvoiceLine.bulk_create([InvoiceLine(invoice_id=by_orm.id, **asdict(line)) for line in lines])

    raw_hand, raw_orm = await stored(by_hand.id), await stored(by_orm.id)
    assert [r[1:] for r in raw_hand] == [r[1:] for r in raw_orm]
    read = [await InvoiceLine.filter(invoice_id=i.id).order_by("position").values(*asdict(lines[0]))
            for i in (by_hand, by_orm)]  # fmt: skip
    assert read[0] == read[1]
    assert [line["dispatched_at"].astimezone(UTC) for line in await InvoiceLine.filter(invoice_id=by_hand.id)
            .order_by("position").values("dispatched_at")] == [line.dispatched_at.astimezone(UTC) for line in lines]


async def test_lines_of_many_invoices_go_in_one_call_and_none_is_nothing(db):
    invoice_rows = await invoices(3)
    await insert_lines([])
    await insert_lines([(invoice.id, row(k)) for invoice in invoice_rows for k in range(1, 4)])
    for invoice in invoice_rows:
        assert [line.position for line in await InvoiceLine.filter(invoice_id=invoice.id)] == [1, 2, 3]


@pytest.mark.parametrize("chunk", [500, 1])
async def test_lines_read_as_rows_make_the_document_the_models_make(db, monkeypatch, chunk):
    monkeypatch.setattr(sql, "CHUNK", chunk)
    first, second, empty = await invoices(3)
    lines = [row(2, unit_shipping=Decimal("1.5")), row(1, vat_category="")]
    await insert_lines([(first.id, line) for line in lines] + [(second.id, row(1))])

    found = await lines_of([first.id, second.id, empty.id, first.id])

    assert set(found) == {first.id, second.id}
    assert [line.position for line in found[first.id]] == [1, 2]
    assert found[first.id][1].unit_shipping == Decimal("1.5000") and str(found[first.id][1].unit_shipping) == "1.5000"
    assert found[first.id][0].dispatched_at == lines[1].dispatched_at and found[first.id][0].dispatched_at.tzinfo
    models = await InvoiceLine.filter(invoice_id=first.id)
    assert (InvoiceDocument.from_models(first, found[first.id], tenant_name="inkwell")
            == InvoiceDocument.from_models(first, models, tenant_name="inkwell"))
