"""What the PDF Emailer sends, per ``einvoice=auto|facturx|none``: seen from a real SMTP server (aiosmtpd).

Invoices are issued by the real run engine and rendered by the real renderer; the
attachment that arrives is parsed back (pypdf, the factur-x package) and its XML run
through the CEN Schematron.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import facturx
import pytest
from pypdf import PdfReader

from commands.emailer import show
from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice.validation import validate
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.pdf import render_invoice_pdf
from invoicing.delivery.transport import SmtpTransport
from invoicing.errors import InvalidInput
from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.integrations.pdf_emailer import settings as emailer_settings
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import AuditEntry, Company, Delivery, Invoice, InvoiceRun
from tests import factories as f
from tests.factories import T0
from tests.fakes.smtp import RecordingHandler, free_port, start_server

MAIL_FROM = "invoices@inkwell.example"


@pytest.fixture
def smtp() -> Iterator[tuple[int, RecordingHandler]]:
    controller, handler = start_server(free_port())
    yield controller.port, handler
    controller.stop()


async def _issue(country: str, currency: str, einvoice: str | None = None) -> tuple[Company, Delivery, str]:
    t = await f.tenant()
    c = await f.company(t, "acme", country=country, currency=currency)
    if currency != "GBP":  # the seller's accounting currency: its VAT is restated in GBP
        await f.fx_rate(t, currency)
    await set_product(t, "MUG", name="Mug", prices=[PriceInput(retailer="acme", cost_price="5.00", shipping="1.50",
                                                               tax_rate="20", currency=currency)])
    await f.emailer(c)
    if einvoice is not None:
        await emailer_settings.configure(c, now=T0, actor="U1", einvoice=einvoice)
    await f.order(c, quantity=2)
    report = await run_by_name(t, "acme", clock=lambda: T0, mail_domain="inkwell.example")
    assert report.invoice_id is not None, (report.outcome, report.message, report.skipped_by_reason)
    return c, await Delivery.get(invoice_id=report.invoice_id), report.message


async def _delivered_pdf(port: int, server: RecordingHandler) -> bytes:
    transport = SmtpTransport("127.0.0.1", port, security="none", timeout=5, local_hostname="localhost")
    try:
        outcomes = await Outbox(transport, render_invoice_pdf, MAIL_FROM, lambda: T0).deliver_due()
    finally:
        await transport.close()
    assert [o.status for o in outcomes] == ["sent"]
    (part,) = list(server.received[-1].message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    data: bytes = part.get_content()
    return data


async def _document(delivery: Delivery) -> InvoiceDocument:
    return await InvoiceDocument.load(await Invoice.get(id=delivery.invoice_id))


async def test_an_eu_buyer_gets_a_factur_x_pdf_by_default(db, smtp):
    port, server = smtp
    _, delivery, note = await _issue("DE", "EUR")
    assert note == ""
    pdf = await _delivered_pdf(port, server)
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    report = validate(xml, "cii")
    assert report.ok, report.summary()
    doc = await _document(delivery)
    assert f"<ram:ID>{doc.number}</ram:ID>".encode() in xml
    assert "/OutputIntents" in PdfReader(io.BytesIO(pdf)).trailer["/Root"]


async def test_a_buyer_outside_the_eu_gets_the_plain_pdf_by_default(db, smtp):
    port, server = smtp
    _, delivery, _ = await _issue("GB", "GBP")
    assert await _delivered_pdf(port, server) == render_invoice_pdf(await _document(delivery))


async def test_einvoice_none_sends_the_plain_pdf_to_an_eu_buyer(db, smtp):
    port, server = smtp
    _, delivery, _ = await _issue("DE", "EUR", einvoice="none")
    assert await _delivered_pdf(port, server) == render_invoice_pdf(await _document(delivery))


async def test_einvoice_facturx_applies_outside_the_eu_too(db, smtp):
    port, server = smtp
    await _issue("US", "USD", einvoice="facturx")
    _, xml = facturx.get_facturx_xml_from_pdf(await _delivered_pdf(port, server), check_xsd=True)
    assert validate(xml, "cii").ok


async def test_a_bhd_invoice_still_goes_as_pdf_and_the_run_report_says_why_there_is_no_e_invoice(db, smtp):
    port, server = smtp
    _, delivery, note = await _issue("BH", "BHD", einvoice="facturx")
    assert note == "No e-invoice: EN 16931 allows at most 2 decimals and BHD has 3; the PDF is the invoice."
    run = await InvoiceRun.get(invoice_id=delivery.invoice_id)
    assert "at most 2 decimals" in run.message
    pdf = await _delivered_pdf(port, server)
    assert pdf == render_invoice_pdf(await _document(delivery))
    assert "/EmbeddedFiles" not in PdfReader(io.BytesIO(pdf)).trailer["/Root"]


async def test_the_einvoice_setting_is_validated_audited_and_shown(db):
    t = await f.tenant()
    c = await f.company(t, "acme", country="FR", currency="EUR")
    with pytest.raises(InvalidInput) as refused:
        await emailer_settings.configure(c, now=T0, actor="U1", einvoice="xml")
    assert refused.value.field == "einvoice"
    assert (await emailer_settings.settings(c)).einvoice == "auto"

    result = await emailer_settings.configure(c, now=T0, actor="U1", einvoice="None")
    assert result.einvoice == "none"
    entry = await AuditEntry.filter(action="emailer.set").order_by("-id").first()
    assert entry is not None
    assert (entry.old, entry.new) == ({"einvoice": "auto"}, {"einvoice": "none"})
    text = str(show(result, c).blocks)
    assert "E-invoice" in text and "plain PDF: set to none" in text
    auto = await emailer_settings.configure(c, now=T0, actor="U1", einvoice="auto")
    assert "Factur-X (PDF/A-3 + EN 16931 XML): auto, Factur-X for EU buyers" in str(show(auto, c).blocks)
