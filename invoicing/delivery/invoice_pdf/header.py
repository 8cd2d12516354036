"""The head of page 1 (seller, invoice facts, buyer, amount due, credit-note reference) and of later pages.

Every name and address line wraps over as many lines as it needs; the table starts under
whatever the head took (``TABLE_TOP_FIRST`` at the least). Tax identifiers are in ink,
the rest of an address in the muted grey.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from babel import Locale

from invoicing.billing.document import InvoiceDocument, Party
from invoicing.delivery.invoice_pdf.formats import Formats
from invoicing.delivery.invoice_pdf.text import INK, MUTED, TextPDF, clean

__all__ = ["LEFT", "PAGE_H", "RIGHT", "TABLE_TOP_FIRST", "TABLE_TOP_NEXT", "continuation_header", "first_page_header",
           "labelled", "party_lines", "terms", "title_of"]  # fmt: skip

LEFT, RIGHT, PAGE_H = 15.0, 195.0, 297.0
TABLE_TOP_FIRST, TABLE_TOP_NEXT = 102.0, 29.0
_FACTS_X = 122.0
_PARTY_W = 100.0


def title_of(doc: InvoiceDocument, labels: Mapping[str, str]) -> str:
    """"Invoice" or "Credit note" in the document's language."""
    return labels["credit_note" if doc.kind == "credit_note" else "invoice"]


def first_page_header(pdf: TextPDF, doc: InvoiceDocument, fmt: Formats, labels: Mapping[str, str]) -> float:
    """Draw the head of page 1; returns where the table starts."""
    credit = doc.kind == "credit_note"
    put = pdf.put
    seller_name = clean(doc.seller.legal_name)
    size = max(11.0, min(15.0, pdf.fitted_size(seller_name, 108, 15, 11, bold=True)))
    y = 21.0
    name_lines = pdf.wrap(seller_name, 108, size, bold=True)
    for line in name_lines:
        put(LEFT, y, line, size, bold=True)
        y += size * 0.42
    y = _party_block(pdf, doc.seller, fmt, labels, LEFT, y + 1.5, with_contact=True)

    put(RIGHT, 21, labels["credit_note_title" if credit else "invoice_title"], 18, bold=True, right=True)
    period = doc.period()
    period_text = (labels["up_to"].format(date=fmt.calendar_date(period.last)) if period.first is None
                   else f"{fmt.calendar_date(period.first)} – {fmt.calendar_date(period.last)}")  # fmt: skip
    due = fmt.calendar_date(doc.due_date())
    facts = [(labels["credit_note_no" if credit else "invoice_no"], clean(doc.number)),
             (labels["issue_date"], fmt.day(doc.issued_at)), (labels["period"], period_text)]  # fmt: skip
    if not credit:
        facts.append((labels["due_date"], due))
    facts.append((labels["currency"], doc.currency))
    fy = 30.0
    for label, value in facts:
        put(_FACTS_X, fy, label, 8, color=MUTED)
        room = RIGHT - _FACTS_X - pdf.width(label, 8) - 3
        lines = pdf.wrap(value, room, 8, bold=True)
        for line in lines:
            put(RIGHT, fy, line, 8, bold=True, right=True)
            fy += 4.2
        fy += 0.6
    rule = max(60.0, y + 4, fy)
    pdf.line(LEFT, rule, RIGHT, rule)

    y = rule + 6
    put(LEFT, y, labels["bill_to"], 7, bold=True, color=MUTED)
    y += 4.5
    for line in pdf.wrap(clean(doc.buyer.legal_name), _PARTY_W, 10, bold=True):
        put(LEFT, y, line, 10, bold=True)
        y += 4.4
    y = _party_block(pdf, doc.buyer, fmt, labels, LEFT, y + 0.2, with_contact=False)

    put(RIGHT, rule + 6, labels["amount_credited" if credit else "amount_due"], 7, bold=True, color=MUTED, right=True)
    put(RIGHT, rule + 14, fmt.money(doc.gross_total), 18, bold=True, right=True)
    if not credit:
        put(RIGHT, rule + 20, labels["due_on"].format(date=due), 8, color=MUTED, right=True)
        put(RIGHT, rule + 24, terms(doc.payment_terms_days, labels), 8, color=MUTED, right=True)
    bottom = max(y, rule + 26)

    if credit:
        bottom = max(y + 8, rule + 32)
        original = fmt.day(doc.original_issued_at) if doc.original_issued_at else ""
        reference = labels["credits"].format(number=clean(doc.original_number), date=original)
        for line in pdf.wrap(reference, RIGHT - LEFT, 9, bold=True):
            put(LEFT, bottom, line, 9, bold=True)
            bottom += 4.4
        if doc.reason.strip():
            for line in pdf.wrap(labels["reason"].format(reason=clean(doc.reason)), RIGHT - LEFT, 8.5):
                put(LEFT, bottom, line, 8.5)
                bottom += 4
    return max(TABLE_TOP_FIRST, bottom + 6)


