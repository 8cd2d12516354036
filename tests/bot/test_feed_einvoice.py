"""``GET /api/v1/invoices/{number}.xml?syntax=ubl|cii``: the EN 16931 XML, tenant-scoped like the invoice."""

from __future__ import annotations

from lxml import etree

from invoicing.delivery.einvoice.validation import validate
from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.integrations.pdf_emailer.run import run_by_name
from tests import factories as f
from tests.bot.test_feed import Feed, order
from tests.bot.test_feed import feed as running_feed  # noqa: F401 - the feed fixture, under this name
from tests.factories import T0


async def _invoice(feed: Feed) -> str:
    assert (await feed.call("PUT", "/orders/acme/SO-1", order())).status == 201
    report = await run_by_name(feed.tenant, "acme", clock=lambda: T0)
    assert report.invoice_number == "INK-000001"
    return report.invoice_number


async def test_the_xml_of_an_invoice_in_ubl_by_default_and_in_cii_both_pass_the_cen_rules(running_feed):  # noqa: F811
    number = await _invoice(running_feed)
    ubl = await running_feed.call("GET", f"/invoices/{number}.xml")
    assert ubl.status == 200 and ubl.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert ubl.headers["Content-Disposition"] == 'inline; filename="INK-000001-ubl.xml"'
    assert etree.QName(etree.fromstring(ubl.body)).localname == "Invoice"
    report = validate(ubl.body, "ubl")
    assert report.ok, report.summary()
    cii = await running_feed.call("GET", f"/invoices/{number}.xml?syntax=CII")
    assert cii.status == 200
    assert etree.QName(etree.fromstring(cii.body)).localname == "CrossIndustryInvoice"
    assert validate(cii.body, "cii").ok
    assert f"<ram:ID>{number}</ram:ID>".encode() in cii.body


async def test_another_tenants_token_gets_404_and_no_token_401(running_feed):  # noqa: F811
    number = await _invoice(running_feed)
    assert (await running_feed.call("GET", f"/invoices/{number}.xml", token=running_feed.rival_token)).status == 404
    assert (await running_feed.call("GET", f"/invoices/{number}.xml", token=None)).status == 401
    assert (await running_feed.call("GET", "/invoices/INK-000009.xml")).status == 404


async def test_an_unknown_syntax_is_422_naming_the_choices(running_feed):  # noqa: F811
    number = await _invoice(running_feed)
    reply = await running_feed.call("GET", f"/invoices/{number}.xml?syntax=pdf")
    assert reply.status == 422
    assert reply.body["errors"][0]["path"] == "syntax" and "syntax=cii" in reply.body["errors"][0]["message"]


async def test_a_bhd_invoice_has_no_e_invoice_409_with_the_reason(running_feed):  # noqa: F811
    gulf = await f.company(running_feed.tenant, "gulf", country="BH", currency="BHD")
    await f.fx_rate(running_feed.tenant, "BHD", rate="2.09")
    await set_product(running_feed.tenant, "MUG", name="Mug", prices=[
        PriceInput(retailer="gulf", cost_price="1.250", shipping="0.500", tax_rate="0", currency="BHD")])
    assert (await running_feed.call("PUT", "/orders/gulf/G-1", order())).status == 201
    report = await run_by_name(running_feed.tenant, gulf.short_name, clock=lambda: T0)
    assert report.invoice_number is not None
    reply = await running_feed.call("GET", f"/invoices/{report.invoice_number}.xml")
    assert reply.status == 409
    assert "at most 2 decimals and BHD has 3" in reply.body["error"]
    assert (await running_feed.call("GET", f"/invoices/{report.invoice_number}.pdf")).status == 200
