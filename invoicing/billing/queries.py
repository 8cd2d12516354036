"""Reading orders and invoices for one tenant: the "invoiced" filter (DESIGN rule 7).

Transport-free: the HTTP feed and the Slack ``orders`` / ``invoices`` commands share
these functions and get plain dataclasses back. Every lookup is scoped to a tenant,
so another tenant's company or invoice simply does not exist (``NotFound``).

Pagination is by keyset on the order id (stable under concurrent inserts: a page
never repeats or skips a row that existed when the first page was read). The cursor
is opaque to callers: base64url of ``o<last id>``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from invoicing.billing.document import InvoiceDocument
from invoicing.billing.limits import MAX_INT
from invoicing.errors import InvalidInput, NotFound
from invoicing.sql import Statement, instant
from invoicing.validation import calendar_range, in_utc, parse_instant, storable
from models import Company, Invoice, InvoiceLine

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


@dataclass(frozen=True)
class OrderFilter:
    """Which orders to list; the dispatch window is ``[dispatched_from, dispatched_before)`` in UTC."""

    company: str | None = None
    invoiced: bool | None = None
    dispatched_from: datetime | None = None
    dispatched_before: datetime | None = None
    # Slack's "held" and "errors" views: orders on hold / with an error that are not invoiced.
    on_hold: bool | None = None
    has_error: bool | None = None
    # The orders on one invoice (its display number, e.g. ``INK-000001``).
    invoice: str | None = None


@dataclass(frozen=True)
class OrderRow:
    id: int
    company: str
    ref: str
    status: str
    on_hold: bool
    error: str | None
    dispatched_at: datetime | None
    invoice_number: str | None


@dataclass(frozen=True)
class OrderPage:
    rows: tuple[OrderRow, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class InvoiceDetail:
    """An issued invoice as stored (the printable document) plus where it belongs."""

    document: InvoiceDocument
    company: str
    order_refs: tuple[str, ...]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"o{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The last id of the previous page; ``InvalidInput('cursor')`` for anything we did not issue.

    An id past what the id column holds (``limits.MAX_INT``) was never issued either, and
    PostgreSQL would refuse to compare the int4 column with it.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not (raw.startswith("o") and raw[1:].isdigit() and len(raw) < 20 and int(raw[1:]) <= MAX_INT):
        raise InvalidInput("cursor", "is not a cursor returned by this API; start without one")
    return int(raw[1:])


def parse_bound(value: str, field: str, *, end: bool, timezone: str = "UTC") -> datetime:
    """A date-range bound as an aware UTC instant.

    ``YYYY-MM-DD`` is a whole day in ``timezone``: as a start it is that midnight, as an
    end (``end=True``) the next midnight, so ``to=2026-11-30`` includes all of the 30th.
    A full ISO 8601 date-time must carry an offset and is used as given
    (``invoicing.validation.parse_instant``, the parser of every text date-time).
    """
    text = value.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(field, f"{value!r} is not a date such as 2026-11-30") from None
        with calendar_range(field, f"{value!r} "):  # the day after 9999-12-31
            local = datetime.combine(day + timedelta(days=1) if end else day, time(0), ZoneInfo(timezone))
        return in_utc(local, field)
    return parse_instant(value, field, expected="a date (2026-11-30) or date-time (2026-11-30T12:00:00Z)",
                         naive="a date-time needs a time zone offset, e.g. Z for UTC")


#: One page of orders (``list_orders``, the feed's ``order_page.feed_page``). ``{limit}`` is written as a
#: literal int (bounded by ``MAX_LIMIT``): under ``LIMIT $n`` PostgreSQL cannot cost a generic plan for the
#: prepared statement and plans it again on every execution.
PAGE_SQL = (
    "SELECT o.id, o.external_ref, o.status, o.on_hold, o.error, o.dispatched_at, i.display_number, c.short_name "
    'FROM "order" o JOIN company c ON c.id = o.company_id LEFT JOIN invoice i ON i.id = o.invoice_id '
    "WHERE {where} ORDER BY o.id LIMIT {limit} OFFSET {offset}"
)


async def page_rows(tenant_id: int, flt: OrderFilter, *, cursor: str | None, limit: int,
                    offset: int = 0) -> list[tuple[Any, ...]]:
    """``PAGE_SQL``'s raw rows for one page: at most ``limit + 1`` (one more tells that a next page exists).

    ``InvalidInput`` for a limit out of 1..``MAX_LIMIT``, a negative offset or a cursor this API did not
    issue; ``NotFound`` for an unknown ``flt.company``.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    after = decode_cursor(cursor) if cursor else None
    param = Statement()
    where = await page_where(tenant_id, flt, param)
    if after is not None:
        where.append(f"o.id > {param(after)}")
    if offset < 0:
        raise InvalidInput("offset", "must not be negative")
    sql = PAGE_SQL.format(where=" AND ".join(where), limit=int(limit) + 1, offset=param(offset))
    return await param.rows(sql)