def continuation_header(pdf: TextPDF, doc: InvoiceDocument, labels: Mapping[str, str], *, draw: bool = True) -> float:
    """Seller and "Invoice N (continued)" at the top of a later page; returns where the table starts."""
    put = pdf.put if draw else _skip
    name = clean(doc.seller.legal_name)
    size = pdf.fitted_size(name, 110, 10, 7, bold=True)
    y = 20.0
    for line in pdf.wrap(name, 110, size, bold=True):
        put(LEFT, y, line, size, bold=True)
        y += size * 0.42
    continued = labels["continued"].format(title=title_of(doc, labels), number=clean(doc.number))
    put(RIGHT, 20, continued, 9, color=MUTED, right=True)
    rule = max(24.0, y - size * 0.42 + 4)
    if draw:
        pdf.line(LEFT, rule, RIGHT, rule)
    return TABLE_TOP_NEXT + (rule - 24)


def _skip(*_args: object, **_kwargs: object) -> None:
    return None


def _party_block(pdf: TextPDF, party: Party, fmt: Formats, labels: Mapping[str, str], x: float, y: float, *,
                 with_contact: bool) -> float:  # fmt: skip
    """Address, country, tax identifiers (in ink) and contact of a party, wrapped; returns the last baseline."""
    y += 3.6
    for text, color in party_lines(party, fmt, labels, with_contact=with_contact):
        for line in pdf.wrap(clean(text), _PARTY_W, 8):
            pdf.put(x, y, line, 8, color=color)
            y += 3.8
    return y - 3.6


def party_lines(party: Party, fmt: Formats, labels: Mapping[str, str], *,
                with_contact: bool) -> list[tuple[str, tuple[int, int, int]]]:  # fmt: skip
    """The printed lines of a party with their colour, empty ones left out."""
    country = party.country.strip().upper()
    if country in ("GB", "US", "IE", "CA", "AU"):
        place = ", ".join(p for p in (party.city, " ".join(p for p in (party.region, party.postcode) if p)) if p)
    else:
        place = ", ".join(p for p in (" ".join(p for p in (party.postcode, party.city) if p), party.region) if p)
    contact = " · ".join(p for p in (party.email, party.phone if with_contact else "") if p)
    lines = [(party.address_line1, MUTED), (party.address_line2, MUTED), (place, MUTED),
             (_country_name(country, str(fmt.locale)), MUTED),
             (labelled(labels["vat_no"], party.vat_number), INK),
             (labelled(labels["company_no"], party.company_number), INK), (contact, MUTED)]  # fmt: skip
    return [(text.strip(), color) for text, color in lines if text and text.strip()]


def labelled(label: str, value: str) -> str:
    return f"{label} {clean(value.strip())}" if value.strip() else ""


def terms(days: int, labels: Mapping[str, str]) -> str:
    """"Payment due within 30 days" / "on receipt", in the labels' language."""
    return labels["terms_receipt"] if days <= 0 else labels["terms_days"].format(days=days)


@lru_cache(maxsize=256)
def _country_name(code: str, locale_id: str) -> str:
    if not code:
        return ""
    return str(Locale.parse(locale_id).territories.get(code, code))
