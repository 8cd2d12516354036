"""The invoice PDF: what an accountant reads in it, page layout, Unicode, determinism, VAT notices."""

from __future__ import annotations

import io
import math
import pickle
import random
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fpdf import FPDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from invoicing.billing.document import (
    DocumentLine,
    DocumentTaxBand,
    InvoiceDocument,
    Party,
)
from invoicing.billing.vat_rules import eu_country
from invoicing.delivery.fonts import faces as fonts
from invoicing.delivery.mail import compose_invoice_email, period_text
from invoicing.delivery.pdf import (
    FIRST_PAGE_ROWS,
    NEXT_PAGE_ROWS,
    _compose,
    render_invoice_pdf,
)

ISSUED = datetime(2026, 11, 8, 0, 5, tzinfo=UTC)

SELLER_GB = Party(
    legal_name="Print Works Ltd",
    address_line1="1 Printer Lane",
    city="Leeds",
    postcode="LS1 4AP",
    country="GB",
    vat_number="GB123456789",
    company_number="01234567",
    email="accounts@printworks.co.uk",
    phone="+44 113 496 0000",
    iban="GB33 BUKB 2020 1555 5555 55",
    bic="BUKBGB22",
)
BUYER_GB = Party(
    legal_name="Retail Co Ltd",
    address_line1="22 High Street",
    city="Bristol",
    postcode="BS1 2AA",
    country="GB",
    vat_number="GB987654321",
    company_number="07654321",
    email="ap@retail.example",
)
SELLER_DE = Party(legal_name="Druckerei Nord GmbH", city="Hamburg", postcode="20095", country="DE",
                  vat_number="DE811111111", company_number="HRB 1")  # fmt: skip
BUYER_FR = Party(legal_name="Boutique Lumière SARL", city="Lyon", postcode="69002", country="FR",
                 vat_number="FR40303265045", email="compta@lumiere.example")  # fmt: skip


def make_line(i: int, *, rate: str = "20", cost: str = "4.50", shipping: str = "1.00", quantity: int = 2,
              description: str = "Mug, white", order_ref: str | None = None) -> DocumentLine:  # fmt: skip
    return DocumentLine(
        order_ref=order_ref or f"SO-{1000 + i}",
        dispatched_at=datetime(2026, 11, 2, 10, 0, tzinfo=UTC) + timedelta(minutes=i),
        sku=f"SKU-{i % 7}",
        description=description,
        quantity=quantity,
        unit_cost=Decimal(cost),
        unit_shipping=Decimal(shipping),
        tax_rate=Decimal(rate),
        net=(quantity * (Decimal(cost) + Decimal(shipping))).quantize(Decimal("0.01")),
    )


def make_doc(lines: list[DocumentLine], *, seller: Party = SELLER_GB, buyer: Party = BUYER_GB,
             currency: str = "GBP", number: str = "INV-00042", **changes: object) -> InvoiceDocument:  # fmt: skip
    """A consistent document: bands and totals follow the money rules from the lines."""
    nets: dict[Decimal, Decimal] = {}
    for line in lines:
        nets[line.tax_rate] = nets.get(line.tax_rate, Decimal(0)) + line.net
    bands = tuple(
        DocumentTaxBand(rate=rate, net=net, tax=(net * rate / 100).quantize(Decimal("0.01")))
        for rate, net in sorted(nets.items(), reverse=True)
    )
    net_total = sum((b.net for b in bands), Decimal(0))
    tax_total = sum((b.tax for b in bands), Decimal(0))
    doc = InvoiceDocument(
        tenant_name="acme",
        number=number,
        issued_at=ISSUED,
        period_start=datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
        period_end=datetime(2026, 11, 8, 0, 0, tzinfo=UTC),
        timezone="Europe/London",
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=tuple(lines),
        tax_bands=bands,
        net_total=net_total,
        tax_total=tax_total,
        gross_total=net_total + tax_total,
        payment_terms_days=30,
        order_count=len(lines),
    )
    return replace(doc, **changes)  # type: ignore[arg-type]


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def text_of(doc: InvoiceDocument) -> str:
    return "\n".join(page_texts(render_invoice_pdf(doc)))


