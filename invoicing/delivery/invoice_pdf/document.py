"""One invoice or credit note laid out on A4 pages: head, line table, totals, footers.

Pages are planned before the first page break, so every footer knows the page count.
The totals block never stands alone on a page: when it does not fit under the last row,
the last ``KEEP_ROWS`` rows move with it to the next page (with the table header).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fpdf import FPDF

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.invoice_pdf import header, table
from invoicing.delivery.invoice_pdf.formats import Formats
from invoicing.delivery.invoice_pdf.labels import LANGUAGES, labels_for, locale_for
from invoicing.delivery.invoice_pdf.text import MUTED, TextPDF, clean
from invoicing.delivery.invoice_pdf.totals import Totals

__all__ = ["KEEP_ROWS", "InvoicePDF", "compose"]

KEEP_ROWS = 2
_GAP = 7.0  # between the last row and the totals


def compose(doc: InvoiceDocument, attach_fonts: Callable[[FPDF], None], *,
            enforce_compliance: str | None = None) -> InvoicePDF:  # fmt: skip
    """Lay ``doc`` out on a new FPDF; ``attach_fonts`` puts the main family into it; ``enforce_compliance``
    is fpdf2's (e.g. "PDF/A-3B", for an e-invoice container)."""
    pdf = InvoicePDF(doc, attach_fonts, enforce_compliance=enforce_compliance)
    pdf.body()
    return pdf


class InvoicePDF(TextPDF):
    def __init__(self, doc: InvoiceDocument, attach_fonts: Callable[[FPDF], None], *,
                 enforce_compliance: str | None = None) -> None:  # fmt: skip
        super().__init__(attach_fonts, enforce_compliance=enforce_compliance)
        self.doc = doc
        self.labels: Mapping[str, str] = labels_for(doc.language)
        self.fmt = Formats(locale_for(doc.language, doc.buyer.country), doc.currency, doc.timezone)
        self.set_margins(header.LEFT, 15, header.PAGE_H - header.RIGHT)
        seller, buyer = clean(doc.seller.legal_name), clean(doc.buyer.legal_name)
        title = f"{header.title_of(doc, self.labels)} {doc.number}"
        self.set_title(title)
        self.set_author(seller)
        self.set_subject(f"{title} · {buyer}")
        self.set_creator("InvoiceBot")
        language = doc.language.strip().lower()
        self.set_lang(language if language in LANGUAGES else "en")
        self.set_creation_date(doc.issued_at)
        self.set_line_width(0.2)
        self.page_total = 1  # set by body() before any footer is drawn
        parts = (seller, header.labelled(self.labels["vat_no"], doc.seller.vat_number),
                 header.labelled(self.labels["company_no"], doc.seller.company_number))  # fmt: skip
        self._footer_left = " · ".join(part for part in parts if part)
        self.add_page()

    def footer(self) -> None:
        y = header.PAGE_H - 13
        self.set_draw_color(209, 213, 219)
        self.line(header.LEFT, y, header.RIGHT, y)
        page = self.labels["page"].format(title=header.title_of(self.doc, self.labels), number=clean(self.doc.number),
                                          page=self.page_no(), pages=self.page_total)  # fmt: skip
        room = header.RIGHT - header.LEFT - self.width(page, 7) - 6
        size = self.fitted_size(self._footer_left, room, 7, 5.5)
        lines = self.wrap(self._footer_left, room, size)
        self.put_lines(header.LEFT, y + 4.5, lines, size, 3, color=MUTED)
        self.put(header.RIGHT, y + 4.5, page, 7, color=MUTED, right=True)
        self._font_key = self._color = None  # the next page starts without a font

    def body(self) -> None:
        doc, fmt, labels = self.doc, self.fmt, self.labels
        first_top = header.first_page_header(self, doc, fmt, labels)
        next_top = header.continuation_header(self, doc, labels, draw=False)
        rows = table.build_rows(self, doc, fmt)
        heights = [row.height for row in rows]
        totals = Totals(self, doc, fmt, labels)

        forced: frozenset[int] = frozenset()
        tops = list(table.row_tops(heights, first_top, next_top))
        end = tops[-1][0] + heights[-1] if tops else first_top + table.HEAD_H
        totals_new_page = end + _GAP + totals.height > table.TABLE_BOTTOM
        if totals_new_page and tops:
            page_starts = [i for i, (_, new) in enumerate(tops) if new]
            last_page_start = page_starts[-1] if page_starts else 0
            on_last_page = len(rows) - last_page_start
            keep = min(KEEP_ROWS, on_last_page if page_starts else on_last_page - 1)
            if keep > 0:
                forced = frozenset({len(rows) - keep})
                tops = list(table.row_tops(heights, first_top, next_top, forced))
                end = tops[-1][0] + heights[-1]
                totals_new_page = False
        self.page_total = 1 + sum(new for _, new in tops) + totals_new_page

        table.draw_header(self, first_top, labels, doc.currency)
        for row, (top, new_page) in zip(rows, tops, strict=True):
            if new_page:
                self.add_page()
                table.draw_header(self, header.continuation_header(self, doc, labels), labels, doc.currency)
            table.draw_row(self, row, top)
        if totals_new_page:
            self.add_page()
            header.continuation_header(self, doc, labels)
            totals.draw(next_top + 2)
        else:
            totals.draw(end + _GAP - 3)
