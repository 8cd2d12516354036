"""The shared validators: control characters, yes/no switches and ISO instants, each defined once for every caller."""

from __future__ import annotations

import io
import sys
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from invoicing.billing.document import (
    DocumentLine,
    DocumentTaxBand,
    InvoiceDocument,
    Party,
)
from invoicing.billing.queries import parse_bound
from invoicing.delivery.bcc import parse_bcc
from invoicing.delivery.mail import compose_invoice_email
from invoicing.delivery.pdf import render_invoice_pdf
from invoicing.errors import InvalidInput
from invoicing.parties.accounting import normalise_accounting, normalise_email
from invoicing.validation import (
    has_control_characters,
    is_control_character,
    parse_instant,
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


# --- ISO 8601 instants ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "instant"), [
    ("2026-11-20T14:03:00Z", datetime(2026, 11, 20, 14, 3, tzinfo=UTC)),
    (" 2026-11-20T15:03:00+01:00 ", datetime(2026, 11, 20, 14, 3, tzinfo=UTC)),
    ("2026-11-20 14:03:00.5-05:00", datetime(2026, 11, 20, 19, 3, 0, 500000, tzinfo=UTC)),
])
def test_an_instant_with_an_offset_is_read_as_utc(text, instant):
    parsed = parse_instant(text, "dispatched_at")
    assert parsed == instant and parsed.tzinfo is UTC


@pytest.mark.parametrize(("text", "reason"), [
    ("2026-11-20T14:03:00", "must include a time zone offset, e.g. Z for UTC"),
    ("2026-11-20", "must include a time zone offset, e.g. Z for UTC"),
    ("20 Nov 2026", "'20 Nov 2026' is not an ISO 8601 date-time such as 2026-11-20T14:03:00Z"),
    ("2026-11-31T10:00:00Z", "'2026-11-31T10:00:00Z' is not an ISO 8601 date-time such as 2026-11-20T14:03:00Z"),
])
def test_an_instant_without_an_offset_or_not_a_date_time_is_refused(text, reason):
    with pytest.raises(InvalidInput) as info:
        parse_instant(text, "dispatched_at")
    assert (info.value.field, info.value.reason) == ("dispatched_at", reason)


# Fixed offsets: what a text instant carries (a zone's DST gap would generate instants that do not exist).
_OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 29), timezones=_OFFSETS),
       st.sampled_from(["T", " "]))
def test_every_entry_point_reads_an_iso_instant_the_same(moment, separator):
    text = moment.isoformat(sep=separator)
    assert parse_instant(text, "at") == moment
    assert parse_bound(text, "from", end=False) == moment == parse_bound(text, "to", end=True)


@pytest.mark.parametrize(("text", "end", "zone"), [
    ("9999-12-31", True, "UTC"),  # the day after has no date
    ("0001-01-01T00:00:00+14:00", False, "UTC"),  # before year 1 in UTC
    ("9999-12-31T23:59:59-12:00", True, "UTC"),  # after year 9999 in UTC
    ("0001-01-01", False, "Asia/Tokyo"),  # local midnight (LMT +09:18) is before year 1 in UTC
])
def test_date_bounds_at_the_edge_of_the_calendar_are_refused_not_crashed(text: str, end: bool, zone: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_bound(text, "to", end=end, timezone=zone)
    assert refused.value.field == "to"
    assert "out of range" in refused.value.reason


def test_an_instant_outside_the_utc_calendar_is_refused_not_crashed() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_instant("0001-01-01T00:00:00+01:00", "dispatched_at")
    assert "out of range" in refused.value.reason