def subset_names(data: bytes) -> dict[int, str]:
    """The BaseFont name of every embedded font subset, by the object number of its font program.

    Checks on the way that the Type0 font, its CIDFont and the font descriptor name a
    subset alike, as ISO 32000-1 §9.6.4 and §9.7.6 want.
    """
    names: dict[int, str] = {}
    for page in PdfReader(io.BytesIO(data)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            cid_font = font["/DescendantFonts"][0].get_object()
            descriptor = cid_font["/FontDescriptor"].get_object()
            assert font["/BaseFont"] == cid_font["/BaseFont"] == descriptor["/FontName"]
            names[descriptor["/FontFile2"].indirect_reference.idnum] = str(font["/BaseFont"])
    return names


def subset_tag(name: str) -> str:
    """The tag of a subset's BaseFont name; fails unless it is six uppercase letters and "+"."""
    match = re.fullmatch(r"/([A-Z]{6})\+DejaVuSansCondensed(Bold)?", name)
    assert match is not None, name
    return match[1]


# -- content ---------------------------------------------------------------------------


def test_invoice_shows_parties_every_line_and_the_vat_breakdown() -> None:
    lines = [make_line(i) for i in range(5)]
    lines.append(make_line(5, rate="5", cost="1230.00", shipping="4.00", quantity=1, order_ref="SO-BIG"))
    doc = make_doc(lines)
    data = render_invoice_pdf(doc)
    text = "\n".join(page_texts(data))

    assert data.startswith(b"%PDF-")
    for expected in ("INVOICE", "INV-00042", "Print Works Ltd", "VAT no. GB123456789", "Company no. 01234567",
                     "accounts@printworks.co.uk", "BILL TO", "Retail Co Ltd", "VAT no. GB987654321",
                     "Company no. 07654321", "ap@retail.example", "United Kingdom"):  # fmt: skip
        assert expected in text
    for line in lines:
        assert line.order_ref in text
    assert "11.00" in text  # 2 × (4.50 + 1.00), without the sign in the table
    assert "1,234.00" in text
    # 5 lines at 20 % (£55.00 → £11.00) and one at 5 % (£1,234.00 → £61.70)
    assert "VAT 20 % (S) on £55.00 £11.00" in text
    assert "VAT 5 % (S) on £1,234.00 £61.70" in text
    assert "Net total £1,289.00" in text
    assert "VAT total £72.70" in text
    assert "Total due (GBP) £1,361.70" in text


def test_header_dates_payment_terms_and_bank_details() -> None:
    text = text_of(make_doc([make_line(1)]))

    assert "Issue date 08 Nov 2026" in text
    assert "Period 01 Nov 2026 – 07 Nov 2026" in text  # the end is an exclusive midnight cutoff
    assert "Due date 08 Dec 2026" in text
    assert "Payment due within 30 days" in text
    assert "IBAN: GB33 BUKB 2020 1555 5555 55" in text
    assert "BIC: BUKBGB22" in text
    assert "Reference: INV-00042" in text


def test_without_bank_details_only_the_terms_are_printed() -> None:
    text = text_of(make_doc([make_line(1)], seller=replace(SELLER_GB, iban="", bic=""), payment_terms_days=0))

    assert "IBAN" not in text and "Reference:" not in text
    assert "Payment due on receipt" in text


def test_dates_are_printed_in_the_documents_time_zone() -> None:
    late = replace(make_line(1), dispatched_at=datetime(2026, 11, 3, 23, 30, tzinfo=UTC))
    doc = make_doc([late], timezone="Europe/Warsaw", period_start=None)

    text = text_of(doc)

    assert "04/11/2026" in text  # 00:30 on the 4th in Warsaw
    assert "Period 04 Nov 2026 – 08 Nov 2026" in text  # no start: the earliest dispatch; 01:00 cutoff


_LATE = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)  # 00:30 on the 4th in Warsaw


