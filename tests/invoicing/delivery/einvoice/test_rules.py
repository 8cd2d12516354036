"""Every kind of document passes the XSD and the official CEN EN 16931 Schematron, in both syntaxes.

The Schematron is ConnectingEurope/eInvoicing-EN16931's compiled XSLT (vendored in
invoicing/delivery/einvoice/rules) run with Saxon-HE; a document passes with zero failed
assertions flagged ``fatal``. The negative tests show the checks can fail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

import pytest
from lxml import etree

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice.cii import build_cii
from invoicing.delivery.einvoice.ubl import build_ubl
from invoicing.delivery.einvoice.validation import Syntax, validate
from tests.invoicing.delivery.einvoice import documents

BUILDERS: dict[Syntax, Callable[[InvoiceDocument], bytes]] = {"cii": build_cii, "ubl": build_ubl}


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
@pytest.mark.parametrize("case", sorted(documents.CASES))
def test_every_document_passes_xsd_and_cen_schematron(case: str, syntax: Syntax) -> None:
    xml = BUILDERS[syntax](documents.CASES[case]())
    report = validate(xml, syntax)
    assert report.ok, report.summary()
    assert not report.xsd_error


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
def test_schematron_catches_totals_that_do_not_add_up(syntax: Syntax) -> None:
    doc = dataclasses.replace(documents.domestic_de(), gross_total=Decimal("1.00"))
    report = validate(BUILDERS[syntax](doc), syntax)
    assert not report.ok
    assert "BR-CO-15" in {a.rule for a in report.errors}


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
def test_schematron_catches_vat_that_is_not_the_rate_of_its_taxable_amount(syntax: Syntax) -> None:
    doc = documents.domestic_de()
    (band,) = doc.tax_bands
    wrong = dataclasses.replace(band, tax=band.tax + Decimal("5.00"))  # the rule tolerates ±1 currency unit
    doc = dataclasses.replace(doc, tax_bands=(wrong,), tax_total=wrong.tax, gross_total=doc.net_total + wrong.tax)
    report = validate(BUILDERS[syntax](doc), syntax)
    assert "BR-S-09" in {a.rule for a in report.errors}, report.summary()


def test_xsd_catches_an_element_out_of_place() -> None:
    xml = build_cii(documents.domestic_de()).replace(b"<ram:TypeCode>380", b"<ram:Unknown/><ram:TypeCode>380", 1)
    report = validate(xml, "cii")
    assert "Unknown" in report.xsd_error


def test_a_credit_note_is_a_ubl_creditnote_that_references_the_original_invoice() -> None:
    doc = documents.credit_note()
    root = etree.fromstring(build_ubl(doc))
    ns = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
          "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=ns) == "381"
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", ns)
    assert reference is not None
    assert reference.findtext("cbc:ID", namespaces=ns) == "INK-000042"
    assert reference.findtext("cbc:IssueDate", namespaces=ns) == "2026-11-12"
    assert len(root.findall("cac:CreditNoteLine", ns)) == 2
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=ns) == str(doc.gross_total)


def test_intra_community_supply_states_category_k_with_vatex_and_the_deliver_to_country() -> None:
    root = etree.fromstring(build_ubl(documents.intra_eu_de_fr()))
    ns = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
          "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", ns)
    assert category is not None
    assert category.findtext("cbc:ID", namespaces=ns) == "K"
    assert category.findtext("cbc:TaxExemptionReasonCode", namespaces=ns) == "VATEX-EU-IC"
    assert "Article 138" in (category.findtext("cbc:TaxExemptionReason", namespaces=ns) or "")
    assert root.findtext("cac:Delivery/cac:DeliveryLocation/cac:Address/cac:Country/cbc:IdentificationCode",
                         namespaces=ns) == "FR"


def test_foreign_currency_invoice_states_vat_in_the_accounting_currency() -> None:
    doc = documents.foreign_currency_gb_eur()
    assert doc.fx is not None
    root = etree.fromstring(build_ubl(doc))
    ns = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
          "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
    assert root.findtext("cbc:TaxCurrencyCode", namespaces=ns) == "GBP"
    amounts = {a.get("currencyID"): a.text for a in root.findall("cac:TaxTotal/cbc:TaxAmount", ns)}
    assert amounts == {"EUR": str(doc.tax_total), "GBP": str(doc.fx.tax_total)}


def test_zero_rated_and_standard_bands_carry_no_exemption_reason_in_the_xml() -> None:
    """EN 16931 forbids BT-120/121 on S and Z (BR-S-10, BR-Z-10): the PDF may print a note, the XML must not."""
    doc = documents.mixed_rates()
    assert any(band.exemption_reason for band in doc.tax_bands if band.category == "Z")
    assert b"ExemptionReason" not in build_cii(doc)
    assert b"TaxExemptionReason" not in build_ubl(doc)


def test_an_invoice_not_subject_to_vat_names_no_vat_identifiers() -> None:
    """BR-O-02…04: with category O only, neither seller nor buyer VAT identifier is stated."""
    doc = documents.category("O")
    assert doc.seller.vat_number and doc.buyer.vat_number
    for xml in (build_cii(doc), build_ubl(doc)):
        assert doc.seller.vat_number.encode() not in xml and doc.buyer.vat_number.encode() not in xml
        assert b"RateApplicablePercent" not in xml and b"<cbc:Percent>" not in xml
