"""Issued invoices carry their legal content: categories, breakdown, notes, language, FX, seller-zone dates."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from commands.context import CommandContext
from commands.dispatch import dispatch
from invoicing import audit
from invoicing.billing.document import InvoiceDocument
from invoicing.billing.fx import set_rate
from invoicing.delivery.pdf import render_invoice_pdf
from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.integrations.pdf_emailer.run import run_by_name, run_company
from invoicing.parties.companies import create_company
from invoicing.parties.tenants import set_seller_details
from models import (
    Company,
    FxRate,
    FxSource,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    Price,
    RunOutcome,
    RunTrigger,
    SlackNotice,
    Tenant,
)
from tests import factories as f
from tests.factories import T0

SELLER_DE = {"legal_name": "Druckerei Nord GmbH", "address_line1": "Hafenstraße 1", "city": "Hamburg",
             "postcode": "20095", "country": "DE", "vat_number": "DE136695976", "company_number": "",
             "currency": "EUR", "timezone": "Europe/Berlin"}
BUYER_FR = {"legal_name": "Boutique Lumière SARL", "address_line1": "2 rue de la République", "city": "Lyon",
            "postcode": "69002", "vat_number": "FR40303265045", "email": "compta@lumiere.example"}


def at(moment):
    return lambda: moment


async def _yes() -> bool:
    return True


def admin(t: Tenant) -> CommandContext:
    return CommandContext(tenant=t, user_id="UOPS", is_admin=_yes, clock=lambda: T0)


def pdf_text(doc: InvoiceDocument) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(render_invoice_pdf(doc))).pages)


async def german_seller() -> Tenant:
    t = await f.tenant()
    await set_seller_details(t, SELLER_DE, actor="test")
    return t


async def french_buyer(t: Tenant, *, vat_number: str = BUYER_FR["vat_number"]) -> Company:
    return await create_company(t, "lumiere", name="Lumière", country="FR", currency="EUR", timezone="Europe/Paris",
                                accounting={**BUYER_FR, "vat_number": vat_number})


async def test_de_to_fr_goods_are_issued_as_an_intra_community_supply_in_french(db):
    t = await german_seller()
    c = await french_buyer(t)
    await f.price(t, "MUG", "5.00", tax="0")
    await f.price(t, "TEE", "8.00", tax="19")
    await f.order(c, items=[f.ItemInput("MUG", 2), f.ItemInput("TEE", 1)])
    report = await run_by_name(t, "lumiere", clock=at(T0))
    assert report.outcome == RunOutcome.INVOICED

    invoice = await Invoice.get(id=report.invoice_id)
    assert invoice.language == "fr" and invoice.timezone == "Europe/Berlin" and invoice.fx is None
    assert [(b["category"], b["rate"], b["exemption_code"]) for b in invoice.tax_breakdown] == [
        ("S", "19", ""), ("K", "0", "VATEX-EU-IC")]
    k_note = ("Livraison intracommunautaire de biens exonérée de TVA (§ 4 Nr. 1b i. V. m. § 6a UStG; "
              "article 138 de la directive 2006/112/CE).")
    assert invoice.notes == [k_note]
    lines = await InvoiceLine.filter(invoice_id=invoice.id).order_by("position")
    assert [(l.sku, l.vat_category) for l in lines] == [("MUG", "K"), ("TEE", "S")]

    doc = await InvoiceDocument.load(invoice)
    assert [l.vat_category for l in doc.lines] == ["K", "S"]
    assert [(b.category, b.exemption_reason) for b in doc.tax_bands] == [("S", ""), ("K", k_note.rstrip("."))]
    assert doc.notes == (k_note,) and doc.language == "fr"
    assert "§ 4 Nr. 1b" in pdf_text(doc) and "Article 196" not in pdf_text(doc)


async def test_fr_buyer_without_a_vat_number_is_charged_vat_with_no_note(db):
    t = await german_seller()
    c = await french_buyer(t, vat_number="")
    await f.price(t, "MUG", "5.00", tax="19")
    await f.order(c)
    report = await run_by_name(t, "lumiere", clock=at(T0))
    invoice = await Invoice.get(id=report.invoice_id)
    assert [b["category"] for b in invoice.tax_breakdown] == ["S"] and invoice.notes == []


async def test_a_gb_seller_invoicing_in_eur_shows_the_vat_in_gbp_with_the_rate_snapshotted(db):
    t = await f.tenant()
    c = await f.company(t, "euro", currency="EUR")
    await f.price(t, "MUG", "10.00", tax="20", retailer=None)
    await set_product(t, "MUG", name="Mug", prices=[PriceInput("euro", "10.00", "0", "20")])
    await f.order(c, quantity=3)
    await set_rate(t, "EUR", "GBP", "0.8523", T0.date() - timedelta(days=3), source=FxSource.ECB, actor="cli")
    await set_rate(t, "EUR", "GBP", "0.9999", T0.date() + timedelta(days=1), source=FxSource.OPS, actor="t")  # later
    report = await run_by_name(t, "euro", clock=at(T0))
    invoice = await Invoice.get(id=report.invoice_id)
    assert invoice.fx == {"currency": "GBP", "rate": "0.8523", "rate_date": "2026-10-30", "source": "ecb",
                          "tax_total": "5.11", "tax_bands": [{"rate": "20", "category": "S", "tax": "5.11"}]}
    await FxRate.all().delete()  # the snapshot does not depend on the rates still being on record
    doc = await InvoiceDocument.load(invoice)
    assert doc.fx is not None and doc.fx.rate == Decimal("0.8523") and doc.fx.tax_total == Decimal("5.11")
    assert doc.fx.rate_date == date(2026, 10, 30) and doc.tax_total == Decimal("6.00")


async def test_gb_to_us_export_is_zero_rated_with_its_note_and_fx(db):
    t = await f.tenant()
    c = await f.company(t, "maple", country="US", currency="USD", timezone="America/New_York")
    await set_product(t, "MUG", name="Mug", prices=[PriceInput("maple", "12.00", "0", "0")])
    await f.order(c)
    await set_rate(t, "USD", "GBP", "0.7874", T0.date(), source=FxSource.OPS, actor="t")
    invoice = await Invoice.get(id=(await run_by_name(t, "maple", clock=at(T0))).invoice_id)
    assert [(b["category"], b["exemption_code"]) for b in invoice.tax_breakdown] == [("G", "VATEX-EU-G")]
    assert invoice.notes == ["Zero-rated export of goods (VAT Notice 703)."] and invoice.language == "en"
    assert invoice.fx["tax_total"] == "0.00"


async def test_a_run_without_the_rate_it_needs_is_refused_naming_pair_and_day_and_takes_no_number(db):
    t = await f.tenant()
    c = await f.company(t, "euro", currency="EUR")
    c.slack_channel = "#billing"
    await c.save()
    await set_product(t, "MUG", name="Mug", prices=[PriceInput("euro", "10.00", "0", "20")])
    order = await f.order(c)
    reason = "No EUR→GBP exchange rate on or before 2026-11-02"
    with pytest.raises(Exception, match=reason):
        await run_company(await Tenant.get(id=t.id), c, trigger=RunTrigger.SCHEDULE, clock=at(T0), cutoff=T0)
    run = await InvoiceRun.get(company_id=c.id)
    assert run.outcome == RunOutcome.REFUSED and reason in run.message
    notice = await SlackNotice.get(company_id=c.id)
    assert reason in notice.payload["reason"]
    assert await Invoice.all().count() == 0 and (await Tenant.get(id=t.id)).last_invoice_number == 0
    assert (await type(order).get(id=order.id)).invoice_id is None

    reply = await dispatch("fx set EUR GBP 0.8523 date=2026-11-01", admin(t))
    assert "Rate set: 1 EUR = 0.8523 GBP on 2026-11-01" in reply.text
    assert (await run_by_name(t, "euro", clock=at(T0))).invoice_number == "000001"


async def test_three_invoices_of_one_run_around_midnight_are_dated_in_the_seller_zone_and_never_backwards(db):
    t = await f.tenant()
    await set_seller_details(t, {"timezone": "Europe/London"}, actor="test")
    zones = ["Pacific/Auckland", "Europe/London", "America/Los_Angeles"]
    for n, zone in enumerate(zones):
        c = await f.company(t, f"co{n}", timezone=zone)
        await f.order(c)
    await f.price(t, "MUG", "5.00")
    midnight = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # London is on UTC in December
    moments = [midnight - timedelta(seconds=1), midnight, midnight + timedelta(seconds=1)]
    docs = []
    for n, moment in enumerate(moments):
        report = await run_by_name(t, f"co{n}", clock=at(moment))
        docs.append(await InvoiceDocument.load(await Invoice.get(id=report.invoice_id)))
    assert [d.number for d in docs] == ["000001", "000002", "000003"]
    assert all(d.timezone == "Europe/London" for d in docs)
    issued = [d.issued_at.astimezone(ZoneInfo(d.timezone)).date() for d in docs]
    assert issued == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 2)]
    assert issued == sorted(issued) and [d.due_date() for d in docs] == sorted(d.due_date() for d in docs)


async def test_an_invoice_issued_before_categories_existed_still_loads_with_derived_defaults(db):
    t = await german_seller()
    c = await french_buyer(t)
    invoice = await Invoice.create(
        tenant_id=t.id, company_id=c.id, number=1, display_number="000001", issued_at=T0, period_end=T0,
        currency="EUR", timezone="Europe/Paris", seller={"name": t.name, **t.accounting_dict()},
        buyer={"name": c.name, **c.accounting_dict()}, net_total="15.00", tax_total="1.90", gross_total="16.90",
        tax_breakdown=[{"rate": "19", "net": "10.00", "tax": "1.90"}, {"rate": "0", "net": "5.00", "tax": "0.00"}],
        order_count=1, payment_terms_days=30)
    await InvoiceLine.create(invoice_id=invoice.id, position=1, order_id_ref=1, order_ref="OLD-1", dispatched_at=T0,
                             sku="MUG", description="Mug", quantity=1, unit_cost="5", unit_shipping="0",
                             tax_rate="0", net="5.00")
    doc = await InvoiceDocument.load(await Invoice.get(id=invoice.id))
    assert [l.vat_category for l in doc.lines] == ["K"]
    assert [(b.category, b.exemption_code) for b in doc.tax_bands] == [("S", ""), ("K", "VATEX-EU-IC")]
    assert doc.language == "en" and doc.fx is None and doc.timezone == "Europe/Paris"
    assert doc.notes == ("Exempt intra-Community supply of goods (§ 4 Nr. 1b i. V. m. § 6a UStG; "
                         "Article 138 Directive 2006/112/EC).",)


async def test_a_price_category_overrides_the_derived_one_and_a_contradicting_one_is_refused(db):
    t = await f.tenant()
    ctx = admin(t)
    c = await f.company(t)
    refused = await dispatch("price default MUG cost=5 tax=20 category=K name=Mug", ctx)
    assert refused.error and "K is a 0 % category but the VAT rate is 20 %" in refused.text
    assert not await Price.exists()
    refused = await dispatch("price default MUG cost=5 tax=0 category=S name=Mug", ctx)
    assert refused.error and "S (standard rate) needs a VAT rate above 0 %" in refused.text
    refused = await dispatch("price default MUG cost=5 tax=0 category=E name=Mug", ctx)
    assert refused.error and "exemption=VATEX-EU-132" in refused.text

    ok = await dispatch("price default MUG cost=5 tax=0 category=ae name=Mug", ctx)
    assert not ok.error and "category AE" in str(ok.blocks)
    assert (await Price.get()).vat_category == "AE"
    kept = await dispatch("price default MUG cost=6 tax=20", ctx)  # the stored AE contradicts 20 %
    assert kept.error and "has VAT category AE" in kept.text and (await Price.get()).cost_price == Decimal(5)
    assert [e.new for e in await audit.recent(t.id, target="price:MUG:default") if e.action == "price.category"] == [
        {"category": "AE", "exemption": ""}]

    await f.order(c)
    invoice = await Invoice.get(id=(await run_by_name(t, "acme", clock=at(T0))).invoice_id)
    assert [(b["category"], b["exemption_code"]) for b in invoice.tax_breakdown] == [("AE", "VATEX-EU-AE")]
    assert invoice.notes == ["Reverse charge: VAT to be accounted for by the recipient."]  # GB seller: no EU article

    # The feed changes the rate under the category: the order is skipped with the reason, never mis-invoiced.
    await set_product(t, "MUG", name="Mug", prices=[PriceInput(None, "5", "0", "20")])
    await f.order(c)
    report = await run_by_name(t, "acme", clock=at(T0 + timedelta(hours=1)))
    assert report.outcome == RunOutcome.NO_ORDERS
    assert "VAT category AE contradicts its 20 % rate" in next(iter(report.skipped_by_reason))
    assert not (await dispatch("price default MUG cost=5 tax=20 category=auto", ctx)).error
    assert (await Price.get()).vat_category == ""


async def test_the_company_language_is_set_audited_and_snapshotted(db):
    t = await f.tenant()
    c = await f.company(t)
    ctx = admin(t)
    assert "Invoice language" in str((await dispatch("accounting acme", ctx)).blocks)
    bad = await dispatch("company set acme language=pt", ctx)
    assert bad.error and "not an invoice language" in bad.text
    ok = await dispatch("company set acme language=DE", ctx)
    assert not ok.error and "now in de" in str(ok.blocks)
    assert (await Company.get(id=c.id)).language == "de"
    assert [e.new for e in await audit.recent(t.id, target="company:acme") if e.action == "company.language"] == [
        {"language": "de"}]
    nobody = CommandContext(tenant=t, user_id="UOTHER")
    assert (await dispatch("company set acme language=fr", nobody)).error
    await f.price(t, "MUG", "5.00")
    await f.order(c)
    invoice = await Invoice.get(id=(await run_by_name(t, "acme", clock=at(T0))).invoice_id)
    assert invoice.language == "de"
    added = await dispatch('company add lux name="Lux SA" country=LU currency=GBP', ctx)
    assert not added.error and (await Company.get(short_name="lux")).language == ""


async def test_fx_rates_are_listed_and_only_admins_set_them(db):
    t = await f.tenant()
    nobody = CommandContext(tenant=t, user_id="UOTHER", clock=lambda: T0)
    assert "No exchange rates yet" in (await dispatch("fx", nobody)).text
    assert (await dispatch("fx set EUR GBP 0.85", nobody)).error
    assert not (await dispatch("fx set EUR GBP 0.85", admin(t))).error
    assert (await FxRate.get()).day == T0.date()
    bad = await dispatch("fx set EUR GBP 0.85 date=01/11/2026", admin(t))
    assert bad.error and "not a date" in bad.text
    listed = await dispatch("fx list", nobody)
    assert "1 EUR = 0.85 GBP · ops" in str(listed.blocks)