@pytest.mark.parametrize(("changes", "in_pdf", "in_email"), [
    ({}, "01 Nov 2026 – 07 Nov 2026", "01 Nov–07 Nov 2026"),  # a weekly run: midnight cutoff
    ({"period_end": datetime(2026, 11, 8, 9, 30, tzinfo=UTC)}, "01 Nov 2026 – 08 Nov 2026", "01 Nov–08 Nov 2026"),
    # A first run with no starting_from: both start on the earliest dispatch (the e-mail used to say "up to …").
    ({"period_start": None, "timezone": "Europe/Warsaw"}, "04 Nov 2026 – 08 Nov 2026", "04 Nov–08 Nov 2026"),
])
def test_the_pdf_and_the_email_state_the_same_period(changes: dict[str, object], in_pdf: str, in_email: str) -> None:
    lines = [replace(make_line(1), dispatched_at=_LATE), replace(make_line(2), dispatched_at=_LATE + timedelta(days=2))]
    doc = make_doc(lines, **changes)

    assert f"Period {in_pdf}" in text_of(doc)
    assert period_text(doc) == in_email


def test_the_pdf_and_the_email_state_the_same_due_date() -> None:
    # 23:30 UTC is already the next day in Warsaw: both count the terms from that local day.
    doc = make_doc([make_line(1)], timezone="Europe/Warsaw", issued_at=datetime(2026, 11, 7, 23, 30, tzinfo=UTC))

    assert "Due date 08 Dec 2026" in text_of(doc)
    body = compose_invoice_email(doc, b"", mail_from="inv@x.example", to="ap@retail.example",
                                 message_id="<m@x>").get_body(preferencelist=("plain",)).get_content()
    assert "Due date:       08 Dec 2026" in body


def test_figures_dates_and_labels_follow_the_invoice_language() -> None:
    line = make_line(1, cost="1234.50", shipping="0.00", quantity=1, rate="19")
    buyer = replace(BUYER_FR, country="DE", legal_name="Kunde GmbH")

    text = text_of(make_doc([line], seller=SELLER_DE, buyer=buyer, currency="EUR", language="de"))

    assert "1.234,50\xa0€" in text
    assert "USt. 19 % (S) auf 1.234,50\xa0€ 234,56\xa0€" in text
    assert "02.11.2026" in text  # four-digit years in the table too
    assert "Fällig am 08.12.2026" not in text and "Fällig am 08 Dez. 2026" in text
    assert "Due date" not in text and "Invoice" not in text


def test_metadata_names_the_invoice_seller_and_buyer() -> None:
    meta = PdfReader(io.BytesIO(render_invoice_pdf(make_doc([make_line(1)])))).metadata

    assert meta is not None
    assert meta.title == "Invoice INV-00042"
    assert meta.author == "Print Works Ltd"
    assert meta.subject == "Invoice INV-00042 · Retail Co Ltd"
    assert meta.creator == "InvoiceBot"
    assert meta["/CreationDate"] == "D:20261108000500Z"


def squashed(text: str) -> str:
    """``text`` without any whitespace: a wrapped value extracts as its lines, broken where it wrapped."""
    return "".join(text.split())


def test_nothing_is_cut_long_texts_wrap_and_large_figures_stay_whole() -> None:
    description = " ".join(f"word{i}" for i in range(50))[:300]  # the stored maximum is 300 characters
    huge = make_line(1, cost="9999999.99", shipping="0.00", quantity=1, description=description)
    long_ref = replace(make_line(2), order_ref="ORDER-" + "X" * 58, sku="S" * 64)

    pages = page_texts(render_invoice_pdf(make_doc([huge, long_ref])))

    assert len(pages) == 1
    assert "9,999,999.99" in pages[0]
    assert "…" not in pages[0]
    for value in (description, long_ref.order_ref, long_ref.sku):
        assert squashed(value) in squashed(pages[0])


POLISH = "Przedsiębiorstwo Handlowo-Usługowe „Żółty Łabędź” Spółka z ograniczoną odpowiedzialnością Spółka Komandytowa"


