"""content=invoices: each invoice and credit note as UBL 2.1 / Peppol BIS 3.0, valid EN 16931."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from lxml import etree

from invoicing.billing.credit_document import load_credit_document
from invoicing.billing.credit_notes import CreditRequest, issue_credit_note
from invoicing.billing.credit_plan import parse_selection
from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice import validation
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.integrations.xml_export.documents import ubl_document
from invoicing.integrations.xml_export.schema import XmlExportInvalid
from models import CreditNote, Invoice, Tenant
from tests import factories as f
from tests.factories import T0
from tests.invoicing.delivery.einvoice import documents

UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}


def test_an_invoice_is_a_valid_ubl_invoice_with_its_number_and_totals() -> None:
    doc = documents.domestic_de()
    xml = ubl_document(doc)
    assert validation.validate(xml, "ubl").ok
    root = etree.fromstring(xml)
    assert etree.QName(root).localname == "Invoice"
    assert root.findtext("cbc:ID", namespaces=UBL) == doc.number
    assert Decimal(root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=UBL) or "") == doc.gross_total


def test_a_credit_note_is_a_valid_ubl_credit_note_referencing_the_invoice() -> None:
    doc = documents.credit_note()
    root = etree.fromstring(ubl_document(doc))
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=UBL) == "INK-000042"


def test_the_same_document_gives_the_same_bytes() -> None:
    assert ubl_document(documents.intra_eu_de_fr()) == ubl_document(documents.intra_eu_de_fr())


def test_a_currency_en_16931_cannot_carry_is_refused_with_the_reason() -> None:
    with pytest.raises(XmlExportInvalid, match="Cannot export invoice INK-000042 as UBL: .*BHD has 3"):
        ubl_document(documents.bhd())


def test_a_document_whose_figures_break_the_cen_rules_is_never_returned() -> None:
    doc = documents.domestic_de(3)
    wrong = replace(doc, gross_total=doc.gross_total + Decimal("1.00"))
    with pytest.raises(XmlExportInvalid, match="not valid EN 16931: .*BR-"):
        ubl_document(wrong)


async def test_a_stored_invoice_and_its_credit_note_export_as_valid_ubl(db) -> None:
    t = await f.tenant()
    c = await f.company(t)
    await f.price(t, "MUG", "5.00", shipping="1.50")
    await f.order(c, quantity=2)
    report = await run_by_name(t, "acme", clock=lambda: T0)
    invoice = await Invoice.get(id=report.invoice_id)
    doc = await InvoiceDocument.load(invoice)
    root = etree.fromstring(ubl_document(doc))
    assert root.findtext("cbc:ID", namespaces=UBL) == invoice.display_number
    t = await Tenant.get(id=t.id)
    request = CreditRequest(invoice.display_number, parse_selection("all"), "Damaged in transit", False)
    issued = await issue_credit_note(t, request, actor="slack:U1", now=T0 + timedelta(days=3),
                                     mail_domain="inkwell.example")
    note = await load_credit_document(await CreditNote.get(id=issued.credit_note.id))
    root = etree.fromstring(ubl_document(note))
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID",
                         namespaces=UBL) == invoice.display_number
