"""The CII XML read back with drafthorse (the ZUGFeRD object model) says what the document says."""

from __future__ import annotations

import dataclasses

import pytest
from drafthorse.models.document import Document

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice.cii import build_cii
from invoicing.delivery.einvoice.profile import EN16931, EInvoiceUnavailable, refusal
from invoicing.delivery.einvoice.ubl import build_ubl
from tests.invoicing.delivery.einvoice import documents


def test_drafthorse_reads_back_number_type_parties_lines_and_totals() -> None:
    doc = documents.domestic_de(20)
    parsed = Document.parse(build_cii(doc))
    assert str(parsed.context.guideline_parameter.id) == EN16931
    assert str(parsed.header.id) == doc.number
    assert str(parsed.header.type_code) == "380"
    assert str(parsed.trade.agreement.seller.name) == doc.seller.legal_name
    assert str(parsed.trade.agreement.buyer.name) == doc.buyer.legal_name
    items = parsed.trade.items.children
    assert len(items) == 20
    assert [str(item.product.name) for item in items] == [line.description for line in doc.lines]
    assert [item.settlement.monetary_summation.total_amount._value for item in items] == \
        [line.net for line in doc.lines]
    totals = parsed.trade.settlement.monetary_summation
    assert totals.line_total._value == doc.net_total
    assert totals.grand_total._amount == doc.gross_total
    assert totals.due_amount._value == doc.gross_total


def test_credit_note_is_type_381_and_names_the_credited_invoice() -> None:
    parsed = Document.parse(build_cii(documents.credit_note()))
    assert str(parsed.header.type_code) == "381"
    assert parsed.trade.settlement.invoice_referenced_document.issuer_assigned_id._text == "INK-000042"


def test_export_band_is_category_g_with_its_exemption_reason() -> None:
    parsed = Document.parse(build_cii(documents.export_gb_us()))
    band = parsed.trade.settlement.trade_tax.children[0]
    assert str(band.category_code) == "G"
    assert str(band.exemption_reason_code) == "VATEX-EU-G"
    assert "Article 146" in str(band.exemption_reason)


def test_same_document_gives_the_same_bytes() -> None:
    assert build_cii(documents.domestic_de()) == build_cii(documents.domestic_de())
    assert build_ubl(documents.credit_note()) == build_ubl(documents.credit_note())


@pytest.mark.parametrize("build", [build_cii, build_ubl])
def test_a_three_decimal_currency_gets_a_clear_refusal_not_an_invalid_xml(build) -> None:  # type: ignore[no-untyped-def]
    doc = documents.bhd()
    with pytest.raises(EInvoiceUnavailable) as refused:
        build(doc)
    assert "at most 2 decimals" in refused.value.reason
    assert "BHD has 3" in refused.value.reason
    assert refusal(documents.export_gb_us()) is None


def _without_buyer_vat(doc: InvoiceDocument) -> InvoiceDocument:
    return dataclasses.replace(doc, buyer=dataclasses.replace(doc.buyer, vat_number=""))


def _as_standard_rate(doc: InvoiceDocument) -> InvoiceDocument:
    return dataclasses.replace(doc, lines=tuple(dataclasses.replace(line, vat_category="S") for line in doc.lines),
                               tax_bands=tuple(dataclasses.replace(b, category="S") for b in doc.tax_bands))


@pytest.mark.parametrize(("case", "expected"), [
    (lambda: _without_buyer_vat(documents.intra_eu_de_fr()), "VAT category K requires the buyer's VAT number"),
    (lambda: _as_standard_rate(documents.intra_eu_de_fr()), "VAT category S needs a rate above 0 %"),
    (lambda: dataclasses.replace(documents.export_gb_us(), tax_bands=tuple(
        dataclasses.replace(b, exemption_reason="", exemption_code="") for b in documents.export_gb_us().tax_bands)),
     "the G VAT breakdown needs an exemption reason or VATEX code"),
    (lambda: dataclasses.replace(documents.credit_note(), original_number=""), "must name the credited invoice"),
])
def test_categories_that_contradict_rates_or_parties_are_refused_never_written(case, expected) -> None:  # type: ignore[no-untyped-def]
    doc = case()
    assert expected in (refusal(doc) or "")
    for build in (build_cii, build_ubl):
        with pytest.raises(EInvoiceUnavailable):
            build(doc)
