"""Every script readable in the invoice PDF: fallback faces, HarfBuzz shaping, text extracted back."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import unicodedata
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from invoicing.delivery.fonts import faces as fonts
from invoicing.delivery.invoice_pdf.text import TextPDF
from invoicing.delivery.pdf import render_invoice_pdf
from tests.invoicing.delivery.test_pdf import BUYER_GB, SELLER_GB, make_doc, make_line, page_texts

NAMES = {
    "Japanese": "株式会社 山田商事",
    "Chinese": "北京长城贸易有限公司",
    "Korean": "주식회사 한빛상사",
    "Arabic": "شركة النور للتجارة",
    "Hebrew": "חברת אלפא סחר",
    "Greek": "Ελληνικά Εμπορική Α.Ε.",
    "Polish": "Żółty Łabędź Sp. z o.o.",
    "Cyrillic": "ООО «Ромашка»",
    "Thai": "บริษัท ไทยเทรด จำกัด",
    "Devanagari": "भारत ट्रेडर्स",
}
_RTL = ("Arabic", "Hebrew")


def squashed(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def rendered_text(doc: object) -> str:
    return "\n".join(page_texts(render_invoice_pdf(doc)))  # type: ignore[arg-type]


@pytest.mark.parametrize("script", list(NAMES))
def test_a_buyer_name_in_any_script_extracts_back(script: str) -> None:
    name = NAMES[script]
    doc = make_doc([make_line(1, description=f"{name} — mug")], buyer=replace(BUYER_GB, legal_name=name))

    text = rendered_text(doc)

    assert "\ufffd" not in text
    if script in _RTL:
        # Extraction gives right-to-left words in visual order; each word keeps its logical
        # letters, and the joined glyphs map back to the base letters, not presentation forms.
        for word in name.split():
            assert word in text
        assert not any(0xFB50 <= ord(ch) <= 0xFEFF for ch in text)
    elif script in ("Thai", "Devanagari"):
        assert squashed(name) in squashed(text)  # marks may be extracted apart from their base
    else:
        assert name in text


def test_arabic_is_shaped_into_joined_forms() -> None:
    pdf = TextPDF(fonts.attach)
    pdf.add_page()
    pdf.put(20, 20, "شركة النور", 10)

    font = pdf.fonts["notosansarabic"]
    glyphs = {glyph.glyph_name for glyph, _ in font.subset.items() if glyph is not None}
    isolated = {font.cmap[ord(ch)] for ch in "شركة النور"}

    # Joined letters are other glyphs than the isolated ones the code points map to
    # (initial sheen, final reh, final teh marbuta, …); unshaped text would use only those.
    assert glyphs - isolated - {"NULL", "space", ".notdef"}, glyphs


def test_only_documents_that_need_a_fallback_embed_it() -> None:
    plain = render_invoice_pdf(make_doc([make_line(1)]))
    japanese = render_invoice_pdf(make_doc([make_line(1)], buyer=replace(BUYER_GB, legal_name=NAMES["Japanese"])))

    assert b"NotoSansCJK" not in plain and b"NotoSansArabic" not in plain
    assert b"NotoSansCJK" in japanese and b"NotoSansArabic" not in japanese


def test_mixed_scripts_on_one_line_keep_the_latin_part_intact() -> None:
    # After a fallback run the page's font state must be the main face again.
    buyer = replace(BUYER_GB, legal_name="Yamada 山田 Trading", city="東京都", postcode="100-0005",
                    email="keiri@yamada.example", country="JP")  # fmt: skip
    text = rendered_text(make_doc([make_line(1)], buyer=buyer))

    for expected in ("Yamada 山田 Trading", "100-0005 東京都", "Japan", "keiri@yamada.example"):
        assert expected in text


def test_a_document_in_every_script_renders_to_the_same_bytes_in_another_process() -> None:
    buyer = replace(BUYER_GB, legal_name=" ".join(NAMES.values()))
    doc = make_doc([make_line(i, description=NAMES[s]) for i, s in enumerate(NAMES)], buyer=buyer)
    script = (
        "import sys, pickle; from invoicing.delivery.pdf import render_invoice_pdf; "
        "sys.stdout.buffer.write(render_invoice_pdf(pickle.loads(sys.stdin.buffer.read())))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], input=pickle.dumps(doc), capture_output=True, check=True,
        cwd=Path(__file__).resolve().parents[3], env={"PYTHONHASHSEED": "4321", "PATH": ""},
    ).stdout  # fmt: skip

    assert other == render_invoice_pdf(doc) == render_invoice_pdf(doc)
    assert len(PdfReader(io.BytesIO(other)).pages) == 1


def test_a_seller_in_arabic_is_printed_in_header_footer_and_payment() -> None:
    seller = replace(SELLER_GB, legal_name=NAMES["Arabic"])

    pages = page_texts(render_invoice_pdf(make_doc([make_line(1)], seller=seller)))

    for word in NAMES["Arabic"].split():
        assert pages[0].count(word) >= 3  # head, payment ("Bank transfer to …"), footer


_ANY_SCRIPT = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x24F),  # Latin
    st.characters(min_codepoint=0x370, max_codepoint=0x4FF),  # Greek, Cyrillic
    st.characters(min_codepoint=0x590, max_codepoint=0x6FF),  # Hebrew, Arabic (marks, digits, unassigned too)
    st.characters(min_codepoint=0x3040, max_codepoint=0x30FF),  # kana
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK ideographs, most outside the subset
    st.characters(min_codepoint=0xE00, max_codepoint=0xE7F),  # Thai
    st.sampled_from([" ", "\n", "\u200f", "\u202e", "\u0301", "€"]),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(_ANY_SCRIPT, max_size=120), description=st.text(_ANY_SCRIPT, max_size=300))
def test_any_mix_of_scripts_renders_deterministically(name: str, description: str) -> None:
    doc = make_doc([make_line(1, description=description), make_line(2)], buyer=replace(BUYER_GB, legal_name=name))

    data = render_invoice_pdf(doc)

    assert data == render_invoice_pdf(doc)
    assert "INV-00042" in page_texts(data)[0]


def test_a_pdfa_invoice_carries_its_issue_time_in_every_xmp_date() -> None:
    """fpdf2 stamps XMP's ModifyDate and MetadataDate with the time of output: the same invoice rendered in two
    different seconds came out different (the byte equality below failed whenever two renders straddled one)."""
    doc = make_doc([make_line(1)])
    data = render_invoice_pdf(doc, enforce_compliance="PDF/A-3B")
    issued = doc.issued_at.astimezone(UTC).isoformat(timespec="seconds")
    for name in ("CreateDate", "ModifyDate", "MetadataDate"):
        assert f'xmp:{name}="{issued}"'.encode() in data, name


def test_a_pdfa_invoice_in_several_scripts_embeds_every_face_it_uses() -> None:
    buyer = replace(BUYER_GB, legal_name=f"{NAMES['Japanese']} {NAMES['Arabic']}")
    doc = make_doc([make_line(1, description=NAMES["Hebrew"])], buyer=buyer)

    data = render_invoice_pdf(doc, enforce_compliance="PDF/A-3B")

    assert b"<pdfaid:part>3</pdfaid:part>" in data
    text = page_texts(data)[0]
    assert NAMES["Japanese"] in text and all(word in text for word in NAMES["Hebrew"].split())
    fonts_used = {str(font.get_object()["/BaseFont"]).split("+")[-1]
                  for font in PdfReader(io.BytesIO(data)).pages[0]["/Resources"]["/Font"].values()}  # fmt: skip
    assert {"DejaVuSansCondensed", "NotoSansCJKJP", "NotoSansArabic", "NotoSansHebrew"} <= {
        name.replace("-", "").replace("Regular", "").replace("Bold", "") for name in fonts_used}, fonts_used
    assert data == render_invoice_pdf(doc, enforce_compliance="PDF/A-3B")