async def page_where(tenant_id: int, flt: OrderFilter, param: Statement) -> list[str]:
    """The WHERE conditions of ``flt`` for ``PAGE_SQL`` (``NotFound`` for an unknown company)."""
    where = [f"c.tenant_id = {param(tenant_id)}"]
    if flt.company is not None:
        name = flt.company.strip().lower()
        company = await Company.filter(tenant_id=tenant_id, short_name=name).first() if storable(name, 40) else None
        if company is None:
            raise NotFound(f"No company '{flt.company}'.")
        where.append(f"o.company_id = {param(company.id)}")
    if flt.invoiced is not None:
        where.append(f"o.invoice_id IS {'NOT ' if flt.invoiced else ''}NULL")
    if flt.dispatched_from is not None:
        where.append(f"o.dispatched_at >= {param(flt.dispatched_from)}")
    if flt.dispatched_before is not None:
        where.append(f"o.dispatched_at < {param(flt.dispatched_before)}")
    if flt.on_hold is not None:
        where.append(f"o.on_hold = {param(flt.on_hold)}")
    if flt.has_error is not None:
        where.append(f"o.error IS {'NOT ' if flt.has_error else ''}NULL")
    if flt.invoice is not None:  # a subquery: the count has no join with invoice
        where.append(f"o.invoice_id = (SELECT id FROM invoice WHERE tenant_id = {param(tenant_id)} "
                     f"AND display_number = {param(flt.invoice.strip())})")
    return where


async def count_orders(tenant_id: int, flt: OrderFilter) -> int:
    """How many of the tenant's orders ``flt`` matches (for "1–25 of 310" under a page)."""
    param = Statement()
    where = await page_where(tenant_id, flt, param)
    sql = 'SELECT COUNT(*) FROM "order" o JOIN company c ON c.id = o.company_id WHERE ' + " AND ".join(where)
    rows = await param.rows(sql)
    return int(rows[0][0])


async def list_orders(
    tenant_id: int, flt: OrderFilter, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> OrderPage:
    """One page of the tenant's orders, by ascending id, with the invoice number of invoiced ones.

    One hand-written SELECT of just the listed columns (plus a company lookup when
    ``flt.company`` is given; unknown → ``NotFound``). Not the ORM: building the query
    and converting rows through Tortoise cost 5× the query itself on a 100-row page.
    Served by the primary key (keyset) and, with a company, the (company, invoice, …) index.
    ``offset`` serves numbered pages (Slack's ``page=N``); API clients use the cursor.
    """
    rows = await page_rows(tenant_id, flt, cursor=cursor, limit=limit, offset=offset)
    more = len(rows) > limit
    page = [
        OrderRow(id=r[0], company=r[7], ref=r[1], status=r[2], on_hold=bool(r[3]), error=r[4],
                 dispatched_at=instant(r[5]), invoice_number=r[6])
        for r in rows[:limit]
    ]
    return OrderPage(rows=tuple(page), next_cursor=encode_cursor(page[-1].id) if more else None)


async def get_invoice(tenant_id: int, number: str) -> InvoiceDetail:
    """The tenant's invoice with display number ``number`` (e.g. ``INK-000001``)."""
    invoice = await Invoice.filter(tenant_id=tenant_id, display_number=number.strip()).select_related(
        "tenant", "company").first() if storable(number.strip(), 40) else None
    if invoice is None:
        raise NotFound(f"No invoice {number}.")
    lines = await InvoiceLine.filter(invoice_id=invoice.id).order_by("position")
    return InvoiceDetail(
        document=InvoiceDocument.from_models(invoice, lines, tenant_name=invoice.tenant.name),
        company=invoice.company.short_name,
        order_refs=tuple(dict.fromkeys(line.order_ref for line in lines)),
    )
