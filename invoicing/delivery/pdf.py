"""An issued invoice or credit note as an A4 PDF that an EU/UK accountant accepts as a VAT document.

``render_invoice_pdf(doc)`` is pure: no database, no clock, no file access after the
fonts are loaded once per process; the same ``InvoiceDocument`` always renders to
the same bytes (the PDF creation date is the issue date and the file ID is a hash
of the content).

What is printed and where (the modules of ``invoicing.delivery.invoice_pdf``):

* ``header`` — page 1: seller, invoice facts, buyer, amount due, for a credit note the
  invoice it credits and why; later pages a compact head. Names and addresses wrap,
  nothing is cut.
* ``table`` — one row per line: order ref, dispatch date, SKU, description (these wrap),
  quantity, unit cost, unit shipping, unit price, VAT rate and category, net.
* ``totals`` — net, VAT per category and rate with the exemption reason and VATEX code,
  totals, VAT in the seller's currency (``doc.fx``), payment, ``doc.notes``.
* ``labels`` / ``formats`` — every word in ``doc.language`` (en, de, fr, pl, es, it, nl),
  numbers and dates in that language's locale, four-digit years.
* ``text`` — DejaVu Sans Condensed, with Noto fallbacks and HarfBuzz shaping for CJK,
  Arabic, Hebrew, Thai and Devanagari (see docs/pdf.md).

Dates are printed in ``doc.timezone``.
"""

from __future__ import annotations

from collections.abc import Callable

from fpdf import FPDF

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.fonts import faces as fonts
from invoicing.delivery.invoice_pdf.document import compose
from invoicing.delivery.invoice_pdf.header import TABLE_TOP_FIRST, TABLE_TOP_NEXT
from invoicing.delivery.invoice_pdf.labels import locale_for
from invoicing.delivery.invoice_pdf.table import HEAD_H, ROW_H, TABLE_BOTTOM

__all__ = ["FIRST_PAGE_ROWS", "NEXT_PAGE_ROWS", "locale_for_country", "render_invoice_pdf"]

#: One-line rows that fit under a head of the usual height, on page 1 and on later pages.
FIRST_PAGE_ROWS = int((TABLE_BOTTOM - TABLE_TOP_FIRST - HEAD_H) / ROW_H)
NEXT_PAGE_ROWS = int((TABLE_BOTTOM - TABLE_TOP_NEXT - HEAD_H) / ROW_H)


def locale_for_country(country: str, language: str = "en") -> str:
    """The babel locale numbers and dates are printed in, for an invoice in ``language`` to ``country``."""
    return locale_for(language, country)


def render_invoice_pdf(doc: InvoiceDocument, *, enforce_compliance: str | None = None) -> bytes:
    """The invoice as PDF bytes; identical bytes for an identical document.

    ``enforce_compliance`` is passed to fpdf2 (e.g. ``"PDF/A-3B"`` for a Factur-X container).
    """
    return fonts.output(_compose(doc, fonts.attach, enforce_compliance=enforce_compliance))


def _compose(doc: InvoiceDocument, attach_fonts: Callable[[FPDF], None], *,
             enforce_compliance: str | None = None) -> FPDF:  # fmt: skip
    """Lay the invoice out on a new FPDF; ``attach_fonts`` puts fonts.FAMILY into it
    (``fonts.attach``, or ``fonts.attach_by_add_font`` to compare with plain fpdf2)."""
    return compose(doc, attach_fonts, enforce_compliance=enforce_compliance)
