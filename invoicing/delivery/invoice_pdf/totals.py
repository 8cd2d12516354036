"""The block after the line table: totals, VAT breakdown, VAT in the seller's currency, payment, notes.

Right: net total, one row per VAT category and rate ("VAT 0 % (K) on …") with the exemption
reason and VATEX code under every row that has one, VAT total, total due (or credited),
then ``doc.fx`` restated ("VAT in GBP at 0.8523 (ECB, 30 Nov 2026): 20 %: £x · Total VAT £y").
Left: how to pay. Under both, full width: ``doc.notes`` (the legal wording per VAT
category, already in the document's language) and a legend of the category codes used.

The block is laid out once (``Totals.height``) so pagination can keep it with the last
rows of the table before anything is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.invoice_pdf.formats import Formats
from invoicing.delivery.invoice_pdf.header import LEFT, RIGHT, terms
from invoicing.delivery.invoice_pdf.text import INK, MUTED, TextPDF, clean

__all__ = ["Totals"]

_SPLIT = 108.0  # the totals column starts here; payment is left of it
_LEFT_W = _SPLIT - LEFT - 8
_RIGHT_W = RIGHT - _SPLIT


@dataclass(frozen=True)
class _Text:
    x: float
    dy: float
    text: str
    size: float
    bold: bool
    color: tuple[int, int, int]
    right: bool


class Totals:
    """The laid-out block; ``draw(top)`` puts it on the current page."""

    def __init__(self, pdf: TextPDF, doc: InvoiceDocument, fmt: Formats, labels: Mapping[str, str]) -> None:
        self.pdf = pdf
        self._texts: list[_Text] = []
        self._rules: list[float] = []
        right_end = self._totals_column(doc, fmt, labels)
        left_end = self._payment(doc, labels)
        self.height = self._notes(doc, labels, max(right_end, left_end) + 4) + 2

    def _put(self, x: float, dy: float, text: str, size: float, *, bold: bool = False,
             color: tuple[int, int, int] = INK, right: bool = False) -> None:  # fmt: skip
        self._texts.append(_Text(x, dy, text, size, bold, color, right))

    def _wrapped(self, x: float, dy: float, text: str, width: float, size: float, step: float, *,
                 bold: bool = False, color: tuple[int, int, int] = INK) -> float:  # fmt: skip
        for line in self.pdf.wrap(text, width, size, bold=bold):
            self._put(x, dy, line, size, bold=bold, color=color)
            dy += step
        return dy

    def _amount_row(self, dy: float, label: str, value: str, size: float = 8.5, *, bold: bool = False) -> float:
        """A label (wrapped left of the figure) and its figure; returns the next baseline."""
        room = _RIGHT_W - self.pdf.width(value, size, bold) - 3
        after = self._wrapped(_SPLIT, dy, label, room, size, size * 0.5, bold=bold, color=INK if bold else MUTED)
        self._put(RIGHT, dy, value, size, bold=bold, right=True)
        return after

    def _totals_column(self, doc: InvoiceDocument, fmt: Formats, labels: Mapping[str, str]) -> float:
        dy = 5.5
        dy = self._amount_row(dy, labels["net_total"], fmt.money(doc.net_total)) + 1
        for band in doc.tax_bands:
            label = labels["vat_on"].format(rate=fmt.rate(band.rate), category=clean(band.category),
                                            net=fmt.money(band.net))  # fmt: skip
            dy = self._amount_row(dy, label, fmt.money(band.tax))
            reason = " ".join(p for p in (clean(band.exemption_reason),
                                          f"({clean(band.exemption_code)})" if band.exemption_code else "") if p)
            if reason:
                dy = self._wrapped(_SPLIT + 2, dy - 0.6, reason, _RIGHT_W - 2, 7, 3.3, color=MUTED) + 0.6
            dy += 1
        dy = self._amount_row(dy, labels["vat_total"], fmt.money(doc.tax_total))
        self._rules.append(dy - 2)
        total = labels["total_credited" if doc.kind == "credit_note" else "total_due"].format(currency=doc.currency)
        dy = self._amount_row(dy + 4, total, fmt.money(doc.gross_total), 10, bold=True)
        if doc.fx is not None:
            fx = doc.fx
            source = labels["source_ecb"] if fx.source.strip().lower() == "ecb" else labels["source_other"]
            head = labels["fx"].format(currency=fx.currency, rate=fmt.number(fx.rate), source=source,
                                       date=fmt.calendar_date(fx.rate_date))  # fmt: skip
            bands = [f"{fmt.rate(rate)} % ({clean(category)}): {fmt.money(amount, fx.currency)}"
                     for rate, category, amount in fx.tax_bands]  # fmt: skip
            parts = [*bands, f"{labels['fx_total']} {fmt.money(fx.tax_total, fx.currency)}"]
            dy = self._wrapped(_SPLIT, dy + 2, f"{head}: " + " · ".join(parts), _RIGHT_W, 7.5, 3.5, color=MUTED)
        return dy

    def _payment(self, doc: InvoiceDocument, labels: Mapping[str, str]) -> float:
        seller = doc.seller
        self._put(LEFT, 5.5, labels["payment"], 7, bold=True, color=MUTED)
        dy = 10.3
        if doc.kind == "credit_note":
            return self._wrapped(LEFT, dy, labels["refund"], _LEFT_W, 8.5, 4.2)
        if seller.iban.strip():
            dy = self._wrapped(LEFT, dy, labels["bank_transfer"].format(name=clean(seller.legal_name)),
                               _LEFT_W, 8.5, 4.2)  # fmt: skip
            dy = self._wrapped(LEFT, dy, f"{labels['iban']}: {clean(seller.iban)}", _LEFT_W, 8.5, 4.2)
            if seller.bic.strip():
                dy = self._wrapped(LEFT, dy, f"{labels['bic']}: {clean(seller.bic)}", _LEFT_W, 8.5, 4.2)
            dy = self._wrapped(LEFT, dy, f"{labels['reference']}: {clean(doc.number)}", _LEFT_W, 8.5, 4.2)
        return self._wrapped(LEFT, dy, terms(doc.payment_terms_days, labels), _LEFT_W, 8.5, 4.2)

    def _notes(self, doc: InvoiceDocument, labels: Mapping[str, str], dy: float) -> float:
        for note in doc.notes:
            if note.strip():
                dy = self._wrapped(LEFT, dy + 1, clean(note), RIGHT - LEFT, 8.5, 4.2, bold=True)
        used = list(dict.fromkeys([line.vat_category for line in doc.lines] + [b.category for b in doc.tax_bands]))
        legend = [f"{clean(code)} {labels['cat_' + code]}" for code in used if "cat_" + code in labels]
        if legend:
            dy = self._wrapped(LEFT, dy + 1.5, f"{labels['categories']}: " + " · ".join(legend), RIGHT - LEFT, 7,
                               3.3, color=MUTED)  # fmt: skip
        return dy

    def draw(self, top: float) -> None:
        pdf = self.pdf
        for item in self._texts:
            pdf.put(item.x, top + item.dy, item.text, item.size, bold=item.bold, color=item.color, right=item.right)
        pdf.set_draw_color(*INK)
        for dy in self._rules:
            pdf.line(_SPLIT, top + dy, RIGHT, top + dy)
