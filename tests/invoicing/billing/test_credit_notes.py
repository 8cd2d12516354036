"""Credit notes on every backend: own sequence, snapshots, never beyond what remains, re-invoicing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from invoicing.billing.credit_document import load_credit_document
from invoicing.billing.credit_notes import CreditRequest, issue_credit_note, preview_credit
from invoicing.billing.credit_plan import parse_selection
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.ingest.order_sync import ItemInput
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.parties.companies import set_accounting
from invoicing.parties.tenants import set_seller_details
from models import (
    AuditEntry,
    CreditNote,
    CreditNoteLine,
    Delivery,
    Invoice,
    InvoiceLine,
    NoticeKind,
    Order,
    SlackNotice,
    Tenant,
)
from tests import factories as f
from tests.factories import T0

LATER = T0 + timedelta(days=3)


def at(moment):
    return lambda: moment


async def invoiced(*quantities: int, cost: str = "5.00", shipping: str = "1.50", tax: str = "20",
                   channel: bool = False):
    """Tenant, company and the invoice of one order per quantity (one line each)."""
    t = await f.tenant()
    c = await f.company(t)
    if channel:
        c.slack_channel = "C0BILLING"
        await c.save()
    await f.price(t, "MUG", cost, shipping=shipping, tax=tax)
    for quantity in quantities:
        await f.order(c, quantity=quantity)
    report = await run_by_name(t, "acme", clock=at(T0))
    return await Tenant.get(id=t.id), c, await Invoice.get(id=report.invoice_id)


async def credit(t, number, lines="all", *, reason="Damaged in transit", reinvoice=False, **kw):
    request = CreditRequest(number, parse_selection(lines), reason, reinvoice)
    return await issue_credit_note(t, request, actor="slack:U1", now=LATER, mail_domain="inkwell.example", **kw)


async def test_a_credit_note_has_its_own_sequence_and_references_the_invoice(db):
    t, c, invoice = await invoiced(2, 1)
    issued = await credit(t, invoice.display_number, "1")
    note = issued.credit_note
    assert (note.number, note.display_number) == (1, "CN-000001")
    assert note.invoice_id == invoice.id and issued.invoice_number == "000001"
    assert (note.net_total, note.tax_total, note.gross_total) == (Decimal("13.00"), Decimal("2.60"), Decimal("15.60"))
    tenant = await Tenant.get(id=t.id)
    assert (tenant.last_invoice_number, tenant.last_credit_note_number) == (1, 1)  # invoice numbers untouched
    second = await credit(t, invoice.display_number, "2")
    assert second.credit_note.display_number == "CN-000002"


async def test_amounts_are_positive_and_lines_keep_their_rate_and_category(db):
    t, c, invoice = await invoiced(3)
    note = (await credit(t, invoice.display_number)).credit_note
    (line,) = await CreditNoteLine.filter(credit_note_id=note.id)
    (original,) = await InvoiceLine.filter(invoice_id=invoice.id)
    assert line.quantity == 3 and line.net == original.net == Decimal("19.50") > 0
    assert (line.tax_rate, line.vat_category, line.invoice_position) == (original.tax_rate, "S", 1)
    assert note.tax_breakdown == [{"rate": "20", "category": "S", "net": "19.50", "tax": "3.90"}]


async def test_seller_and_buyer_come_from_the_original_invoice_not_from_today(db):
    t, c, invoice = await invoiced(1)
    await set_seller_details(t, {"legal_name": "Renamed Seller Ltd"}, actor="cli")
    await set_accounting(c, {"legal_name": "Renamed Buyer Ltd"}, actor="cli")
    note = (await credit(await Tenant.get(id=t.id), invoice.display_number)).credit_note
    assert note.seller == invoice.seller and note.buyer == invoice.buyer
    assert note.seller["legal_name"] == "Inkwell Print & Ship Ltd"


async def test_the_document_is_a_credit_note_with_the_reference_and_reason(db):
    t, c, invoice = await invoiced(2)
    note = (await credit(t, invoice.display_number, reason="Wrong colour")).credit_note
    doc = await load_credit_document(await CreditNote.get(id=note.id))
    assert (doc.kind, doc.number, doc.original_number, doc.reason) == ("credit_note", "CN-000001", "000001",
                                                                       "Wrong colour")
    assert doc.original_issued_at == invoice.issued_at and doc.issued_at == LATER
    assert doc.gross_total == Decimal("15.60") and [line.quantity for line in doc.lines] == [2]


async def test_an_issued_credit_note_never_changes(db):
    from models.invoice import ImmutableInvoiceError

    t, c, invoice = await invoiced(1)
    note = (await credit(t, invoice.display_number)).credit_note
    note.reason = "edited"
    with pytest.raises(ImmutableInvoiceError):
        await note.save()
    with pytest.raises(ImmutableInvoiceError):
        await note.delete()


async def test_a_line_is_never_credited_twice_and_a_refusal_takes_no_number(db):
    t, c, invoice = await invoiced(1, 1)
    await credit(t, invoice.display_number, "1")
    with pytest.raises(InvalidInput, match="line 1 of invoice 000001 is already fully credited"):
        await credit(t, invoice.display_number, "1")
    with pytest.raises(InvalidInput, match="there is no line 3"):
        await credit(t, invoice.display_number, "3")
    with pytest.raises(InvalidInput, match="reason"):
        await credit(t, invoice.display_number, "2", reason="  ")
    assert (await Tenant.get(id=t.id)).last_credit_note_number == 1
    await credit(t, invoice.display_number, "all")  # what remains: line 2
    with pytest.raises(Conflict, match="already fully credited"):
        await credit(t, invoice.display_number, "all")
    assert (await Tenant.get(id=t.id)).last_credit_note_number == 2
    assert await CreditNote.all().count() == 2


async def test_part_quantities_add_up_to_the_invoiced_line_to_the_cent(db):
    # 3 × 3.3333 = 9.9999 → 10.00 on the invoice; 1 unit is 3.33, so the last unit takes the rest: 3.34.
    t, c, invoice = await invoiced(3, cost="3.3333", shipping="0", tax="20")
    nets = []
    for _ in range(3):
        nets.append((await credit(t, invoice.display_number, "1:1")).credit_note)
    assert [n.net_total for n in nets] == [Decimal("3.33"), Decimal("3.33"), Decimal("3.34")]
    assert sum(n.net_total for n in nets) == invoice.net_total
    assert sum(n.tax_total for n in nets) == invoice.tax_total  # the last one takes exactly the VAT left
    with pytest.raises(InvalidInput, match="already fully credited"):
        await credit(t, invoice.display_number, "1:1")


async def test_more_units_than_remain_are_refused(db):
    t, c, invoice = await invoiced(2)
    await credit(t, invoice.display_number, "1:1")
    with pytest.raises(InvalidInput, match=r"line 1 has 1 unit\(s\) left to credit \(2 invoiced, 1 already"):
        await credit(t, invoice.display_number, "1:2")


async def test_vat_credited_never_exceeds_the_invoice_vat(db):
    # Two lines of 0.03 at 20 %: the invoice's VAT is 0.01 (on 0.06); each alone would round to 0.01.
    t, c, invoice = await invoiced(1, 1, cost="0.03", shipping="0", tax="20")
    assert invoice.tax_total == Decimal("0.01")
    first = (await credit(t, invoice.display_number, "1")).credit_note
    second = (await credit(t, invoice.display_number, "2")).credit_note
    assert first.tax_total + second.tax_total == Decimal("0.01")
    assert first.gross_total + second.gross_total == invoice.gross_total


async def test_another_tenants_invoice_does_not_exist(db):
    t, c, invoice = await invoiced(1)
    other = await f.tenant("other")
    with pytest.raises(NotFound):
        await credit(other, invoice.display_number)
    assert await CreditNote.all().count() == 0


async def test_without_reinvoice_the_orders_stay_invoiced(db):
    t, c, invoice = await invoiced(1)
    await credit(t, invoice.display_number)
    assert await Order.filter(invoice_id=invoice.id).count() == 1
    again = await run_by_name(t, "acme", clock=at(LATER))
    assert again.invoice_number is None


async def test_reinvoice_makes_the_credited_orders_eligible_again_once(db):
    t, c, invoice = await invoiced(1, 2)
    issued = await credit(t, invoice.display_number, "2", reinvoice=True)
    assert issued.reinvoiced_orders == 1 and issued.credit_note.reinvoice
    assert await Order.filter(invoice_id=invoice.id).count() == 1
    rerun = await run_by_name(t, "acme", clock=at(LATER))
    assert rerun.invoice_number == "000002" and rerun.orders_invoiced == 1
    lines = await InvoiceLine.filter(invoice__display_number="000002")
    assert [line.quantity for line in lines] == [2]
    assert (await run_by_name(t, "acme", clock=at(LATER + timedelta(hours=1)))).invoice_number is None


async def test_reinvoice_of_a_partly_credited_order_is_refused(db):
    t = await f.tenant()
    c = await f.company(t)
    await f.price(t, "MUG", "5.00")
    await f.price(t, "CAP", "2.00")
    await f.order(c, items=[ItemInput("MUG", 2), ItemInput("CAP", 1)])
    invoice = await Invoice.get(id=(await run_by_name(t, "acme", clock=at(T0))).invoice_id)
    with pytest.raises(Conflict, match="needs every line of an order credited"):
        await credit(t, invoice.display_number, "1", reinvoice=True)
    with pytest.raises(Conflict, match="needs every line"):
        await credit(t, invoice.display_number, "1:1,2", reinvoice=True)
    assert (await Tenant.get(id=t.id)).last_credit_note_number == 0
    await credit(t, invoice.display_number, "1-2", reinvoice=True)
    assert await Order.filter(invoice_id=None).count() == 1


async def test_issuing_is_audited_and_queues_the_email_and_the_channel_notice(db):
    t, c, invoice = await invoiced(1, channel=True)
    note = (await credit(t, invoice.display_number)).credit_note
    (entry,) = await AuditEntry.filter(tenant_id=t.id, action="credit_note.issue")
    assert entry.actor == "slack:U1" and entry.target == "invoice:000001"
    assert entry.new["credit_note"] == "CN-000001" and entry.new["gross"] == "7.80"
    delivery = await Delivery.get(credit_note_id=note.id)
    assert delivery.invoice_id == invoice.id and delivery.to_addr == "ap@acme.example"
    assert delivery.message_id == f"<credit-note.{t.id}.1@inkwell.example>"
    notice = await SlackNotice.get(dedupe_key=f"credit:{note.id}")
    assert notice.kind == NoticeKind.CREDIT_ISSUED and notice.payload["credit_note"] == "CN-000001"


async def test_the_same_confirm_button_issues_one_credit_note(db):
    t, c, invoice = await invoiced(1, 1)
    await credit(t, invoice.display_number, "1", request_key="credit-click:C1:1.1")
    with pytest.raises(Conflict, match="already issued from this message"):
        await credit(t, invoice.display_number, "2", request_key="credit-click:C1:1.1")
    assert (await Tenant.get(id=t.id)).last_credit_note_number == 1


async def test_a_stale_preview_is_refused(db):
    t, c, invoice = await invoiced(1, 1)
    preview = await preview_credit(t.id, CreditRequest(invoice.display_number, None, "void"))
    assert preview.number == "CN-000001" and preview.plan.gross == Decimal("15.60")
    await credit(t, invoice.display_number, "1")
    with pytest.raises(Conflict, match="credited since this preview"):
        await credit(t, invoice.display_number, "all", expected_gross=preview.plan.gross)
    assert (await Tenant.get(id=t.id)).last_credit_note_number == 1


async def test_concurrent_voids_credit_the_invoice_once(db):
    t, c, invoice = await invoiced(1, 2, 3)
    tenants = [await Tenant.get(id=t.id) for _ in range(6)]
    results = await asyncio.gather(*(credit(tenant, invoice.display_number) for tenant in tenants),
                                   return_exceptions=True)
    issued = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(issued) == 1 and all(isinstance(r, Conflict) for r in refused), results
    assert issued[0].credit_note.gross_total == invoice.gross_total
    assert (await Tenant.get(id=t.id)).last_credit_note_number == 1


async def test_concurrent_credits_of_different_lines_all_succeed_with_gapless_numbers(db):
    t, c, invoice = await invoiced(1, 1, 1, 1)
    tenants = [await Tenant.get(id=t.id) for _ in range(4)]
    results = await asyncio.gather(*(credit(tenant, invoice.display_number, str(k + 1))
                                     for k, tenant in enumerate(tenants)))
    assert sorted(r.credit_note.number for r in results) == [1, 2, 3, 4]
    assert sum(r.credit_note.gross_total for r in results) == invoice.gross_total
    with pytest.raises(Conflict):
        await credit(t, invoice.display_number)


async def test_concurrent_part_credits_of_one_line_never_exceed_its_quantity(db):
    t, c, invoice = await invoiced(3)
    tenants = [await Tenant.get(id=t.id) for _ in range(5)]
    results = await asyncio.gather(*(credit(tenant, invoice.display_number, "1:1") for tenant in tenants),
                                   return_exceptions=True)
    issued = [r for r in results if not isinstance(r, BaseException)]
    assert len(issued) == 3
    assert all(isinstance(r, InvalidInput) for r in results if isinstance(r, BaseException))
    assert sum(r.credit_note.gross_total for r in issued) == invoice.gross_total
    assert sorted(r.credit_note.number for r in issued) == [1, 2, 3]


async def test_the_credit_note_prefix_is_set_like_the_invoice_prefix(db):
    t, c, invoice = await invoiced(1, 1)
    await set_seller_details(t, {"credit_note_prefix": "GS-"}, actor="cli")
    with pytest.raises(InvalidInput, match="credit_note_prefix"):
        await set_seller_details(t, {"credit_note_prefix": "G S"}, actor="cli")
    assert (await credit(await Tenant.get(id=t.id), invoice.display_number, "1")).credit_note.display_number == \
        "GS-000001"