def test_every_stored_name_and_address_line_is_printed_whole() -> None:
    seller = replace(SELLER_GB, legal_name=POLISH + " Oddział w Łodzi", address_line1="ul. " + "Piotrkowska " * 12,
                     country="PL")  # fmt: skip
    buyer = replace(BUYER_GB, legal_name="Retail " * 28 + "Ltd", address_line2="Unit 7, " * 12 + "Estate",
                    email="accounts.payable.department@" + "very-long-subdomain." * 4 + "example")  # fmt: skip
    doc = make_doc([make_line(1, description="Ceramic mug " * 25)], seller=seller, buyer=buyer)

    text = "\n".join(page_texts(render_invoice_pdf(doc)))

    assert "…" not in text
    for value in (seller.legal_name, seller.address_line1, buyer.legal_name, buyer.address_line2, buyer.email,
                  doc.lines[0].description):  # fmt: skip
        assert squashed(value) in squashed(text)
    assert squashed(f"Bank transfer to {seller.legal_name}") in squashed(text)


# -- pages -----------------------------------------------------------------------------


def test_a_500_line_invoice_repeats_the_table_header_and_numbers_its_pages() -> None:
    doc = make_doc([make_line(i) for i in range(400)])
    # One-line rows: 30 on page 1, 43 on each next page: 30 + 8 × 43 = 374, the last
    # 26 rows and the totals share page 10.
    assert (FIRST_PAGE_ROWS, NEXT_PAGE_ROWS) == (30, 43)
    expected_pages = 1 + math.ceil((400 - FIRST_PAGE_ROWS) / NEXT_PAGE_ROWS)
    assert expected_pages == 10

    pages = page_texts(render_invoice_pdf(doc))

    assert len(pages) == 10
    for number, text in enumerate(pages, start=1):
        assert "Order ref" in text and "Net GBP" in text
        assert f"Invoice INV-00042 · Page {number} of 10" in text
    assert "SO-1029" in pages[0] and "SO-1030" not in pages[0]
    assert "SO-1030" in pages[1]
    assert "SO-1399" in pages[9] and "Total due (GBP)" in pages[9]
    assert "(continued)" in pages[1] and "(continued)" not in pages[0]


def test_totals_that_do_not_fit_take_the_last_rows_with_them() -> None:
    doc = make_doc([make_line(i) for i in range(FIRST_PAGE_ROWS)])

    pages = page_texts(render_invoice_pdf(doc))

    assert len(pages) == 2
    assert "Total due" not in pages[0] and "Total due (GBP)" in pages[1]
    last, before = f"SO-{1000 + FIRST_PAGE_ROWS - 1}", f"SO-{1000 + FIRST_PAGE_ROWS - 2}"
    assert "Order ref" in pages[1] and last in pages[1] and before in pages[1]
    assert last not in pages[0] and before not in pages[0]


@pytest.mark.parametrize("rows", range(20, 120, 3))
def test_the_totals_never_stand_alone_on_a_page(rows: int) -> None:
    lines = [make_line(i, description="Poster A2, matte, gallery edition" if i % 4 else "Mug") for i in range(rows)]
    doc = make_doc(lines, notes=("Zero-rated export of goods.",))

    pages = page_texts(render_invoice_pdf(doc))

    assert "Total due (GBP)" in pages[-1]
    assert re.search(r"SO-1\d{3}", pages[-1]), "the last page has rows as well as the totals"


# -- Unicode ---------------------------------------------------------------------------


def test_polish_german_greek_and_currency_signs_extract_intact() -> None:
    seller = replace(SELLER_GB, legal_name="Łódź Druk Sp. z o.o.", city="Łódź", country="PL")
    buyer = replace(BUYER_GB, legal_name="Müller & Söhne GmbH", country="DE")
    lines = [make_line(1, description="Ελληνικά"), make_line(2, description="Prices in € £ $")]

    text = text_of(make_doc(lines, seller=seller, buyer=buyer, currency="EUR"))

    for expected in ("Łódź Druk Sp. z o.o.", "Müller & Söhne GmbH", "Ελληνικά", "€ £ $"):
        assert expected in text


def test_characters_outside_every_face_become_replacement_marks() -> None:
    buyer = replace(BUYER_GB, legal_name="Shop \U00013000\tLtd\n")  # an Egyptian hieroglyph

    text = text_of(make_doc([make_line(1)], buyer=buyer))

    assert "Shop \ufffd Ltd" in text


