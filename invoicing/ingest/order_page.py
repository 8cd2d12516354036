"""The order feed's page of orders: ``list_orders`` as run on every ``GET /orders``.

The same orders, order, filter and cursor as ``invoicing.billing.queries.list_orders``
(its WHERE builder and SELECT are used here, so the feed and Slack cannot list
differently), with two differences that callers may rely on not to change a page:

* The page size is written into the statement (an int bounded by ``MAX_LIMIT``, so at
  most that many statement texts) rather than bound as a parameter. Under ``LIMIT $n``
  PostgreSQL cannot cost a generic plan for the prepared statement and plans it again on
  every execution; with a literal it settles on one plan, as a hand-written query does.
* Rows come back as ``PageRow`` tuples in select order, not one dataclass per row.

One statement per page (plus the company lookup when filtered by company, ``NotFound``
when unknown); no transaction is needed for a single read.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from invoicing.billing.queries import OrderFilter, encode_cursor, page_rows
from invoicing.sql import instant, is_postgres


class PageRow(NamedTuple):
    """One listed order; ``dispatched_at`` is an aware UTC datetime, ``invoice_number`` None until invoiced."""

    id: int
    ref: str
    status: str
    on_hold: bool
    error: str | None
    dispatched_at: datetime | None
    invoice_number: str | None
    company: str


class FeedPage(NamedTuple):
    rows: list[PageRow]
    next_cursor: str | None


async def feed_page(tenant_id: int, flt: OrderFilter, *, cursor: str | None, limit: int) -> FeedPage:
    """The tenant's orders after ``cursor`` by ascending id, at most ``limit`` (1..``MAX_LIMIT``).

    ``InvalidInput`` for a limit out of range or a cursor this API did not issue;
    ``NotFound`` for an unknown ``flt.company``. ``next_cursor`` is None on the last page.
    """
    rows = await page_rows(tenant_id, flt, cursor=cursor, limit=limit)
    more = len(rows) > limit
    del rows[limit:]
    if is_postgres():  # asyncpg gives bool and aware UTC datetimes already
        page = [PageRow._make(row) for row in rows]
    else:  # SQLite: 0/1 and ISO text
        page = [PageRow(r[0], r[1], r[2], bool(r[3]), r[4], instant(r[5]), r[6], r[7]) for r in rows]
    return FeedPage(page, encode_cursor(page[-1].id) if more else None)
