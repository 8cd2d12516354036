"""``GET /api/v1/credit-notes/{n}`` (and ``.pdf``): the credit note as issued, scoped to the token's tenant."""

from __future__ import annotations

from datetime import timedelta

from invoicing.billing.credit_notes import CreditRequest, issue_credit_note
from invoicing.billing.credit_plan import parse_selection
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Tenant
from tests.bot.test_feed import feed, order  # noqa: F401 - the feed fixture
from tests.factories import T0


async def _credited(feed, lines: str = "1") -> None:  # noqa: F811
    for ref, quantity in (("SO-1", 1), ("SO-2", 2)):
        assert (await feed.call("PUT", f"/orders/acme/{ref}", order(items=[{"sku": "MUG", "quantity": quantity}]))
                ).status == 201
    await run_by_name(feed.tenant, "acme", clock=lambda: T0)
    tenant = await Tenant.get(id=feed.tenant.id)
    await issue_credit_note(tenant, CreditRequest("INK-000001", parse_selection(lines), "Damaged", reinvoice=True),
                            actor="api:test", now=T0 + timedelta(days=1), mail_domain="inkwell.example")


async def test_the_credit_note_as_issued_with_its_invoice_reference(feed):  # noqa: F811
    await _credited(feed, "2")
    reply = await feed.call("GET", "/credit-notes/CN-000001")
    assert reply.status == 200
    body = reply.body
    assert (body["number"], body["invoice_number"], body["company"], body["reason"]) == (
        "CN-000001", "INK-000001", "acme", "Damaged")
    assert body["invoice_issued_at"] == "2026-11-02T09:00:00Z" and body["issued_at"] == "2026-11-03T09:00:00Z"
    assert body["reinvoice"] is True
    (line,) = body["lines"]
    assert (line["invoice_line"], line["order_ref"], line["quantity"], line["vat_category"]) == (2, "SO-2", 2, "S")
    gross = body["totals"]["gross"]
    assert body["tax_breakdown"][0]["category"] == "S" and float(gross) > 0
    assert body["seller"]["legal_name"] == "Inkwell Print & Ship Ltd"
    assert body["pdf"] == "/api/v1/credit-notes/CN-000001.pdf"
    pdf = await feed.call("GET", "/credit-notes/CN-000001.pdf")
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf" and pdf.body.startswith(b"%PDF")
    assert (await feed.call("GET", "/credit-notes/CN-000002")).status == 404


async def test_another_tenants_token_gets_404(feed):  # noqa: F811
    await _credited(feed)
    assert (await feed.call("GET", "/credit-notes/CN-000001", token=feed.rival_token)).status == 404
    assert (await feed.call("GET", "/credit-notes/CN-000001.pdf", token=feed.rival_token)).status == 404
    assert (await feed.call("GET", "/credit-notes/CN-000001", token=None)).status == 401


async def test_the_invoice_lists_its_credit_notes_and_what_remains(feed):  # noqa: F811
    await _credited(feed, "2")
    body = (await feed.call("GET", "/invoices/INK-000001")).body
    (note,) = body["credit_notes"]
    assert note["number"] == "CN-000001" and note["issued_at"] == "2026-11-03T09:00:00Z"
    credited = float(note["gross"])
    assert abs(float(body["remaining_gross"]) - (float(body["totals"]["gross"]) - credited)) < 0.001
    assert 0 < credited < float(body["totals"]["gross"])