_FONT_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x17F),  # Latin-1 + Latin Extended-A
    st.characters(min_codepoint=0x370, max_codepoint=0x3FF),  # Greek (and a few unassigned points)
    st.sampled_from(["\n", "\t", " ", "€", "–", "…", "\u0301"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(_FONT_ALPHABET, max_size=80),
    description=st.text(_FONT_ALPHABET, max_size=300),
    sku=st.text(_FONT_ALPHABET, max_size=30),
)
def test_any_text_in_the_fonts_coverage_renders(name: str, description: str, sku: str) -> None:
    line = replace(make_line(1, description=description), sku=sku, order_ref=name[:20] or "SO-1")
    doc = make_doc([line, make_line(2)], buyer=replace(BUYER_GB, legal_name=name, address_line1=description[:50]))

    data = render_invoice_pdf(doc)

    assert "INV-00042" in page_texts(data)[0]


# -- determinism and the fast font path ------------------------------------------------


def test_the_same_document_renders_to_the_same_bytes() -> None:
    doc = make_doc([make_line(i) for i in range(20)])

    assert render_invoice_pdf(doc) == render_invoice_pdf(doc)


def test_a_subset_tag_already_taken_in_the_document_is_not_given_again() -> None:
    taken: set[str] = set()
    first = fonts._subset_tag("DejaVuSansCondensed", [".notdef", "A"], taken)
    again = fonts._subset_tag("DejaVuSansCondensed", [".notdef", "A"], taken)

    assert first != again and taken == {first, again}
    assert fonts._subset_tag("DejaVuSansCondensed", ["A", ".notdef"], set()) == first


def test_rendering_does_not_depend_on_the_process() -> None:
    doc = make_doc([make_line(i, description="Ωραίο μπλουζάκι") for i in range(3)])
    script = (
        "import sys, pickle; from invoicing.delivery.pdf import render_invoice_pdf; "
        "sys.stdout.buffer.write(render_invoice_pdf(pickle.loads(sys.stdin.buffer.read())))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], input=pickle.dumps(doc), capture_output=True, check=True,
        cwd=Path(__file__).resolve().parents[3], env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout  # fmt: skip

    assert other == render_invoice_pdf(doc)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Ŋorth Ħoldings Ψ ŀ", id="repertoire glyphs: subset from the cut-down font"),
        pytest.param("Ǽquatorial Ʒ Ǯ", id="glyphs outside the repertoire: subset from the full font"),
    ],
)
def test_shared_fonts_produce_the_bytes_of_plain_fpdf2_add_font(name: str) -> None:
    # A glyph set no other test uses, so the first render subsets afresh (cache miss)
    # and the second comes from the subset cache (hit): both must equal plain fpdf2.
    buyer = replace(BUYER_GB, legal_name=name)
    doc = make_doc([make_line(1, description="Ŀlama Ŧ-shirt"), make_line(2, rate="0")], buyer=buyer)

    reference = bytes(_compose(doc, fonts.attach_by_add_font).output())

    assert as_fpdf2_tags(render_invoice_pdf(doc)) == without_file_id(reference)
    assert as_fpdf2_tags(render_invoice_pdf(doc)) == without_file_id(reference)


def test_documents_that_share_a_character_map_share_its_font_tables_and_keep_plain_fpdf2_bytes() -> None:
    # The bold face: the same head, labels and buyer, so its characters are first used in the same
    # order and the second document's widths, ToUnicode and CIDToGIDMap come from the first one's
    # (faces._Face.mapped_tables); a third document whose buyer's characters beyond ASCII come in
    # another order gets tables of its own (ASCII has its places before anything is drawn: text._PRESET).
    # Either way the bytes are plain fpdf2's.
    first = make_doc([make_line(1, description="Ŀlama Ŧ-shirt Ǯ")], buyer=replace(BUYER_GB, legal_name="Ǯeta Ŀ 12"))
    second = replace(first, lines=[make_line(1, description="Ŧ-shirt Ǯ Ŀlama")])  # only regular text differs
    third = replace(first, buyer=replace(BUYER_GB, legal_name="Ŀ 21 ateǮ"))
    bold = fonts._face(fonts.FAMILY.lower() + "B")  # the buyer's name is set in bold
    render_invoice_pdf(first)
    known = len(bold._mapped)
    for doc, new_maps in ((second, 0), (third, 1)):
        reference = bytes(_compose(doc, fonts.attach_by_add_font).output())
        assert as_fpdf2_tags(render_invoice_pdf(doc)) == without_file_id(reference)
        assert len(bold._mapped) == known + new_maps


