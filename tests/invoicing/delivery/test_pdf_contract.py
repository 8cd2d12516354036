"""What the document contract carries is on the PDF: VAT categories, exemption reasons, notes, FX, credit notes,
labels and dates in the invoice's language, tax ids in ink."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from invoicing.billing.document import DocumentTaxBand, FxConversion
from invoicing.delivery.invoice_pdf.labels import LANGUAGES, labels_for, locale_for
from invoicing.delivery.pdf import render_invoice_pdf
from tests.invoicing.delivery.test_pdf import BUYER_FR, SELLER_DE, SELLER_GB, make_doc, make_line, page_texts


def text_of(doc: object) -> str:
    return "\n".join(page_texts(render_invoice_pdf(doc)))  # type: ignore[arg-type]


def intra_community_doc(**changes: object) -> object:
    lines = [replace(make_line(i, rate="0"), vat_category="K") for i in range(3)]
    doc = make_doc(lines, seller=SELLER_DE, buyer=BUYER_FR, currency="EUR")
    band = replace(doc.tax_bands[0], category="K", exemption_reason="Intra-Community supply of goods",
                   exemption_code="VATEX-EU-IC")  # fmt: skip
    return replace(doc, tax_bands=(band,), **changes)


def test_each_line_shows_its_unit_price_and_vat_category() -> None:
    line = replace(make_line(1, cost="7.40", shipping="2.10", quantity=3, rate="0"), vat_category="G")

    text = text_of(make_doc([line]))

    assert "Unit price" in text
    assert "SO-1001 02/11/2026 SKU-1 Mug, white 3 7.40 2.10 9.50 0 G 28.50" in text


def test_a_zero_rate_band_shows_its_category_exemption_reason_and_vatex_code() -> None:
    text = text_of(intra_community_doc())

    assert "VAT 0 % (K) on 33,00\xa0€ 0,00\xa0€" in text  # English, as written in France (en_FR)
    assert "Intra-Community supply of goods (VATEX-EU-IC)" in text
    assert "VAT categories: K intra-Community supply" in text


def test_bands_per_category_and_rate_are_printed_in_the_documents_order() -> None:
    lines = [make_line(1, rate="20"), replace(make_line(2, rate="0"), vat_category="Z"),
             replace(make_line(3, rate="0"), vat_category="E")]  # fmt: skip
    doc = make_doc(lines)
    bands = (DocumentTaxBand(Decimal(20), Decimal("11.00"), Decimal("2.20"), "S"),
             DocumentTaxBand(Decimal(0), Decimal("11.00"), Decimal("0.00"), "Z", "Zero-rated goods", "VATEX-EU-Z"),
             DocumentTaxBand(Decimal(0), Decimal("11.00"), Decimal("0.00"), "E", "Exempt", "VATEX-EU-132"))  # fmt: skip

    text = text_of(replace(doc, tax_bands=bands))

    rows = ["VAT 20 % (S) on £11.00 £2.20", "VAT 0 % (Z) on £11.00 £0.00", "Zero-rated goods (VATEX-EU-Z)",
            "VAT 0 % (E) on £11.00 £0.00", "Exempt (VATEX-EU-132)"]  # fmt: skip
    positions = [text.index(row) for row in rows]
    assert positions == sorted(positions)


def test_the_documents_notes_are_printed_whole_under_the_totals() -> None:
    notes = ("Steuerfreie innergemeinschaftliche Lieferung gemäß § 4 Nr. 1 Buchst. b i. V. m. § 6a UStG und "
             "Art. 138 Richtlinie 2006/112/EG; der Leistungsempfänger schuldet die Erwerbsbesteuerung.",
             "Second note.")  # fmt: skip

    text = text_of(intra_community_doc(notes=notes, language="de"))

    flat = " ".join(text.split())
    assert notes[0] in flat and notes[1] in flat
    assert flat.index("Gesamtbetrag") < flat.index(notes[0])


def test_vat_restated_in_the_sellers_currency_with_rate_date_and_source() -> None:
    doc = make_doc([make_line(i) for i in range(5)], currency="EUR")
    fx = FxConversion(currency="GBP", rate=Decimal("0.8523"), rate_date=date(2026, 11, 30), source="ecb",
                      tax_bands=((Decimal(20), "S", Decimal("9.38")),), tax_total=Decimal("9.38"))  # fmt: skip

    flat = " ".join(text_of(replace(doc, fx=fx)).split())

    assert "VAT in GBP at 0.8523 (ECB, 30 Nov 2026): 20 % (S): £9.38 · Total VAT £9.38" in flat
    assert "VAT in GBP" not in text_of(doc)


def test_a_credit_note_names_itself_the_invoice_it_credits_and_why() -> None:
    doc = make_doc([make_line(1)], kind="credit_note", number="CN-000007", original_number="INV-00031",
                   original_issued_at=datetime(2026, 10, 31, 9, 0, tzinfo=UTC),
                   reason="Two mugs arrived broken")  # fmt: skip

    text = text_of(doc)

    for expected in ("CREDIT NOTE", "Credit note no. CN-000007", "Credits invoice INV-00031 of 31 Oct 2026",
                     "Reason: Two mugs arrived broken", "Total credited (GBP) £13.20", "AMOUNT CREDITED",
                     "Credit note CN-000007 · Page 1 of 1"):  # fmt: skip
        assert expected in text
    assert "INVOICE" not in text and "Due date" not in text and "IBAN" not in text
    meta = PdfReader(io.BytesIO(render_invoice_pdf(doc))).metadata
    assert meta is not None and meta.title == "Credit note CN-000007"


def test_a_german_credit_note() -> None:
    doc = make_doc([make_line(1)], seller=SELLER_DE, buyer=BUYER_FR, currency="EUR", kind="credit_note",
                   number="GS-1", original_number="RE-7", original_issued_at=datetime(2026, 10, 31, tzinfo=UTC),
                   reason="Rücksendung", language="de")  # fmt: skip

    text = text_of(doc)

    assert "RECHNUNGSKORREKTUR" in text and "Korrigiert Rechnung RE-7 vom 31 Okt. 2026" in text
    assert "Grund: Rücksendung" in text


_MONTH = {"en": "Nov", "de": "Nov.", "fr": "nov.", "pl": "lis", "es": "nov", "it": "nov", "nl": "nov"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_labels_and_dates_are_in_the_invoice_language_only(language: str) -> None:
    labels = labels_for(language)
    doc = make_doc([make_line(1), make_line(2, rate="5")], seller=SELLER_DE, buyer=BUYER_FR, currency="EUR",
                   language=language)  # fmt: skip

    text = text_of(doc)

    for key in ("invoice_title", "issue_date", "period", "due_date", "bill_to", "amount_due", "net_total",
                "vat_total", "payment", "col_description"):  # fmt: skip
        assert labels[key] in text, key
    assert f"08 {_MONTH[language]}" in text  # the issue date's month in the language
    if language != "en":
        english = labels_for("en")
        for key in ("issue_date", "due_date", "net_total", "vat_total", "col_description"):
            assert english[key] not in text, key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_year_has_four_digits(language: str) -> None:
    text = text_of(make_doc([make_line(1)], language=language))

    years = re.findall(r"(?<![\d,.])(\d{2,4})(?![\d,.])", text.replace("INV-00042", ""))
    assert "2026" in years
    dates = re.findall(r"\b\d{1,2}[./-]\d{1,2}[./-](\d+)\b", text)
    assert dates and all(len(year) == 4 for year in dates), dates


def test_every_language_has_every_label() -> None:
    english = set(labels_for("en"))
    for language in LANGUAGES:
        assert set(labels_for(language)) == english, language
    assert labels_for("xx") == labels_for("en")


def test_numbers_and_dates_follow_the_language_in_the_buyers_country() -> None:
    assert locale_for("de", "AT") == "de_AT"
    assert locale_for("de", "FR") == "de_DE"
    assert locale_for("fr", "BE") == "fr_BE"
    assert locale_for("en", "GB") == "en_GB"
    assert locale_for("xx", "GB") == "en_GB"


def colours_of(data: bytes, needle: str) -> set[str]:
    """The fill colours (``r g b rg``) the text containing ``needle`` is drawn in."""
    found: set[str] = set()
    colour = ""

    def before(operator: bytes, operands: list[object], *_: object) -> None:
        nonlocal colour
        if operator == b"rg":
            colour = " ".join(f"{float(v):.3f}" for v in operands)  # type: ignore[arg-type]

    def on_text(text: str, *_: object) -> None:
        if needle in text:
            found.add(colour)

    for page in PdfReader(io.BytesIO(data)).pages:
        page.extract_text(visitor_operand_before=before, visitor_text=on_text)
    return found


def test_tax_identifiers_are_printed_in_ink_not_in_grey() -> None:
    data = render_invoice_pdf(make_doc([make_line(1)], seller=SELLER_GB))

    ink, muted = "0.067 0.094 0.153", "0.420 0.447 0.502"
    assert colours_of(data, "VAT no. GB123456789") >= {ink}
    assert colours_of(data, "Company no. 01234567") >= {ink}
    assert colours_of(data, "1 Printer Lane") == {muted}  # the address stays grey
