"""The invoice run: eligibility, numbering, snapshots and refusals, on every backend."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from invoicing.billing.fx import set_rate
from invoicing.errors import IncompleteDetails, NotEligible, NotFound
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Delivery, FxSource, Invoice, InvoiceLine, InvoiceRun, Order, RunOutcome, Tenant
from tests import factories as f
from tests.factories import T0


def at(moment):
    return lambda: moment


async def setup_acme(**tenant_kw):
    t = await f.tenant(**tenant_kw)
    c = await f.company(t)
    await f.price(t, "MUG", "5.00", shipping="1.50", tax="20")
    return t, c


async def test_a_dispatched_order_is_invoiced_once_with_the_first_number(db):
    t, c = await setup_acme()
    o = await f.order(c, quantity=2)
    report = await run_by_name(t, "acme", clock=at(T0))
    assert report.outcome == RunOutcome.INVOICED
    assert report.invoice_number == "000001"
    assert (report.net, report.tax, report.gross) == (Decimal("13.00"), Decimal("2.60"), Decimal("15.60"))
    assert (await Order.get(id=o.id)).invoice_id == report.invoice_id
    again = await run_by_name(t, "acme", clock=at(T0 + timedelta(hours=1)))
    assert again.outcome == RunOutcome.NO_ORDERS and again.invoice_number is None
    assert await Invoice.all().count() == 1
    assert (await Tenant.get(id=t.id)).last_invoice_number == 1


async def test_on_hold_orders_are_never_invoiced(db):
    t, c = await setup_acme()
    held = await f.order(c, on_hold=True)
    await f.emailer(c, include_errors=True)
    report = await run_by_name(t, "acme", clock=at(T0))
    assert report.outcome == RunOutcome.NO_ORDERS
    assert report.skipped_by_reason == {"on hold": 1}
    assert (await Order.get(id=held.id)).invoice_id is None


async def test_orders_with_errors_are_invoiced_only_when_include_errors_is_on(db):
    t, c = await setup_acme()
    bad = await f.order(c, error="artwork missing")
    off = await run_by_name(t, "acme", clock=at(T0))
    assert off.outcome == RunOutcome.NO_ORDERS
    assert off.skipped[0].ref == bad.external_ref and "error" in off.skipped[0].reason
    await f.emailer(c, include_errors=True)
    on = await run_by_name(t, "acme", clock=at(T0))
    assert on.outcome == RunOutcome.INVOICED and on.orders_invoiced == 1


@pytest.mark.parametrize("status", ["received", "in_production", "cancelled"])
async def test_cancelled_and_undispatched_orders_are_never_invoiced(db, status):
    t, c = await setup_acme()
    await f.order(c, status=status, dispatched_at=None)
    report = await run_by_name(t, "acme", clock=at(T0))
    assert report.outcome == RunOutcome.NO_ORDERS
    assert await Invoice.all().count() == 0


async def test_orders_dispatched_before_starting_from_are_never_picked_up(db):
    t, c = await setup_acme()
    early = await f.order(c, dispatched_at=T0 - timedelta(days=10))
    late = await f.order(c, dispatched_at=T0 - timedelta(days=1))
    await f.emailer(c, starting_from=T0 - timedelta(days=5))
    report = await run_by_name(t, "acme", clock=at(T0))
    assert report.orders_invoiced == 1
    assert (await Order.get(id=late.id)).invoice_id is not None
    assert (await Order.get(id=early.id)).invoice_id is None
    assert report.period_start == T0 - timedelta(days=5)


async def test_a_run_never_sweeps_in_orders_dispatched_after_its_cutoff(db):
    t, c = await setup_acme()
    before = await f.order(c, dispatched_at=T0 - timedelta(minutes=1))
    after = await f.order(c, dispatched_at=T0 + timedelta(minutes=1))
    report = await run_by_name(t, "acme", cutoff=T0, clock=at(T0 + timedelta(hours=5)))
    assert report.orders_invoiced == 1
    assert (await Order.get(id=before.id)).invoice_id is not None
    assert (await Order.get(id=after.id)).invoice_id is None


async def test_an_order_without_a_price_is_skipped_and_reported_never_invoiced_at_zero(db):
    t, c = await setup_acme()
    await f.order(c, sku="POSTER")
    ok = await f.order(c, sku="MUG")
    report = await run_by_name(t, "acme", clock=at(T0))
    assert report.orders_invoiced == 1
    assert report.skipped_by_reason == {"no price for SKU POSTER": 1}
    lines = await InvoiceLine.filter(invoice_id=report.invoice_id)
    assert [l.order_ref for l in lines] == [ok.external_ref]


async def test_no_conversion_an_order_without_a_price_in_the_buyer_currency_is_skipped(db):
    t = await f.tenant()
    pl = await f.company(t, "druk", country="PL", currency="PLN", timezone="Europe/Warsaw")
    await set_rate(t, "PLN", "GBP", "0.1975", T0.date(), source=FxSource.OPS, actor="test")  # VAT shown in GBP too
    await f.price(t, "MUG", "5.00")  # default price: GBP only
    await f.order(pl, sku="MUG")
    report = await run_by_name(t, "druk", clock=at(T0))
    assert report.outcome == RunOutcome.NO_ORDERS
    assert report.skipped_by_reason == {"no PLN price for SKU MUG": 1}
    await f.price(t, "MUG", "21.00", retailer="druk", tax="23")
    report = await run_by_name(t, "druk", clock=at(T0))
    assert report.outcome == RunOutcome.INVOICED and report.currency == "PLN"
    assert report.net == Decimal("21.00") and report.tax == Decimal("4.83")


async def test_a_retailer_price_overrides_the_default_price(db):
    t, c = await setup_acme()
    await f.price(t, "MUG", "4.20", retailer="acme", tax="20")
    await f.order(c, quantity=10)
    report = await run_by_name(t, "acme", clock=at(T0))
    assert report.net == Decimal("42.00")


async def test_a_run_with_no_eligible_orders_consumes_no_number(db):
    t, c = await setup_acme()
    assert (await run_by_name(t, "acme", clock=at(T0))).outcome == RunOutcome.NO_ORDERS
    await f.order(c)
    assert (await run_by_name(t, "acme", clock=at(T0))).invoice_number == "000001"


async def test_a_run_that_fails_after_numbering_rolls_back_and_the_number_is_reused(db):
    t, c = await setup_acme()
    o = await f.order(c)

    def crash(step: str) -> None:
        if step == "invoice_created":
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        await run_by_name(t, "acme", clock=at(T0), checkpoint=crash)
    assert await Invoice.all().count() == 0
    assert (await Order.get(id=o.id)).invoice_id is None
    assert (await Tenant.get(id=t.id)).last_invoice_number == 0
    assert await Delivery.all().count() == 0
    failed = await InvoiceRun.get(outcome=RunOutcome.FAILED)
    assert "RuntimeError" in failed.message
    report = await run_by_name(t, "acme", clock=at(T0))
    assert report.invoice_number == "000001"


async def test_dry_run_previews_the_same_invoice_without_writing_or_numbering(db):
    t, c = await setup_acme()
    await f.order(c, quantity=3)
    preview = await run_by_name(t, "acme", clock=at(T0), dry_run=True)
    assert preview.dry_run and preview.invoice_number == "000001" and preview.invoice_id is None
    assert await Invoice.all().count() == 0 and await InvoiceRun.all().count() == 0
    assert (await Tenant.get(id=t.id)).last_invoice_number == 0
    real = await run_by_name(t, "acme", clock=at(T0))
    assert (real.invoice_number, real.net, real.tax, real.gross) == (
        preview.invoice_number, preview.net, preview.tax, preview.gross)


async def test_oms_lite_tenants_are_refused_with_a_clear_message(db):
    t, c = await setup_acme(plan="oms_lite")
    await f.order(c)
    with pytest.raises(NotEligible, match="OMS Lite: invoicing needs an active OMS licence"):
        await run_by_name(t, "acme", clock=at(T0))
    assert await Invoice.all().count() == 0
    assert (await InvoiceRun.get()).outcome == RunOutcome.REFUSED


async def test_incomplete_details_refuse_the_run_naming_the_missing_fields(db):
    t = await f.tenant(complete=False)
    c = await f.company(t, complete=False)
    await f.price(t, "MUG", "5")
    await f.order(c)
    with pytest.raises(IncompleteDetails) as info:
        await run_by_name(t, "acme", clock=at(T0))
    msg = info.value.message
    assert "the seller (inkwell) is missing legal_name, address_line1, city, country" in msg
    assert "company 'acme' is missing legal_name, address_line1, city, postcode, email" in msg
    assert await Invoice.all().count() == 0


async def test_unknown_company_is_not_found(db):
    t, _ = await setup_acme()
    with pytest.raises(NotFound, match="No company 'nope' in inkwell"):
        await run_by_name(t, "nope")


async def test_an_issued_invoice_never_changes_when_company_product_or_price_change(db):
    t, c = await setup_acme()
    await f.order(c, quantity=2)
    report = await run_by_name(t, "acme", clock=at(T0))
    before = await Invoice.get(id=report.invoice_id)
    c.legal_name, c.address_line1 = "Renamed Ltd", "99 Other Road"
    await c.save()
    t.legal_name = "New Seller Ltd"
    await t.save()
    await f.price(t, "MUG", "99.00", tax="5", name="Renamed mug")
    after = await Invoice.get(id=report.invoice_id)
    lines = await InvoiceLine.filter(invoice_id=after.id)
    assert after.buyer["legal_name"] == "Acme Ltd" and after.seller["legal_name"] == "Inkwell Print & Ship Ltd"
    assert (after.net_total, after.gross_total) == (before.net_total, before.gross_total)
    assert [(l.unit_cost, l.tax_rate, l.description) for l in lines] == [
        (Decimal("5.0000"), Decimal("20.000"), "Product MUG")]


async def test_an_issued_invoice_cannot_be_saved_or_deleted(db):
    from models.invoice import ImmutableInvoiceError

    t, c = await setup_acme()
    await f.order(c)
    report = await run_by_name(t, "acme", clock=at(T0))
    invoice = await Invoice.get(id=report.invoice_id)
    invoice.net_total = Decimal("0")
    with pytest.raises(ImmutableInvoiceError):
        await invoice.save()
    with pytest.raises(ImmutableInvoiceError):
        await invoice.delete()


async def test_the_run_writes_one_outbox_delivery_to_the_accounting_email_with_bcc(db):
    t, c = await setup_acme()
    await f.emailer(c, bcc=["ops@inkwell.example"])
    await f.order(c)
    report = await run_by_name(t, "acme", clock=at(T0), mail_domain="inkwell.example")
    delivery = await Delivery.get(invoice_id=report.invoice_id)
    assert delivery.to_addr == "ap@acme.example" and delivery.bcc == ["ops@inkwell.example"]
    assert delivery.message_id == f"<invoice.{t.id}.1@inkwell.example>"
    assert delivery.status == "pending"