def as_fpdf2_tags(data: bytes) -> bytes:
    """``data`` with fpdf2's own subset tag, the one byte difference the fast path makes on purpose.

    fpdf2 2.8 tags every subset ``MPDFAA+``; the fast path gives each subset its own
    tag (ISO 32000-1 §9.6.4). The tags have the same length, so every offset still
    matches; only the /ID differs, being an MD5 of the bytes, so it is left out.
    """
    return without_file_id(re.sub(rb"/[A-Z]{6}\+DejaVuSansCondensed", b"/MPDFAA+DejaVuSansCondensed", data))


def without_file_id(data: bytes) -> bytes:
    return re.sub(rb"/ID \[<[0-9A-F]{32}><[0-9A-F]{32}>\]", b"/ID []", data)


def test_invoices_printed_in_ascii_share_one_subset_and_one_map_per_face() -> None:
    # Buyers whose names use different letters: before ASCII was placed first (text._PRESET), each
    # glyph set was a subset of its own (fontTools, ~12 ms) and each order of first use a map of its own.
    bold = fonts._face(fonts.FAMILY.lower() + "B")
    render_invoice_pdf(make_doc([make_line(1)], buyer=replace(BUYER_GB, legal_name="Zebra Quilts Ltd")))
    subsets, maps = len(bold._subsets), len(bold._mapped)
    for name in ("Jolly Kayak & Vixen", "Fjord (Wax) Brick #7", "Oak Pixel Dune!"):
        render_invoice_pdf(make_doc([make_line(1)], buyer=replace(BUYER_GB, legal_name=name)))
    assert (len(bold._subsets), len(bold._mapped)) == (subsets, maps)


def test_each_font_subset_has_its_own_six_letter_tag() -> None:
    doc = make_doc([make_line(i, description="Ελληνικά €") for i in range(3)])

    names = subset_names(render_invoice_pdf(doc))

    assert len(names) == 2  # regular and bold
    assert len({subset_tag(name) for name in names.values()}) == 2
    assert subset_names(render_invoice_pdf(doc)) == names  # derived from the subsets, not drawn at random


def test_subsets_of_the_same_glyphs_in_two_faces_have_different_tags() -> None:
    pdf = FPDF()
    fonts.attach(pdf)
    pdf.add_page()
    for style in ("", "B"):
        pdf.set_font(fonts.FAMILY, style, 12)
        pdf.text(20, 20, "Same glyphs")

    names = subset_names(fonts.output(pdf)).values()

    assert len(names) == 2
    assert len({subset_tag(name) for name in names}) == 2


def small_document(text: str, attach_fonts: Callable[[FPDF], None], *, compliance: str | None = None) -> FPDF:
    """One page with ``text`` in both faces (regular and bold), deterministic bytes."""
    pdf = FPDF(enforce_compliance=compliance)
    pdf.set_creation_date(ISSUED)
    attach_fonts(pdf)
    pdf.add_page()
    for y, style in ((20, ""), (30, "B")):
        pdf.set_font(fonts.FAMILY, style, 11)
        pdf.text(20, y, text)
    return pdf


def shared_glyph_counts() -> list[int]:
    """How many glyphs the parsed faces that every document shares hold."""
    return [len(face.template.ttfont.getGlyphOrder()) for face in fonts._faces().values()]


@pytest.mark.parametrize("compliance", ["PDF/A-3B", "PDF/A-1B"])  # PDF/A-1 adds a CIDSet per font
def test_pdfa_documents_render_through_the_shared_fonts_one_after_another(compliance: str) -> None:
    # fpdf2's own output subsets a font's tables in place; in PDF/A mode that must
    # not happen to the tables every document shares, or the next render lacks glyphs.
    glyphs = shared_glyph_counts()
    texts = (f"Łódź {compliance} Sp. z o.o.", f"Ελληνικά € Müller {compliance}")

    rendered = [fonts.output(small_document(text, fonts.attach, compliance=compliance)) for text in texts]

    assert shared_glyph_counts() == glyphs
    for text, data in zip(texts, rendered, strict=True):
        assert page_texts(data) == [f"{text}\n{text}"]
        assert f"<pdfaid:part>{compliance[6]}</pdfaid:part>".encode() in data
        # Distinct tags: the fast path wrote the fonts (fpdf2's own output tags both MPDFAA+).
        assert len({subset_tag(name) for name in subset_names(data).values()}) == 2
        reference = bytes(small_document(text, fonts.attach_by_add_font, compliance=compliance).output())
        # The same glyphs, CIDs and CIDSet as plain fpdf2.
        assert without_clock(as_fpdf2_tags(data)) == without_clock(without_file_id(reference))


