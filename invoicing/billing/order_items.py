"""The items of the orders a run plans, read as plain rows in one statement (in pieces on SQLite: ``sql.any_of_parts``).

A run reads every item of every candidate order; a batched run (``pdf_emailer.batch``) a thousand
at once. Prefetched as ORM objects they cost an object per item, and the prefetch's ``IN ($1 … $1000)``
let PostgreSQL choose a sequential scan of ``order_item`` — a cost that grows with the history every
tenant keeps, not with the orders asked for. Here the ids go as one array (``= ANY($1::int[])``, one
plan for every length, which looks them up in ``order_item``'s ``order_id`` index).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from invoicing.sql import Statement, any_of_parts


@dataclass(frozen=True, slots=True)
class Item:
    """One ``order_item`` row (``OrderItem``'s columns, same meaning)."""

    id: int
    order_id: int
    position: int
    sku: str
    quantity: int
    description: str


async def items_by_order(order_ids: Sequence[int]) -> dict[int, list[Item]]:
    """The items of each of ``order_ids`` in print order (position, then id); an order without items is absent."""
    found: dict[int, list[Item]] = defaultdict(list)
    ids = list(dict.fromkeys(order_ids))
    for part in any_of_parts(ids):
        q = Statement()
        rows = await q.rows("SELECT id, order_id, position, sku, quantity, description FROM order_item "
                            f"WHERE order_id {q.any_of(part, 'int')}")
        for row in rows:
            found[row[1]].append(Item(*row))
    for items in found.values():
        items.sort(key=lambda item: (item.position, item.id))
    return dict(found)
