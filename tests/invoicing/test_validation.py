"""The shared validators: one definition of a control character, used by every entry point and output."""

from __future__ import annotations

import io
import sys
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from invoicing.billing.document import (
    DocumentLine,
    DocumentTaxBand,
    InvoiceDocument,
    Party,
)
from invoicing.delivery.bcc import parse_bcc
from invoicing.delivery.mail import compose_invoice_email
from invoicing.delivery.pdf import render_invoice_pdf
from invoicing.errors import InvalidInput
from invoicing.parties.accounting import normalise_accounting, normalise_email
from invoicing.validation import (
    has_control_characters,
    is_control_character,
    parse_switch,
    text,
)

#: One of each kind: C0 line breaks and TAB, NUL, DEL, a C1 control (NEL), the Unicode line/paragraph separators.
CONTROLS = ["\r", "\n", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u2029"]


def test_a_control_character_is_exactly_unicode_cc_zl_or_zp():
    every = "".join(chr(cp) for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF)
    assert {ch for ch in every if unicodedata.category(ch) in {"Cc", "Zl", "Zp"}} == {
        ch for ch in every if is_control_character(ch)}


REFUSERS: dict[str, Callable[[str], object]] = {
    "text": lambda value: text(value, "name"),
    "accounting": lambda value: normalise_accounting({"legal_name": value}, country="GB"),
    "email": lambda value: normalise_email(value),
    "bcc": parse_bcc,
}


@pytest.mark.parametrize("entry_point", sorted(REFUSERS))
@pytest.mark.parametrize("control", CONTROLS, ids=repr)
def test_every_entry_point_refuses_the_same_control_characters(entry_point, control):
    value = f"ap@acme.example{control}Bcc: spy@evil.example"
    assert has_control_characters(value)
    with pytest.raises(InvalidInput, match="line break or control character|line breaks or control characters"):
        REFUSERS[entry_point](value)


def _document(control: str) -> InvoiceDocument:
    line = DocumentLine("SO-1", datetime(2026, 11, 7, tzinfo=UTC), "MUG", f"Mug{control}white", 1, Decimal(5),
                        Decimal(0), Decimal(20), Decimal(5))
    return InvoiceDocument(
        tenant_name="inkwell", number=f"42{control}X", issued_at=datetime(2026, 11, 8, tzinfo=UTC), period_start=None,
        period_end=datetime(2026, 11, 8, tzinfo=UTC), timezone="UTC", currency="GBP",
        seller=Party(f"Evil{control}Ltd"), buyer=Party("Acme"), lines=(line,),
        tax_bands=(DocumentTaxBand(Decimal(20), Decimal(5), Decimal(1)),), net_total=Decimal(5), tax_total=Decimal(1),
        gross_total=Decimal(6), payment_terms_days=0, order_count=1,
    )


@pytest.mark.parametrize("control", CONTROLS, ids=repr)
def test_the_email_and_the_pdf_replace_the_same_control_characters_by_spaces(control):
    doc = _document(control)
    message = compose_invoice_email(doc, b"", mail_from="inv@x.example", to="ap@acme.example", message_id="<m@x>")
    assert message["X-Invoice-Number"] == "42 X"
    assert message["From"] == "Evil Ltd <inv@x.example>"
    printed = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(render_invoice_pdf(doc))).pages)
    assert "Evil Ltd" in printed and "Mug white" in printed


# --- yes/no switches ---------------------------------------------------------------------------------

#: Every word either former vocabulary accepted (PDF Emailer settings: on/off, true/false, yes/no, 1/0;
#: CSV import: true/false, yes/no, y/n, t/f, 1/0) means the same in the one vocabulary.
SWITCH_WORDS = {"on": True, "true": True, "yes": True, "y": True, "t": True, "1": True,
                "off": False, "false": False, "no": False, "n": False, "f": False, "0": False}


@pytest.mark.parametrize(("word", "meaning"), sorted(SWITCH_WORDS.items()))
def test_a_switch_accepts_every_word_of_the_one_vocabulary_in_any_case(word, meaning):
    assert parse_switch(word, "include_errors") is meaning
    assert parse_switch(f"  {word.upper()} ", "include_errors") is meaning
    assert parse_switch(meaning, "include_errors") is meaning


@pytest.mark.parametrize("value", ["maybe", "", "  ", "2", "onn", "ja"])
def test_anything_else_is_refused_with_the_settings_message_or_the_callers(value):
    with pytest.raises(InvalidInput) as info:
        parse_switch(value, "include_errors")
    assert info.value.field == "include_errors"
    assert info.value.reason == f"{value!r} is not on or off; use on/off (or true/false, yes/no)"
    with pytest.raises(InvalidInput, match=r"is not true or false$"):
        parse_switch(value, "on_hold", reason="is not true or false")
