"""The feed's page of orders lists exactly what ``list_orders`` lists, page by page, on either backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invoicing.billing.queries import MAX_LIMIT, OrderFilter, list_orders
from invoicing.errors import InvalidInput, NotFound
from invoicing.ingest.order_page import PageRow, feed_page
from invoicing.integrations.pdf_emailer.run import run_by_name
from tests import factories as f
from tests.factories import T0

FILTERS = [
    OrderFilter(),
    OrderFilter(invoiced=True),
    OrderFilter(invoiced=False),
    OrderFilter(company="beta"),
    OrderFilter(company="ACME ", invoiced=True),
    OrderFilter(dispatched_from=T0 - timedelta(days=3), dispatched_before=T0 - timedelta(days=1, hours=1)),
]


async def _orders() -> int:
    """Invoiced, pending, held and erroneous orders of two companies, and another tenant's; the tenant id."""
    t = await f.tenant()
    acme, beta = await f.company(t, "acme"), await f.company(t, "beta")
    await f.price(t, "MUG", "5.00")
    for day in range(1, 5):
        await f.order(acme, dispatched_at=T0 - timedelta(days=day, minutes=30))
    assert (await run_by_name(t, "acme", clock=lambda: T0)).orders_invoiced == 4
    await f.order(acme, status="received")
    await f.order(beta, on_hold=True, dispatched_at=T0 - timedelta(days=2))
    await f.order(beta, error="no stock", status="in_production")
    await f.order(acme, dispatched_at=T0 - timedelta(days=2, microseconds=-250))
    await f.order(await f.company(await f.tenant("rival"), "acme"))
    return t.id


@pytest.mark.parametrize("flt", FILTERS, ids=lambda flt: repr(flt)[len("OrderFilter("):-1] or "all")
@pytest.mark.parametrize("limit", [1, 3, MAX_LIMIT])
async def test_every_page_lists_what_list_orders_lists(db, flt: OrderFilter, limit: int):
    tenant_id = await _orders()
    cursor, pages = None, 0
    while True:
        page = await feed_page(tenant_id, flt, cursor=cursor, limit=limit)
        expected = await list_orders(tenant_id, flt, cursor=cursor, limit=limit)
        assert [PageRow(r.id, r.ref, r.status, r.on_hold, r.error, r.dispatched_at, r.invoice_number, r.company)
                for r in expected.rows] == page.rows
        assert page.next_cursor == expected.next_cursor
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages >= 1


async def test_rows_carry_python_types_and_utc_instants(db):
    tenant_id = await _orders()
    rows = (await feed_page(tenant_id, OrderFilter(), cursor=None, limit=MAX_LIMIT)).rows
    assert len(rows) == 8 and all(type(r.on_hold) is bool for r in rows)
    assert {r.dispatched_at.tzinfo for r in rows if r.dispatched_at} == {UTC}
    assert any(isinstance(r.dispatched_at, datetime) and r.dispatched_at.microsecond == 250 for r in rows)


@pytest.mark.parametrize("limit", [0, MAX_LIMIT + 1])
async def test_a_limit_out_of_range_or_a_foreign_cursor_is_invalid_input(db, limit: int):
    tenant_id = await _orders()
    with pytest.raises(InvalidInput) as exc:
        await feed_page(tenant_id, OrderFilter(), cursor=None, limit=limit)
    assert exc.value.field == "limit"
    with pytest.raises(InvalidInput) as exc:
        await feed_page(tenant_id, OrderFilter(), cursor="bm9wZQ", limit=10)
    assert exc.value.field == "cursor"


async def test_an_unknown_or_other_tenants_company_is_not_found(db):
    tenant_id = await _orders()
    for company in ("nope", "x" * 100):
        with pytest.raises(NotFound):
            await feed_page(tenant_id, OrderFilter(company=company), cursor=None, limit=10)
