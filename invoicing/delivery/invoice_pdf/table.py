"""The line table: columns, rows that grow with their wrapped text, and where each row lands.

A row is one line high (``ROW_H``) unless its order ref, SKU or description wraps; then it
is as tall as its longest cell. Figures never wrap or get cut: a figure wider than its
column is printed smaller (down to ``MIN_PT``). Each line shows its unit price (unit cost
plus unit shipping), its VAT rate and its EN 16931 VAT category code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from invoicing.billing.document import DocumentLine, InvoiceDocument
from invoicing.delivery.invoice_pdf.formats import Formats
from invoicing.delivery.invoice_pdf.header import LEFT, RIGHT
from invoicing.delivery.invoice_pdf.text import TextPDF, clean

__all__ = ["HEAD_H", "ROW_H", "TABLE_BOTTOM", "WRAP_H", "Row", "build_rows", "draw_header", "draw_row", "row_tops"]

TABLE_BOTTOM = 279.0
HEAD_H, ROW_H, WRAP_H = 8.5, 5.5, 3.3
TABLE_PT, HEAD_PT, MIN_PT = 7.5, 6.5, 5.0
_HEAD_MIN_ONE_LINE_PT = 5.8
_ID_MIN_PT = 6.2  # an order ref or SKU shrinks to this before it wraps
_PAD = 1.2
_RULE, _FILL = (209, 213, 219), (243, 244, 246)


@dataclass(frozen=True)
class _Column:
    key: str  # label key
    width: float  # mm; 0 = what is left for the description
    right: bool
    wraps: bool = False


_COLUMNS = (_Column("col_order", 18, False, True), _Column("col_dispatched", 16, False),
            _Column("col_sku", 20, False, True), _Column("col_description", 0, False, True),
            _Column("col_qty", 9, True), _Column("col_cost", 14, True), _Column("col_shipping", 13, True),
            _Column("col_unit", 14, True), _Column("col_rate", 9, True), _Column("col_category", 7, True),
            _Column("col_net", 18, True))  # fmt: skip
_DESCRIPTION_W = RIGHT - LEFT - sum(c.width for c in _COLUMNS)


def _width(column: _Column) -> float:
    return column.width or _DESCRIPTION_W


@dataclass(frozen=True)
class Row:
    """One line as printed: each cell's lines and type size, and the row's height."""

    cells: tuple[tuple[tuple[str, ...], float], ...]
    height: float


def build_rows(pdf: TextPDF, doc: InvoiceDocument, fmt: Formats) -> list[Row]:
    return [_row(pdf, line, fmt) for line in doc.lines]


def _row(pdf: TextPDF, line: DocumentLine, fmt: Formats) -> Row:
    values = (clean(line.order_ref), fmt.day(line.dispatched_at, short=True), clean(line.sku),
              clean(line.description), str(line.quantity), fmt.unit(line.unit_cost), fmt.unit(line.unit_shipping),
              fmt.unit(line.unit_cost + line.unit_shipping), fmt.rate(line.tax_rate), clean(line.vat_category),
              fmt.amount(line.net))  # fmt: skip
    cells = tuple(_cell(pdf, column, value) for column, value in zip(_COLUMNS, values, strict=True))
    lines = max(len(cell) for cell, _ in cells)
    return Row(cells, ROW_H + WRAP_H * max(lines - 1, 0))


def _cell(pdf: TextPDF, column: _Column, value: str) -> tuple[tuple[str, ...], float]:
    """A value's lines and size: figures shrink; an identifier shrinks a little, then wraps; text wraps."""
    room = _width(column) - 2 * _PAD
    if not column.wraps:
        return (value,), pdf.fitted_size(value, room, TABLE_PT, MIN_PT)
    if column.key != "col_description" and " " not in value.strip():
        size = pdf.fitted_size(value, room, TABLE_PT, _ID_MIN_PT)
        if pdf.width(value, size) <= room:
            return (value,), size
    return pdf.wrap(value, room, TABLE_PT), TABLE_PT


def row_tops(heights: Sequence[float], first_top: float, next_top: float,
             forced: frozenset[int] = frozenset()) -> Iterator[tuple[float, bool]]:  # fmt: skip
    """The top of each row, and whether it starts a new page (always for indexes in ``forced``)."""
    y = first_top + HEAD_H
    for i, height in enumerate(heights):
        new_page = i in forced or y + height > TABLE_BOTTOM
        if new_page:
            y = next_top + HEAD_H
        yield y, new_page
        y += height


def draw_header(pdf: TextPDF, y: float, labels: Mapping[str, str], currency: str) -> None:
    pdf.set_fill_color(*_FILL)
    pdf.rect(LEFT, y, RIGHT - LEFT, HEAD_H, style="F")
    x = LEFT
    for column in _COLUMNS:
        width = _width(column) - 2 * _PAD
        title = labels[column.key].format(currency=currency)
        if pdf.width(title, _HEAD_MIN_ONE_LINE_PT, bold=True) <= width:
            lines: tuple[str, ...] = (title,)  # shrunk a little on one line reads better than "VAT / %"
        else:
            lines = pdf.wrap(title, width, HEAD_PT, bold=True, break_words=False)
        if len(lines) > 2:
            lines = (lines[0], " ".join(lines[1:]))
        baseline = y + (5.3 if len(lines) == 1 else 3.5)
        for line in lines:
            size = pdf.fitted_size(line, width, HEAD_PT, MIN_PT, bold=True)
            pdf.put(x + _width(column) - _PAD if column.right else x + _PAD, baseline, line, size, bold=True,
                    right=column.right)  # fmt: skip
            baseline += 2.9
        x += _width(column)
    pdf.set_draw_color(*_RULE)
    pdf.line(LEFT, y + HEAD_H, RIGHT, y + HEAD_H)


def draw_row(pdf: TextPDF, row: Row, top: float) -> None:
    base = top + 3.7
    x = LEFT
    for column, (lines, size) in zip(_COLUMNS, row.cells, strict=True):
        width = _width(column)
        pdf.put_lines(x + width - _PAD if column.right else x + _PAD, base, lines, size, WRAP_H, right=column.right)
        x += width
    pdf.set_draw_color(*_RULE)
    pdf.line(LEFT, top + row.height, RIGHT, top + row.height)
