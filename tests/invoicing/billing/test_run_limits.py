"""A run never fails a company because of one order: what an invoice cannot hold is skipped or deferred.

Old rows (written before the entry points bounded amounts, or by hand) are simulated with
SQL that bypasses every validator, as a database upgraded from an older version holds them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from invoicing.billing.eligibility import DISPATCH_OUT_OF_RANGE
from invoicing.billing.limits import DEFERRED, MAX_INVOICE_TOTAL, MAX_LINE_NET, MAX_QUANTITY, MAX_UNIT_PRICE
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.sql import Statement
from models import Invoice, InvoiceRun, Order, OrderItem, Price, Product, RunOutcome
from tests import factories as f
from tests.factories import T0


async def _store_price_as_old_row(tenant_id: int, sku: str, cost: str) -> None:
    """Overwrite a stored price with ``cost`` directly in SQL (no validation), as an old row holds it."""
    product = await Product.get(tenant_id=tenant_id, sku=sku)
    q = Statement()
    await q.execute(f"UPDATE price SET cost_price = {q(Decimal(cost))} WHERE product_id = {q(product.id)}")


async def _store_quantity_as_old_row(order: Order, quantity: int) -> None:
    q = Statement()
    await q.execute(f"UPDATE order_item SET quantity = {q(quantity)} WHERE order_id = {q(order.id)}")


async def _acme():
    t = await f.tenant()
    c = await f.company(t)
    await f.price(t, "MUG", "5.00", shipping="1.50", tax="20")
    await f.price(t, "BIG", "1.00", tax="20")
    return t, c


async def test_an_old_order_whose_line_overflows_is_skipped_and_reported_and_the_others_are_invoiced(db):
    t, c = await _acme()
    first = await f.order(c, ref="OK-1", dispatched_at=T0 - timedelta(days=3))
    poison = await f.order(c, ref="POISON", sku="BIG", quantity=MAX_QUANTITY, dispatched_at=T0 - timedelta(days=2))
    last = await f.order(c, ref="OK-2", quantity=2, dispatched_at=T0 - timedelta(days=1))
    await _store_price_as_old_row(t.id, "BIG", "9999999999.9999")  # numeric(14,4) holds it; 100,000 × it does not

    report = await run_by_name(t, "acme", clock=lambda: T0)

    assert report.outcome == RunOutcome.INVOICED, report.message
    assert report.orders_invoiced == 2
    assert (report.net, report.gross) == (Decimal("19.50"), Decimal("23.40"))
    [skipped] = report.skipped
    assert skipped.ref == "POISON"
    assert "SKU BIG" in skipped.reason and f"{MAX_LINE_NET:,f}" in skipped.reason, skipped.reason
    invoice = await Invoice.get(id=report.invoice_id)
    assert invoice.net_total == Decimal("19.50")
    assert {o.id for o in await Order.filter(invoice_id=invoice.id)} == {first.id, last.id}
    assert (await Order.get(id=poison.id)).invoice_id is None
    run = await InvoiceRun.get(id=report.run_id)
    assert run.skipped == [{"ref": "POISON", "reason": skipped.reason}] and run.orders_skipped == 1


async def test_an_old_quantity_below_one_is_skipped_not_invoiced(db):
    t, c = await _acme()
    zero = await f.order(c, ref="ZERO")
    negative = await f.order(c, ref="NEGATIVE")
    ok = await f.order(c, ref="OK")
    await _store_quantity_as_old_row(zero, 0)
    await _store_quantity_as_old_row(negative, -5)

    report = await run_by_name(t, "acme", clock=lambda: T0)

    assert report.outcome == RunOutcome.INVOICED and report.orders_invoiced == 1
    assert {s.ref for s in report.skipped} == {"ZERO", "NEGATIVE"}
    assert all("quantity" in s.reason and "between 1 and" in s.reason for s in report.skipped)
    assert (await Order.get(id=ok.id)).invoice_id == report.invoice_id


async def test_an_old_negative_price_row_is_skipped_not_invoiced_as_a_credit(db):
    t, c = await _acme()
    await f.order(c, ref="NEGATIVE", sku="BIG")
    await f.order(c, ref="OK", sku="MUG")
    await _store_price_as_old_row(t.id, "BIG", "-1")
    report = await run_by_name(t, "acme", clock=lambda: T0)
    assert report.outcome == RunOutcome.INVOICED and report.orders_invoiced == 1
    [skipped] = report.skipped
    assert skipped.ref == "NEGATIVE" and "cost price -1" in skipped.reason, skipped.reason


async def test_an_order_whose_totals_alone_exceed_one_invoice_is_skipped_not_deferred(db):
    t, c = await _acme()
    # Valid today: a unit price at the limit, the largest quantity, 100 % VAT → gross twice the line.
    await f.price(t, "BIG", str(MAX_UNIT_PRICE), tax="100")
    await f.order(c, ref="TOO-BIG", sku="BIG", quantity=MAX_QUANTITY, dispatched_at=T0 - timedelta(days=2))
    ok = await f.order(c, ref="OK", dispatched_at=T0 - timedelta(days=1))

    report = await run_by_name(t, "acme", clock=lambda: T0)

    assert report.outcome == RunOutcome.INVOICED and report.orders_invoiced == 1
    [skipped] = report.skipped
    assert skipped.ref == "TOO-BIG" and f"{MAX_INVOICE_TOTAL:,f}" in skipped.reason and skipped.reason != DEFERRED
    assert (await Order.get(id=ok.id)).invoice_id == report.invoice_id


async def test_a_run_stops_adding_orders_at_the_invoice_limit_and_the_next_run_invoices_the_rest(db):
    t, c = await _acme()
    await f.price(t, "BIG", str(MAX_UNIT_PRICE), tax="0")
    big = [await f.order(c, ref=f"BIG-{i}", sku="BIG", quantity=MAX_QUANTITY,
                         dispatched_at=T0 - timedelta(days=5 - i)) for i in range(3)]
    late_small = await f.order(c, ref="SMALL", dispatched_at=T0 - timedelta(hours=1))

    first = await run_by_name(t, "acme", clock=lambda: T0)

    assert first.outcome == RunOutcome.INVOICED and first.orders_invoiced == 1
    assert first.net <= MAX_INVOICE_TOTAL and first.gross <= MAX_INVOICE_TOTAL
    assert [(s.ref, s.reason) for s in first.skipped] == [("BIG-1", DEFERRED), ("BIG-2", DEFERRED),
                                                          ("SMALL", DEFERRED)]
    assert (await Order.get(id=big[0].id)).invoice_id == first.invoice_id

    second = await run_by_name(t, "acme", clock=lambda: T0 + timedelta(hours=1))
    third = await run_by_name(t, "acme", clock=lambda: T0 + timedelta(hours=2))
    assert (second.orders_invoiced, third.orders_invoiced) == (1, 2)
    assert (await Order.get(id=big[1].id)).invoice_id == second.invoice_id
    assert {(await Order.get(id=o.id)).invoice_id for o in (big[2], late_small)} == {third.invoice_id}
    assert await Order.filter(company_id=c.id, invoice_id=None).count() == 0
    assert [i.number for i in await Invoice.filter(tenant_id=t.id)] == [1, 2, 3]


async def test_prices_and_quantities_at_the_limits_are_invoiced(db):
    t, c = await _acme()
    await f.price(t, "BIG", str(MAX_UNIT_PRICE - 1), shipping="1", tax="0")
    await f.order(c, ref="MAX", sku="BIG", quantity=MAX_QUANTITY)
    report = await run_by_name(t, "acme", clock=lambda: T0)
    assert report.outcome == RunOutcome.INVOICED and not report.skipped
    assert report.net == MAX_UNIT_PRICE * MAX_QUANTITY <= MAX_LINE_NET
    assert await OrderItem.all().count() == 1 and await Price.all().count() == 2


async def test_an_old_order_dispatched_at_the_edge_of_the_calendar_is_skipped_not_invoiced(db):
    # 0001-01-01T00:00Z has no date in Europe/London (LMT -00:01): the PDF could never print it.
    t, c = await _acme()
    edge = await f.order(c, ref="YEAR-1")
    ok = await f.order(c, ref="OK")
    q = Statement()
    await q.execute(f'UPDATE "order" SET dispatched_at = {q(datetime(1, 1, 1, tzinfo=UTC))} WHERE id = {q(edge.id)}')
    report = await run_by_name(t, "acme", clock=lambda: T0)
    assert report.outcome == RunOutcome.INVOICED and report.orders_invoiced == 1
    assert [(s.ref, s.reason) for s in report.skipped] == [("YEAR-1", DISPATCH_OUT_OF_RANGE)]
    assert (await Order.get(id=ok.id)).invoice_id == report.invoice_id
