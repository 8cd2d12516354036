"""Invoice lines as plain rows, written in one statement for any number of invoices, read likewise.

A run writes every line it bills; a batched run (``pdf_emailer.batch``) writes a thousand at once.
Built as ORM objects and inserted with ``bulk_create`` they cost more CPU than everything else a run
does (an object per line, then one INSERT per line on PostgreSQL). Here a line is a slotted dataclass
and the insert is one ``INSERT … SELECT * FROM unnest(…)`` on PostgreSQL, or an ``executemany`` on
SQLite. The values go through the model's own field converters (``to_db_value``), so the rows stored
are exactly those ``bulk_create`` stored; ``tests/invoicing/billing/test_line_rows.py`` reads them back
through the model. ``lines_of`` reads them back the same way for the outbox, which renders a thousand
invoices a minute in a burst.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

from tortoise.fields import DecimalField

from invoicing.sql import Statement, any_of_parts, instant
from models import InvoiceLine


@dataclass(frozen=True, slots=True)
class LineRow:
    """One ``invoice_line`` row but its id and invoice (``InvoiceLine``'s columns, same meaning)."""

    position: int
    order_id_ref: int
    order_ref: str
    dispatched_at: datetime
    sku: str
    description: str
    quantity: int
    unit_cost: Decimal
    unit_shipping: Decimal
    tax_rate: Decimal
    net: Decimal
    vat_category: str


_COLUMNS = ("invoice_id", *(f.name for f in fields(LineRow)))
#: PostgreSQL array type of each column, for ``unnest``; the target column's own type converts on insert.
_PG_TYPES = {"invoice_id": "int", "position": "int", "order_id_ref": "int", "quantity": "int",
             "dispatched_at": "timestamptz", "unit_cost": "numeric", "unit_shipping": "numeric",
             "tax_rate": "numeric", "net": "numeric"}  # fmt: skip
#: The quantum of each Decimal column (``DecimalField.quant``).
_QUANTS: dict[str, Decimal] = {name: field.quant for name, field in InvoiceLine._meta.fields_map.items()
                               if isinstance(field, DecimalField)}


async def insert_lines(lines: Sequence[tuple[int, LineRow]]) -> None:
    """Insert ``lines`` (invoice id, row) in the current transaction; nothing when empty."""
    if not lines:
        return
    q = Statement()
    names = ", ".join(_COLUMNS)
    if q.postgres:
        # asyncpg takes the Python values as they are; a Decimal is quantized to its column's places as the
        # model's field does it (ROUND_HALF_EVEN), not left to PostgreSQL's numeric (which rounds half up).
        columns: list[list[object]] = [[invoice_id for invoice_id, _ in lines]]
        for name in _COLUMNS[1:]:
            column = [getattr(row, name) for _, row in lines]
            quant = _QUANTS.get(name)
            columns.append([value.quantize(quant) for value in column] if quant is not None else column)
        arrays = ", ".join(f"{q(column)}::{_PG_TYPES.get(name, 'text')}[]"
                           for name, column in zip(_COLUMNS, columns, strict=True))
        await q.execute(f"INSERT INTO invoice_line ({names}) SELECT * FROM unnest({arrays})")
        return
    # SQLite stores what Tortoise's converters make of a value (text for Decimals and datetimes): as a model
    # would, its attribute takes the field's Python value, then bulk_create writes the field's database value.
    fields_map = InvoiceLine._meta.fields_map
    converters = [fields_map[column] for column in _COLUMNS]
    values = [[field.to_db_value(field.to_python_value(invoice_id if column == "invoice_id" else getattr(row, column)),
                                 InvoiceLine)
               for column, field in zip(_COLUMNS, converters, strict=True)]
              for invoice_id, row in lines]  # fmt: skip
    placeholders = ", ".join(q(None) for _ in _COLUMNS)
    await q.execute_many(f"INSERT INTO invoice_line ({names}) VALUES ({placeholders})", values)


async def lines_of(invoice_ids: Sequence[int]) -> dict[int, list[LineRow]]:
    """The lines of each of ``invoice_ids`` in position order, as ``InvoiceLine`` reads them (aware UTC
    datetimes, Decimals); an invoice without lines (or unknown) is absent."""
    found: dict[int, list[LineRow]] = defaultdict(list)
    ids = list(dict.fromkeys(invoice_ids))
    for part in any_of_parts(ids):
        q = Statement()
        for invoice_id, *row in await q.rows(f"SELECT {', '.join(_COLUMNS)} FROM invoice_line "
                                             f"WHERE invoice_id {q.any_of(part, 'int')}"):
            position, order_id_ref, order_ref, dispatched_at, sku, description, quantity = row[:7]
            unit_cost, unit_shipping, tax_rate, net = (Decimal(value) for value in row[7:11])
            at = instant(dispatched_at)
            assert at is not None  # NOT NULL
            found[invoice_id].append(LineRow(position, order_id_ref, order_ref, at, sku, description, quantity,
                                             unit_cost, unit_shipping, tax_rate, net, row[11]))
    for lines in found.values():
        lines.sort(key=lambda line: line.position)
    return dict(found)