def without_clock(data: bytes) -> bytes:
    """``data`` without the XMP dates that fpdf2's PDF/A mode takes from the wall clock."""
    return re.sub(rb'xmp:(Modify|Metadata)Date="[^"]*"', rb'xmp:\1Date=""', data)


def mix_in_another_font(pdf: FPDF) -> str:
    pdf.add_font("Other", "", Path(fonts.__file__).parent / "DejaVuSansCondensed.ttf")
    pdf.set_font("Other", "", 11)
    pdf.text(20, 40, "other")
    return "\nother"


def measure_with_offset_rendering(pdf: FPDF) -> str:
    # FPDFRecorder puts deep copies of the fonts back: plain TTFFonts that share the tables.
    with pdf.offset_rendering() as dummy:
        dummy.text(20, 40, "measured, not drawn")
    return ""


@pytest.mark.parametrize("leave_the_fast_path", [mix_in_another_font, measure_with_offset_rendering])
def test_documents_fpdf2_embeds_itself_leave_the_shared_fonts_whole(leave_the_fast_path: Callable[[FPDF], str]) -> None:
    # fpdf2's own output subsets each font's tables in place and closes them: the
    # shared faces must not hand it the tables every document shares.
    glyphs = shared_glyph_counts()
    for text in ("Łódź Sp. z o.o.", "Ελληνικά € Müller"):
        pdf = small_document(text, fonts.attach)
        more = leave_the_fast_path(pdf)

        assert page_texts(fonts.output(pdf)) == [f"{text}\n{text}{more}"]
    assert shared_glyph_counts() == glyphs
    assert page_texts(fonts.output(small_document("Ŋ after", fonts.attach))) == ["Ŋ after\nŊ after"]


def test_subsetting_from_the_repertoire_font_equals_subsetting_the_full_font() -> None:
    rng = random.Random(7)
    for face in fonts._faces().values():
        cmap = face.template.cmap
        # Glyphs fpdf2 asks for: .notdef, space and those of characters (some outside
        # the repertoire, some kept there only as components, e.g. Ʒ of Ǯ).
        names = sorted({cmap[c] for c in range(0x20, 0x250) if c in cmap} | {".notdef"})
        for _ in range(5):
            chosen = rng.sample(names, rng.randint(1, 120))
            assert face._make_subset(chosen) == face._make_subset(chosen, shortcut=False)


# -- legal notes (their wording: tests/invoicing/billing/test_legal_notes.py) -------------


def test_the_documents_legal_notes_are_printed_and_no_others() -> None:
    note = "Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1b i. V. m. § 6a UStG)."
    with_note = make_doc([make_line(1, rate="0")], seller=SELLER_DE, buyer=BUYER_FR, currency="EUR", notes=(note,))
    without = make_doc([make_line(1, rate="0")], seller=SELLER_DE, buyer=BUYER_FR, currency="EUR")

    assert note in text_of(with_note)
    assert "Lieferung" not in text_of(without) and "Article 196" not in text_of(without)


def test_eu_country_accepts_codes_and_the_greek_vat_prefix() -> None:
    assert eu_country(" fr ") == "FR"
    assert eu_country("EL") == "GR"
    assert eu_country("GB") is None
    assert eu_country("") is None


def test_unit_prices_keep_their_extra_decimals_so_every_net_can_be_recomputed() -> None:
    # 5 × (3.333 + 2.25) = 27.915 → 27.92; printing "3.33" would make it look like 27.90
    doc = make_doc([make_line(1, cost="3.333", shipping="2.25", quantity=5)])
    text = text_of(doc)
    assert "3.333" in text and "2.25" in text
