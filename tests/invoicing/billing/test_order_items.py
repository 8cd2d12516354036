"""The items a run plans, read as rows: all of them, in print order, in chunks on SQLite."""

from __future__ import annotations

import pytest

from invoicing import sql
from invoicing.billing.order_items import Item, items_by_order
from invoicing.ingest.order_sync import ItemInput
from models import OrderItem
from tests import factories as f


@pytest.mark.parametrize("chunk", [500, 2])
async def test_every_item_of_the_orders_asked_for_in_print_order(db, monkeypatch, chunk):
    monkeypatch.setattr(sql, "CHUNK", chunk)
    t = await f.tenant()
    c = await f.company(t)
    orders = [await f.order(c, items=[ItemInput("MUG", 1, "first"), ItemInput("TEE", 2), ItemInput("CAP", 3)])
              for _ in range(3)]
    other = await f.order(c)
    asked = [o.id for o in orders] + [orders[0].id, 10**9]  # a repeat and an order that does not exist

    found = await items_by_order(asked)

    assert set(found) == {o.id for o in orders}
    for o in orders:
        stored = await OrderItem.filter(order_id=o.id).order_by("position", "id")
        assert found[o.id] == [Item(i.id, o.id, i.position, i.sku, i.quantity, i.description) for i in stored]
        assert [i.sku for i in found[o.id]] == ["MUG", "TEE", "CAP"] and found[o.id][0].description == "first"
    assert other.id not in found
    assert await items_by_order([]) == {}
