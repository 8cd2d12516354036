"""The items of the orders a run plans, read as plain rows in one statement per chunk.

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

from invoicing.sql import Statement

#: Ids per statement on SQLite, whose statements take a bounded number of parameters.
SQLITE_CHUNK = 500


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
    q = Statement()
    size = len(ids) if q.postgres else SQLITE_CHUNK
    for start in range(0, len(ids), max(size, 1)):
        q = Statement()
        rows = await q.rows("SELECT id, order_id, position, sku, quantity, description FROM order_item "
                            f"WHERE order_id {q.any_of(ids[start:start + size], 'int')}")
        for row in rows:
            found[row[1]].append(Item(*row))
    for items in found.values():
        items.sort(key=lambda item: (item.position, item.id))
    return dict(found)
