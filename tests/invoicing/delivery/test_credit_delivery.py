"""A credit note is delivered like an invoice: its own PDF and e-mail, to the accounting address and BCC.

Seen from a real local SMTP server (aiosmtpd); the PDF is the real renderer's, read back
with pypdf. Both backends.
"""

from __future__ import annotations

import io
from datetime import timedelta
from email import policy
from email.parser import BytesParser

from pypdf import PdfReader

from invoicing.billing.credit_notes import CreditRequest, issue_credit_note
from invoicing.billing.credit_plan import parse_selection
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.pdf import render_invoice_pdf
from models import Delivery, DeliveryStatus, NoticeKind, SlackNotice, Tenant
from tests.factories import T0
from tests.invoicing.delivery.test_delivery import MAIL_FROM, Clock, issue_invoice, smtp, smtp_transport

__all__ = ["smtp"]  # the fixture, used by name below

LATER = T0 + timedelta(days=2)


async def _credited(bcc: list[str] | None = None):
    t, invoice_delivery = await issue_invoice(bcc=bcc)
    tenant = await Tenant.get(id=t.id)
    issued = await issue_credit_note(tenant, CreditRequest("000001", parse_selection("all"), "Damaged in transit"),
                                     actor="slack:U1", now=LATER, mail_domain="inkwell.example")
    return tenant, invoice_delivery, issued


async def test_the_credit_note_is_emailed_with_its_pdf_to_the_accounting_address_and_bcc(db, smtp, transports):
    port, server = smtp
    t, invoice_delivery, issued = await _credited(bcc=["ops@inkwell.example"])
    outbox = Outbox(smtp_transport(port, transports), render_invoice_pdf, MAIL_FROM, Clock(LATER))
    outcomes = await outbox.deliver_due()
    assert sorted((o.invoice_number, o.status) for o in outcomes) == [("000001", "sent"), ("CN-000001", "sent")]
    got = next(m for m in server.received if "Credit note" in str(m.message["Subject"]))
    assert got.rcpt_tos == ["ap@acme.example", "ops@inkwell.example"]
    message = BytesParser(policy=policy.default).parsebytes(got.content)
    assert message["Subject"] == ("Credit note CN-000001 for invoice 000001 from Inkwell Print & Ship Ltd — "
                                  "£15.60 credited")
    assert message["Message-ID"] == f"<credit-note.{t.id}.1@inkwell.example>" and "Bcc" not in message
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "credits invoice 000001 of 02 Nov 2026" in body and "Damaged in transit" in body
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "CN-000001.pdf"
    text = PdfReader(io.BytesIO(attachment.get_content())).pages[0].extract_text()
    for fact in ("CREDIT NOTE", "CN-000001", "000001", "Damaged in transit", "15.60"):
        assert fact in text, fact
    delivery = await Delivery.get(credit_note_id=issued.credit_note.id)
    assert delivery.status == DeliveryStatus.SENT and delivery.invoice_id == invoice_delivery.invoice_id


async def test_the_credit_note_pdf_is_deterministic(db):
    from invoicing.billing.credit_document import load_credit_document

    _, _, issued = await _credited()
    doc = await load_credit_document(issued.credit_note)
    assert render_invoice_pdf(doc) == render_invoice_pdf(doc)


async def test_a_failed_credit_note_email_is_reported_under_the_credit_notes_number(db, smtp, transports):
    port, server = smtp
    t, _, issued = await _credited()
    company = await issued.credit_note.company
    company.slack_channel = "C0BILLING"
    await company.save()
    server.always = "550 5.1.1 mailbox unavailable"
    outbox = Outbox(smtp_transport(port, transports), render_invoice_pdf, MAIL_FROM, Clock(LATER))
    await outbox.deliver_due()
    delivery = await Delivery.get(credit_note_id=issued.credit_note.id)
    assert delivery.status == DeliveryStatus.FAILED
    notice = await SlackNotice.get(dedupe_key=f"delivery-failed:{delivery.id}")
    assert notice.kind == NoticeKind.DELIVERY_FAILED and notice.payload["invoice_number"] == "CN-000001"
