"""An issued invoice as an A4 PDF that an EU/UK accountant accepts as a VAT invoice.

``render_invoice_pdf(doc)`` is pure: no database, no clock, no file access after the
fonts are loaded once per process; the same ``InvoiceDocument`` always renders to
the same bytes (the PDF creation date is the issue date and the file ID is a hash
of the content).

Layout: page 1 has a fixed header (seller, invoice facts, buyer, amount due), then
the line table; following pages repeat a compact header and the table header.
Every row is one line high unless its description wraps to a second line (then
truncated with "…"), so a page holds ``FIRST_PAGE_ROWS`` / ``NEXT_PAGE_ROWS``
one-line rows. The totals block (VAT breakdown, payment details, reverse-charge
notice) follows the table, on a new page if it does not fit.

Numbers and dates are formatted with babel in the buyer's locale
(``locale_for_country``); labels are English. Dates are printed in ``doc.timezone``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern, parse_pattern
from fpdf import FPDF

from invoicing.billing.document import DocumentLine, InvoiceDocument, Party
from invoicing.billing.vat_rules import REVERSE_CHARGE_NOTE, reverse_charge_applies
from invoicing.delivery.fonts import faces as fonts
from invoicing.validation import is_control_character

__all__ = ["FIRST_PAGE_ROWS", "NEXT_PAGE_ROWS", "locale_for_country", "render_invoice_pdf"]

_LOCALES = {"GB": "en_GB", "DE": "de_DE", "US": "en_US", "FR": "fr_FR", "PL": "pl_PL"}
_DATE_FORMAT = "dd MMM y"  # header dates: "01 Nov 2026"; table dates use the locale's short form

# Geometry in mm (A4 portrait).
_LEFT, _RIGHT, _PAGE_H = 15.0, 195.0, 297.0
_TABLE_TOP_FIRST, _TABLE_TOP_NEXT, _TABLE_BOTTOM = 102.0, 29.0, 279.0
_HEAD_H, _ROW_H, _WRAP_H = 7.0, 5.5, 3.3
_PAD = 1.5
FIRST_PAGE_ROWS = int((_TABLE_BOTTOM - _TABLE_TOP_FIRST - _HEAD_H) / _ROW_H)
NEXT_PAGE_ROWS = int((_TABLE_BOTTOM - _TABLE_TOP_NEXT - _HEAD_H) / _ROW_H)
_PT = 25.4 / 72  # mm per point

_INK, _MUTED, _RULE, _FILL = (17, 24, 39), (107, 114, 128), (209, 213, 219), (243, 244, 246)
_TABLE_PT = 7.5
# (title, width mm, right-aligned); the description takes what is left of 180 mm.
_COLUMNS = (("Order ref", 20.0, False), ("Dispatched", 17.0, False), ("SKU", 23.0, False),
            ("Description", 0.0, False), ("Qty", 8.0, True), ("Unit cost", 15.0, True),
            ("Shipping", 14.0, True), ("VAT %", 11.0, True), ("Net", 19.0, True))  # fmt: skip
_MIN_PT = 5.5  # identifiers and figures shrink down to this before being cut with "…"
_DESCRIPTION_W = _RIGHT - _LEFT - sum(width for _, width, _ in _COLUMNS)


def locale_for_country(country: str) -> str:
    """The babel locale numbers and dates are printed in, for the buyer's country."""
    return _LOCALES.get(country.strip().upper(), "en_GB")


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The invoice as PDF bytes; identical bytes for an identical document."""
    pdf = _compose(doc, fonts.attach)
    return fonts.output(pdf)


def _compose(doc: InvoiceDocument, attach_fonts: Callable[[FPDF], None]) -> FPDF:
    """Lay the invoice out on a new FPDF; ``attach_fonts`` puts fonts.FAMILY into it
    (``fonts.attach``, or ``fonts.attach_by_add_font`` to compare with plain fpdf2)."""
    fmt = _Formats(locale_for_country(doc.buyer.country), doc.currency, doc.timezone)
    pdf = _InvoicePDF(doc, attach_fonts)
    pdf.body(fmt)
    return pdf


class _Formats:
    """Locale-aware formatting of the figures of one document."""

    def __init__(self, locale_id: str, currency: str, timezone: str) -> None:
        self.locale, self._money, self._number = _patterns(locale_id)
        self.currency = currency
        self.zone = ZoneInfo(timezone)
        self._dates: dict[tuple[date, bool], str] = {}

    def money(self, amount: Decimal) -> str:
        """With the currency sign: "£1,234.50", "1.234,50 €"."""
        return str(self._money.apply(amount, self.locale, currency=self.currency, currency_digits=True))

    def amount(self, amount: Decimal) -> str:
        """Without the sign, for the table whose header names the currency."""
        return str(self._number.apply(amount, self.locale, currency=self.currency, currency_digits=True))

    def unit(self, amount: Decimal) -> str:
        """A unit price: the currency's digits, or more when the price has them ("3.333"),
        so every line net can be recomputed from the printed figures."""
        return str(self._number.apply(amount.normalize(), self.locale, currency=self.currency, currency_digits=True,
                                      decimal_quantization=False))

    def rate(self, rate: Decimal) -> str:
        """A VAT rate in percent without trailing zeros: "20", "5,5"."""
        return str(_RATE_PATTERN.apply(rate, self.locale))

    def day(self, moment: datetime, *, short: bool = False) -> str:
        """The local date of an aware datetime: "01 Nov 2026", or short "01/11/2026"."""
        return self.calendar_date(self.local(moment).date(), short=short)

    def calendar_date(self, day: date, *, short: bool = False) -> str:
        """A calendar date: "01 Nov 2026", or short "01/11/2026"."""
        key = (day, short)
        if key not in self._dates:
            self._dates[key] = format_date(day, "short" if short else _DATE_FORMAT, locale=self.locale)
        return self._dates[key]

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


_RATE_PATTERN = parse_pattern("#,##0.###")


@lru_cache(maxsize=32)
def _patterns(locale_id: str) -> tuple[Locale, NumberPattern, NumberPattern]:
    locale = Locale.parse(locale_id)
    money = locale.currency_formats["standard"]
    bare = ";".join(p.replace("¤", "").strip(" \xa0\u202f") for p in money.pattern.split(";"))
    return locale, money, parse_pattern(bare)


@lru_cache(maxsize=4096)  # names, SKUs and descriptions repeat from line to line
def _clean(text: str) -> str:
    """One printable line: NFC, controls and line separators as spaces, characters the font lacks as U+FFFD."""
    text = unicodedata.normalize("NFC", text)
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if is_control_character(ch):
            out.append(" ")
        elif unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch if fonts.covers(ord(ch)) else "\ufffd")
    return "".join(out)


class _InvoicePDF(FPDF):
    def __init__(self, doc: InvoiceDocument, attach_fonts: Callable[[FPDF], None]) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc = doc
        attach_fonts(self)
        # fpdf2 types ``cw`` as keyed by glyph name; it is indexed by code point.
        self._widths: dict[str, Any] = {style: self.fonts[fonts.FAMILY.lower() + style].cw for style in ("", "B")}
        self._wrapped: dict[tuple[str, float, float, int], tuple[str, ...]] = {}
        # What put() last set, to skip redundant set_font/set_text_color calls.
        self._font_key: tuple[bool, float] | None = None
        self._color: tuple[int, int, int] | None = None
        self.set_margins(_LEFT, 15, _PAGE_H - _RIGHT)
        self.set_auto_page_break(False)
        seller, buyer = _clean(doc.seller.legal_name), _clean(doc.buyer.legal_name)
        self.kind = "Credit note" if doc.kind == "credit_note" else "Invoice"
        self.set_title(f"{self.kind} {doc.number}")
        self.set_author(seller)
        self.set_subject(f"{self.kind} {doc.number} for {buyer}")
        self.set_creator("InvoiceBot")
        self.set_lang("en")
        self.set_creation_date(doc.issued_at)
        self.set_draw_color(*_RULE)
        self.set_line_width(0.2)
        self.page_total = 1  # set by body() before any footer is drawn
        self._footer_left = " · ".join(
            part for part in (seller, _labelled("VAT no.", doc.seller.vat_number),
                              _labelled("Company no.", doc.seller.company_number)) if part
        )  # fmt: skip
        self.add_page()

    # -- text primitives ---------------------------------------------------------------

    def width(self, text: str, size: float, bold: bool = False) -> float:
        cw = self._widths["B" if bold else ""]
        return float(sum(cw[ord(ch)] for ch in text)) * size * _PT / 1000

    def fit(self, text: str, max_width: float, size: float, bold: bool = False) -> str:
        """``text`` cut with "…" so it fits ``max_width``."""
        if self.width(text, size, bold) <= max_width:
            return text
        budget = max_width - self.width("…", size, bold)
        cw, used, scale = self._widths["B" if bold else ""], 0.0, size * _PT / 1000
        for i, ch in enumerate(text):
            used += cw[ord(ch)] * scale
            if used > budget:
                return text[:i].rstrip() + "…"
        return text

    def put(self, x: float, y: float, text: str, size: float, *, bold: bool = False,
            color: tuple[int, int, int] = _INK, right: bool = False) -> None:  # fmt: skip
        """Draw one line with its baseline at ``y``; with ``right``, ``x`` is the right edge."""
        if not text:
            return
        if self._font_key != (bold, size):
            self.set_font(fonts.FAMILY, "B" if bold else "", size)
            self._font_key = (bold, size)
        if self._color != color:
            self.set_text_color(*color)
            self._color = color
        self.text(x - self.width(text, size, bold) if right else x, y, text)

    def put_shrunk(self, x: float, y: float, width: float, text: str, size: float, right: bool,
                   bold: bool = False) -> None:  # fmt: skip
        """Draw ``text`` in a table cell, smaller if it is too wide: figures are never cut."""
        room = width - 2 * _PAD
        natural = self.width(text, size, bold)
        if natural > room:
            size = max(_MIN_PT, size * room / natural)
            text = self.fit(text, room, size, bold)
        self.put(x + width - _PAD if right else x + _PAD, y, text, size, bold=bold, right=right)

    def wrap(self, text: str, max_width: float, size: float, max_lines: int) -> tuple[str, ...]:
        """Greedy word wrap into at most ``max_lines`` lines, the last cut with "…"."""
        key = (text, max_width, size, max_lines)
        if key not in self._wrapped:
            self._wrapped[key] = tuple(self._wrap(text, max_width, size, max_lines))
        return self._wrapped[key]

    def _wrap(self, text: str, max_width: float, size: float, max_lines: int) -> list[str]:
        words, lines, current, current_width = text.split(), [], "", 0.0
        space = self.width(" ", size)
        for word in words:
            word_width = self.width(word, size)
            if current and current_width + space + word_width <= max_width:
                current, current_width = f"{current} {word}", current_width + space + word_width
                continue
            if current:
                lines.append(current)
                if len(lines) == max_lines:
                    break
            current, current_width = word, word_width
        else:
            if current:
                lines.append(current)
        if lines and len(" ".join(lines)) < len(" ".join(words)):
            lines[-1] = self.fit(lines[-1] + " …", max_width, size)
        return [self.fit(line, max_width, size) for line in lines]

    # -- page furniture ----------------------------------------------------------------

    def footer(self) -> None:
        y = _PAGE_H - 13
        self.line(_LEFT, y, _RIGHT, y)
        self.put(_LEFT, y + 4.5, self.fit(self._footer_left, 120, 7), 7, color=_MUTED)
        page = f"{self.kind} {self.doc.number} · Page {self.page_no()} of {self.page_total}"
        self.put(_RIGHT, y + 4.5, page, 7, color=_MUTED, right=True)
        self._font_key = self._color = None  # the next page starts without a font

    def next_page(self) -> float:
        """Start a continuation page; returns the y where content may start."""
        self.add_page()
        doc = self.doc
        self.put(_LEFT, 20, self.fit(_clean(doc.seller.legal_name), 110, 10, True), 10, bold=True)
        self.put(_RIGHT, 20, f"{self.kind} {doc.number} (continued)", 9, color=_MUTED, right=True)
        self.line(_LEFT, 24, _RIGHT, 24)
        return _TABLE_TOP_NEXT

    def first_page_header(self, fmt: _Formats) -> None:
        doc = self.doc
        name_size = 16.0
        seller_name = _clean(doc.seller.legal_name)
        while name_size > 11 and self.width(seller_name, name_size, True) > 112:
            name_size -= 0.5
        self.put(_LEFT, 21, self.fit(seller_name, 112, name_size, True), name_size, bold=True)
        self.put(_RIGHT, 21, self.kind.upper(), 20, bold=True, right=True)
        self._lines(_LEFT, 27.5, _party_lines(doc.seller, with_contact=True), 8, 3.9, 100, 7)

        due = fmt.calendar_date(doc.due_date())
        facts = (("Invoice no.", doc.number), ("Issue date", fmt.day(doc.issued_at)),
                 ("Period", _period(doc, fmt)), ("Due date", due),
                 ("Currency", doc.currency))  # fmt: skip
        if doc.kind == "credit_note":  # the invoice it credits instead of period and due date
            original = fmt.day(doc.original_issued_at) if doc.original_issued_at else ""
            facts = (("Credit note no.", doc.number), ("Issue date", fmt.day(doc.issued_at)),
                     ("Credits invoice", doc.original_number), ("Invoice date", original), ("Currency", doc.currency))
        for i, (label, value) in enumerate(facts):
            y = 30 + i * 4.8
            self.put(125, y, label, 8, color=_MUTED)
            self.put(_RIGHT, y, self.fit(_clean(value), 48, 8, True), 8, bold=True, right=True)

        self.line(_LEFT, 60, _RIGHT, 60)
        self.put(_LEFT, 66, "BILL TO", 7, bold=True, color=_MUTED)
        self.put(_LEFT, 70.5, self.fit(_clean(doc.buyer.legal_name), 100, 10, True), 10, bold=True)
        self._lines(_LEFT, 75, _party_lines(doc.buyer, with_contact=False), 8, 3.8, 100, 7)
        credit = doc.kind == "credit_note"
        self.put(_RIGHT, 66, "AMOUNT CREDITED" if credit else "AMOUNT DUE", 7, bold=True, color=_MUTED, right=True)
        self.put(_RIGHT, 74, fmt.money(doc.gross_total), 18, bold=True, right=True)
        if credit:
            for i, line in enumerate(self.wrap(f"Reason: {_clean(doc.reason)}", 75, 8, 3)):
                self.put(_RIGHT, 80 + i * 3.8, line, 8, color=_MUTED, right=True)
            return
        self.put(_RIGHT, 80, f"Due {due}", 8, color=_MUTED, right=True)
        self.put(_RIGHT, 84, _terms(doc.payment_terms_days), 8, color=_MUTED, right=True)

    def _lines(self, x: float, y: float, lines: Sequence[str], size: float, step: float,
               max_width: float, max_lines: int) -> float:  # fmt: skip
        for line in list(lines)[:max_lines]:
            self.put(x, y, self.fit(_clean(line), max_width, size), size, color=_MUTED)
            y += step
        return y

    # -- the line table ----------------------------------------------------------------

    def table_header(self, y: float) -> None:
        self.set_fill_color(*_FILL)
        self.rect(_LEFT, y, _RIGHT - _LEFT, _HEAD_H, style="F")
        x = _LEFT
        for title, width, right in _COLUMNS:
            width = width or _DESCRIPTION_W
            if title == "Net":
                title = f"Net {self.doc.currency}"
            self.put_shrunk(x, y + 4.6, width, title, 7, right, bold=True)
            x += width
        self.line(_LEFT, y + _HEAD_H, _RIGHT, y + _HEAD_H)

    def body(self, fmt: _Formats) -> None:
        """Line table, then totals; page breaks are planned first so footers know the page total."""
        desc_width = _DESCRIPTION_W - 2 * _PAD
        wrapped = [self.wrap(_clean(line.description), desc_width, _TABLE_PT, 2) for line in self.doc.lines]
        heights = [_ROW_H + _WRAP_H * max(len(parts) - 1, 0) for parts in wrapped]
        rows = list(_row_tops(heights))
        table_end = rows[-1][0] + heights[-1] if rows else _TABLE_TOP_FIRST + _HEAD_H
        totals = _Totals(self, fmt)
        totals_top, totals_on_new_page = _totals_top(table_end, totals.height)
        self.page_total = 1 + sum(new_page for _, new_page in rows) + totals_on_new_page

        self.first_page_header(fmt)
        self.table_header(_TABLE_TOP_FIRST)
        for line, parts, height, (top, new_page) in zip(self.doc.lines, wrapped, heights, rows, strict=True):
            if new_page:
                self.table_header(self.next_page())
            self.table_row(fmt, line, parts, top)
            self.line(_LEFT, top + height, _RIGHT, top + height)
        if totals_on_new_page:
            self.next_page()
        totals.draw(totals_top)

    def table_row(self, fmt: _Formats, line: DocumentLine, description: Sequence[str], top: float) -> None:
        base = top + 3.7
        values = (_clean(line.order_ref), fmt.day(line.dispatched_at, short=True), _clean(line.sku), None,
                  str(line.quantity), fmt.unit(line.unit_cost), fmt.unit(line.unit_shipping),
                  fmt.rate(line.tax_rate), fmt.amount(line.net))  # fmt: skip
        x = _LEFT
        for (_, width, right), value in zip(_COLUMNS, values, strict=True):
            width = width or _DESCRIPTION_W
            if value is None:
                for i, part in enumerate(description):
                    self.put(x + _PAD, base + i * _WRAP_H, part, _TABLE_PT)
            else:
                self.put_shrunk(x, base, width, value, _TABLE_PT, right)
            x += width

    # -- totals, payment, notices ------------------------------------------------------

    def payment_lines(self) -> list[str]:
        seller, doc = self.doc.seller, self.doc
        if doc.kind == "credit_note":  # nothing to pay: say what it credits
            return [self.fit(line, 95, 8.5) for line in (
                "CREDIT NOTE", f"Credits invoice {_clean(doc.original_number)}", "Nothing to pay for this amount")]
        lines = ["PAYMENT"]
        if seller.iban.strip():
            lines += [f"Bank transfer to {_clean(seller.legal_name)}", f"IBAN: {_clean(seller.iban)}"]
            if seller.bic.strip():
                lines.append(f"BIC: {_clean(seller.bic)}")
            lines.append(f"Reference: {doc.number}")
        lines.append(_terms(doc.payment_terms_days))
        return [self.fit(line, 95, 8.5) for line in lines]


class _Totals:
    """The block after the table: VAT breakdown and totals (right), payment (left), notices."""

    def __init__(self, pdf: _InvoicePDF, fmt: _Formats) -> None:
        doc = pdf.doc
        self.pdf, self.fmt, self.doc = pdf, fmt, doc
        self.rows = [("Net total", fmt.money(doc.net_total))]
        self.rows += [(f"VAT {fmt.rate(b.rate)} % on {fmt.money(b.net)}", fmt.money(b.tax)) for b in doc.tax_bands]
        self.rows.append(("VAT total", fmt.money(doc.tax_total)))
        self.payment = pdf.payment_lines()
        self.notice = reverse_charge_applies(doc)
        right = len(self.rows) * 5.5 + 10
        left = 5.5 + 4.8 + (len(self.payment) - 1) * 4.2
        self.height = max(right, left) + (9 if self.notice else 0) + 2

    def draw(self, top: float) -> None:
        pdf, doc = self.pdf, self.doc
        y = top
        for label, value in self.rows:
            y += 5.5
            pdf.put(118, y, pdf.fit(label, 50, 8.5), 8.5, color=_MUTED)
            pdf.put(_RIGHT, y, value, 8.5, right=True)
        y += 3.5
        pdf.set_draw_color(*_INK)
        pdf.line(118, y, _RIGHT, y)
        pdf.set_draw_color(*_RULE)
        y += 6.5
        total = "Total credited" if doc.kind == "credit_note" else "Total due"
        pdf.put(118, y, f"{total} ({doc.currency})", 10, bold=True)
        pdf.put(_RIGHT, y, self.fmt.money(doc.gross_total), 10, bold=True, right=True)

        py = top + 5.5
        for i, text in enumerate(self.payment):
            pdf.put(_LEFT, py, text, 7 if i == 0 else 8.5, bold=i == 0, color=_MUTED if i == 0 else _INK)
            py += 4.8 if i == 0 else 4.2
        if self.notice:
            pdf.put(_LEFT, max(y, py - 4.2) + 9, REVERSE_CHARGE_NOTE, 8.5, bold=True)


def _row_tops(heights: Sequence[float]) -> Iterator[tuple[float, bool]]:
    """The top of each table row, and whether the row starts a new page."""
    y = _TABLE_TOP_FIRST + _HEAD_H
    for height in heights:
        new_page = y + height > _TABLE_BOTTOM
        if new_page:
            y = _TABLE_TOP_NEXT + _HEAD_H
        yield y, new_page
        y += height


def _totals_top(table_end: float, height: float) -> tuple[float, bool]:
    """Where the totals block starts: under the table, or on a page of its own."""
    if table_end + 7 + height <= _TABLE_BOTTOM:
        return table_end + 7, False
    return _TABLE_TOP_NEXT + 2, True


def _terms(days: int) -> str:
    return "Payment due on receipt" if days <= 0 else f"Payment due within {days} days"


def _period(doc: InvoiceDocument, fmt: _Formats) -> str:
    """``doc.period()`` as the PDF prints it: "01 Nov 2026 – 07 Nov 2026" (the same days as the e-mail)."""
    period = doc.period()
    if period.first is None:
        return f"up to {fmt.calendar_date(period.last)}"
    return f"{fmt.calendar_date(period.first)} – {fmt.calendar_date(period.last)}"


def _labelled(label: str, value: str) -> str:
    return f"{label} {_clean(value.strip())}" if value.strip() else ""


def _party_lines(party: Party, *, with_contact: bool) -> list[str]:
    """Address, country, tax identifiers and contact of a party, one printed line each."""
    country = party.country.strip().upper()
    if country in ("GB", "US", "IE", "CA", "AU"):
        place = ", ".join(p for p in (party.city, " ".join(p for p in (party.region, party.postcode) if p)) if p)
    else:
        place = ", ".join(p for p in (" ".join(p for p in (party.postcode, party.city) if p), party.region) if p)
    contact = " · ".join(p for p in (party.email, party.phone if with_contact else "") if p)
    lines = [party.address_line1, party.address_line2, place, _country_name(country),
             _labelled("VAT no.", party.vat_number), _labelled("Company no.", party.company_number),
             contact]  # fmt: skip
    return [line.strip() for line in lines if line and line.strip()]


@lru_cache(maxsize=256)
def _country_name(code: str) -> str:
    return Locale.parse("en").territories.get(code, code) if code else ""
