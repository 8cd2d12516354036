"""Orders from the OMS: validated, idempotent upserts (single and in bulk) that never
rewrite invoiced history.

Every function validates all of its input before writing anything and writes in
one transaction, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from invoicing import validation
from invoicing.billing.limits import MAX_QUANTITY
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.ingest.batches import CHUNK, TenantRef, UpsertResult, chunks
from invoicing.ingest.catalog import short_names
from invoicing.parties.accounting import normalise_country
from invoicing.retrying import atomic_retry
from invoicing.sql import Statement, connection, instant, is_postgres, is_unique_violation, json_text, json_value
from models import (
    Company,
    Invoice,
    Order,
    OrderStatus,
    Tenant,
)

# --- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemInput:
    sku: str
    quantity: int
    description: str = ""


@dataclass(frozen=True)
class OrderInput:
    """An order as the OMS reports it. ``company`` is a short name; ``updated_at`` is when the
    source last changed it (aware); ``previous_company`` asks to move the order from there."""

    company: str
    ref: str
    items: Sequence[ItemInput]
    status: str
    dispatched_at: datetime | None = None
    on_hold: bool = False
    error: str | None = None
    ship_to: Mapping[str, Any] | None = None
    updated_at: datetime | None = None
    previous_company: str | None = None


@dataclass(frozen=True)
class CleanOrder:
    """An order that passed ``clean_order``: the only input ``upsert_orders`` accepts."""

    company: str
    ref: str
    items: tuple[ItemInput, ...]
    status: OrderStatus
    dispatched_at: datetime | None
    on_hold: bool
    error: str | None
    ship_to: dict[str, str]
    updated_at: datetime | None
    previous_company: str | None


SHIP_TO_KEYS = ("name", "line1", "line2", "city", "region", "postcode", "country")
MAX_ITEMS = 1000
#: Orders written by one call after which PostgreSQL statistics are refreshed (imports; not feed batches).
ANALYZE_AFTER = 10_000


def clean_item(item: ItemInput, field: str = "") -> ItemInput:
    """Validate one item; errors name ``{field}sku`` / ``quantity`` / ``description``."""
    if not isinstance(item.quantity, int) or isinstance(item.quantity, bool) or not 1 <= item.quantity <= MAX_QUANTITY:
        raise InvalidInput(f"{field}quantity", f"must be a whole number between 1 and {MAX_QUANTITY}")
    return ItemInput(validation.sku(item.sku, f"{field}sku"), item.quantity,
                     validation.text(item.description, f"{field}description", max_len=300, required=False))


def _aware_utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(field, "must include a time zone offset (ISO 8601, e.g. 2026-11-20T14:03:00Z)")
    return validation.in_utc(value, field)


def clean_order(order: OrderInput, field: str = "") -> CleanOrder:
    """Validate an order completely (no database access); errors name ``{field}status``,
    ``{field}items[0].quantity``, ``{field}ship_to.country`` …"""
    ref = validation.text(order.ref, f"{field}ref", max_len=64)
    try:
        status = OrderStatus(order.status)
    except ValueError:
        allowed = ", ".join(s.value for s in OrderStatus)
        raise InvalidInput(f"{field}status", f"{order.status!r} is not a status; use one of {allowed}") from None
    dispatched_at = _aware_utc(order.dispatched_at, f"{field}dispatched_at")
    if status == OrderStatus.DISPATCHED and dispatched_at is None:
        raise InvalidInput(f"{field}dispatched_at", "is required when status is dispatched")
    if not order.items:
        raise InvalidInput(f"{field}items", "an order needs at least one item")
    if len(order.items) > MAX_ITEMS:
        raise InvalidInput(f"{field}items", f"has {len(order.items)} items; at most {MAX_ITEMS}")
    items = tuple(clean_item(item, f"{field}items[{i}].") for i, item in enumerate(order.items))
    ship_to: dict[str, str] = {}
    for key, value in (order.ship_to or {}).items():
        if key not in SHIP_TO_KEYS:
            raise InvalidInput(f"{field}ship_to.{key}", f"unknown key; use {', '.join(SHIP_TO_KEYS)}")
        text = validation.text(value, f"{field}ship_to.{key}", required=False)
        if text:  # empty keys are dropped, so "line2": "" and no line2 are the same state
            ship_to[key] = normalise_country(text, f"{field}ship_to.country") if key == "country" else text
    if not isinstance(order.on_hold, bool):
        raise InvalidInput(f"{field}on_hold", "must be true or false")
    previous = order.previous_company
    return CleanOrder(
        company=validation.short_name(order.company, f"{field}company"),
        ref=ref,
        items=items,
        status=status,
        dispatched_at=dispatched_at,
        on_hold=order.on_hold,
        error=validation.text(order.error, f"{field}error", max_len=2000, required=False) or None,
        ship_to=ship_to,
        updated_at=_aware_utc(order.updated_at, f"{field}updated_at"),
        previous_company=validation.short_name(previous, f"{field}previous_company") if previous else None,
    )


@dataclass(frozen=True)
class OrderOutcome:
    company: str
    ref: str
    order_id: int
    result: UpsertResult
    invoice_number: str | None = None

    @property
    def applied(self) -> bool:
        return self.result is not UpsertResult.STALE


@dataclass(frozen=True)
class InvoicedOrderChange:
    """One refused change: ``index`` is the order's position in the request."""

    index: int
    company: str
    ref: str
    invoice_number: str
    message: str


class InvoicedOrderConflict(Conflict):
    """Changing the items or the company of invoiced orders; nothing was written."""

    def __init__(self, changes: Sequence[InvoicedOrderChange]) -> None:
        more = f" ({len(changes) - 1} more order(s) likewise refused)" if len(changes) > 1 else ""
        super().__init__(changes[0].message + more)
        self.changes = tuple(changes)


@dataclass(frozen=True)
class _Stored:
    id: int
    company_id: int
    values: dict[str, Any]
    source_updated_at: datetime | None
    invoice_id: int | None
    items: tuple[ItemInput, ...]
    invoice_number: str | None = None


@dataclass(frozen=True)
class _Plan:
    index: int
    order: CleanOrder
    company_id: int
    stored: _Stored | None
    result: UpsertResult
    write_row: bool = False
    write_items: bool = False


_ORDER_FIELDS = ("status", "on_hold", "error", "dispatched_at", "ship_to")


def _order_values(order: CleanOrder) -> dict[str, Any]:
    return {"status": order.status, "on_hold": order.on_hold, "error": order.error,
            "dispatched_at": order.dispatched_at, "ship_to": order.ship_to}


def _plan(index: int, order: CleanOrder, company_id: int, stored: _Stored | None) -> _Plan | str:
    """Decide what to do with one order given what is stored; a string is a refusal (409).

    The out-of-order rule: an update whose ``updated_at`` is strictly older than the
    stored ``source_updated_at`` is ignored (STALE). Equal stamps are applied, so a replay
    is a no-op and a same-instant correction still lands; no stamp means "apply".
    """
    if stored is None:
        return _Plan(index, order, company_id, None, UpsertResult.CREATED, write_row=True, write_items=True)
    if order.updated_at and stored.source_updated_at and order.updated_at < stored.source_updated_at:
        return _Plan(index, order, company_id, stored, UpsertResult.STALE)
    items_changed = stored.items != order.items
    moved = stored.company_id != company_id
    if stored.invoice_id is not None and moved:
        return (f"Order {order.ref} is on invoice {stored.invoice_number}; it cannot move to "
                f"company '{order.company}'.")
    if stored.invoice_id is not None and items_changed:
        return (f"Order {order.ref} of '{order.company}' is on invoice {stored.invoice_number}; "
                "its items can no longer change.")
    changed = moved or items_changed or any(stored.values[k] != v for k, v in _order_values(order).items())
    newer = order.updated_at is not None and order.updated_at != stored.source_updated_at
    return _Plan(index, order, company_id, stored, UpsertResult.UPDATED if changed else UpsertResult.UNCHANGED,
                 write_row=changed or newer, write_items=items_changed)


async def upsert_orders(
    tenant: TenantRef, orders: Sequence[CleanOrder], *, progress: Callable[[int, int], None] | None = None
) -> list[OrderOutcome]:
    """Create or update many orders in one transaction; outcomes in input order.

    All or nothing, checked before any write: an unknown company is ``NotFound``, the same
    order twice is ``InvalidInput`` (``orders[i].ref``), changing the items or company of an
    invoiced order is ``InvoicedOrderConflict`` naming the invoice. Status, hold, error,
    dispatch time and ship-to of an invoiced order are still recorded: the invoice is a
    snapshot and never changes. Orders are identified by company and reference; an order
    moves between companies only when ``previous_company`` asks for it. Writes use bulk
    statements (a few per 1,000 orders), and rows being updated are locked (PostgreSQL, in id
    order) so a concurrent invoice run and an item change cannot interleave. The transaction is
    run again, a bounded number of times, after a deadlock or "database is locked".
    """
    seen: dict[tuple[str, str], int] = {}
    for i, order in enumerate(orders):
        first = seen.setdefault((order.company, order.ref), i)
        if first != i:
            raise InvalidInput(f"orders[{i}].ref",
                               f"order {order.ref} of '{order.company}' is already at orders[{first}]; send it once")
    names = {o.company for o in orders} | {o.previous_company for o in orders if o.previous_company}

    async def write(conn: BaseDBAsyncClient) -> tuple[list[_Plan], dict[int, int]]:
        # One transaction, run again whole after a deadlock or "database is locked" (invoicing.retrying);
        # every read on the transaction's connection: fewer round trips.
        companies = await _company_ids(conn, tenant.id, names)
        for order in orders:
            for name in (order.company, order.previous_company):
                if name and name not in companies:
                    raise NotFound(f"No company '{name}' in {tenant.name}.")
        stored = await _load_orders(conn,
            [(companies[o.company], o.ref) for o in orders]
            + [(companies[o.previous_company], o.ref) for o in orders if o.previous_company]
        )
        plans: list[_Plan] = []
        refusals: list[InvoicedOrderChange] = []
        for i, order in enumerate(orders):
            company_id = companies[order.company]
            current = stored.get((company_id, order.ref))
            if current is None and order.previous_company:
                current = stored.get((companies[order.previous_company], order.ref))
            decided = _plan(i, order, company_id, current)
            if isinstance(decided, str):
                assert current is not None and current.invoice_number is not None
                refusals.append(InvoicedOrderChange(i, order.company, order.ref, current.invoice_number, decided))
            else:
                plans.append(decided)
        if refusals:
            raise InvoicedOrderConflict(refusals)
        return plans, await _write_orders(conn, plans, progress)

    # A concurrent batch may create one of our new orders first: we then meet its unique key,
    # and the next attempt finds that row and updates it like any stored order.
    plans, ids = await atomic_retry(write, also=is_unique_violation)
    written = sum(1 for p in plans if p.write_row)
    if written >= ANALYZE_AFTER and is_postgres():
        # After a bulk load the planner's statistics still describe the old, smaller table,
        # and the next import's lookups would be planned as scans (minutes, not seconds).
        for table in ("order", "order_item"):
            await connection().execute_script(f'ANALYZE "{table}"')
    return [
        OrderOutcome(p.order.company, p.order.ref, ids.get(p.index) or p.stored.id,  # type: ignore[union-attr]
                     p.result, p.stored.invoice_number if p.stored else None)
        for p in plans
    ]


async def _company_ids(conn: BaseDBAsyncClient, tenant_id: int, names: Iterable[str]) -> dict[str, int]:
    """The ids of the tenant's companies named in ``names`` (short names, as stored), by name.

    By hand on the transaction's connection: a feed PUT runs this for one name, and the ORM's
    query and ``Company`` objects (every accounting column) cost more than the lookup.
    """
    found: dict[str, int] = {}
    for chunk in chunks(short_names(names)):
        q = Statement(conn)
        rows = await q.rows(f"SELECT short_name, id FROM company WHERE tenant_id = {q(tenant_id)} "
                            f"AND short_name {q.any_of(chunk, 'varchar')}")
        found.update((short_name, company_id) for short_name, company_id in rows)
    return found


_STORED_COLUMNS = ("id, company_id, external_ref, invoice_id, source_updated_at, status, on_hold, error, "
                   "dispatched_at, ship_to")


async def _load_orders(conn: BaseDBAsyncClient, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], _Stored]:
    """Stored orders (with items and invoice number) for ``(company_id, ref)`` keys, locked for update
    (PostgreSQL; SQLite serialises writers anyway)."""
    by_company: dict[int, list[str]] = {}
    for company_id, ref in keys:
        by_company.setdefault(company_id, []).append(ref)
    rows: list[Any] = []
    for company_id in sorted(by_company):
        for chunk in chunks(sorted(set(by_company[company_id]))):
            q = Statement(conn)
            rows += await q.rows(f'SELECT {_STORED_COLUMNS} FROM "order" WHERE company_id = {q(company_id)} '
                                 f"AND external_ref {q.any_of(chunk, 'varchar')}")
    if is_postgres(conn):
        # Lock in id order across the whole batch, the one order of every writer of orders (a run locks
        # its candidates so too; docs/architecture.md, "Lock order"), and read the rows again under the lock.
        found, rows = sorted(row[0] for row in rows), []
        for chunk in chunks(found):
            q = Statement(conn)
            rows += await q.rows(f'SELECT {_STORED_COLUMNS} FROM "order" WHERE id {q.any_of(chunk, "int")} '
                                 f"ORDER BY id{q.for_update()}")
    items: dict[int, list[ItemInput]] = {}
    for chunk in chunks([row[0] for row in rows]):
        q = Statement(conn)
        sql = (f"SELECT order_id, sku, quantity, description FROM order_item WHERE order_id {q.any_of(chunk, 'int')} "
               "ORDER BY order_id, position, id")
        for order_id, sku, quantity, description in await q.rows(sql):
            items.setdefault(order_id, []).append(ItemInput(sku, quantity, description))
    invoice_ids = sorted({row[3] for row in rows if row[3] is not None})
    numbers: dict[int, str] = {}
    for chunk in chunks(invoice_ids):
        numbers.update(await Invoice.filter(id__in=chunk).values_list("id", "display_number"))
    return {
        (company_id, ref): _Stored(
            id=order_id, company_id=company_id, source_updated_at=instant(stamp), invoice_id=invoice_id,
            values={"status": OrderStatus(status), "on_hold": bool(on_hold), "error": error,
                    "dispatched_at": instant(dispatched_at), "ship_to": json_value(ship_to)},
            items=tuple(items.get(order_id, ())), invoice_number=numbers.get(invoice_id),
        )
        for order_id, company_id, ref, invoice_id, stamp, status, on_hold, error, dispatched_at, ship_to in rows
    }


async def _insert_rows(
    conn: BaseDBAsyncClient, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    returning: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Multi-row ``INSERT … VALUES (…), (…) [RETURNING …]``, one statement per chunk.

    ``bulk_create`` builds a model object per row and cannot return the new ids, and
    selecting them back is planned badly by PostgreSQL on a table grown inside the same
    transaction. Values must already be database values (see ``_db_values``).
    """
    per_statement = max(1, min(CHUNK, 30_000 // len(columns)))  # asyncpg allows 32,767 parameters
    quoted = ",".join(f'"{c}"' for c in columns)
    tail = " RETURNING " + ",".join(f'"{c}"' for c in returning) if returning else ""
    out: list[dict[str, Any]] = []
    for chunk in chunks(rows, per_statement):
        q = Statement(conn)
        groups = ",".join("(" + ",".join(q(value) for value in row) + ")" for row in chunk)
        sql = f'INSERT INTO "{table}" ({quoted}) VALUES {groups}{tail}'
        if returning:
            out += await q.dicts(sql)
        else:
            await q.execute(sql)
    return out


_ITEM_COLUMNS = ("order_id", "position", "sku", "quantity", "description")
_WRITTEN = ("company_id", "status", "on_hold", "error", "dispatched_at", "ship_to", "source_updated_at", "updated_at")


def _db_values(p: _Plan, now: datetime) -> tuple[Any, ...]:
    """The ``_WRITTEN`` columns of a planned order, as database values."""
    o = p.order
    stored_stamp = p.stored.source_updated_at if p.stored else None
    stamp = max(filter(None, (o.updated_at, stored_stamp)), default=None)  # never moves backwards
    return (p.company_id, o.status.value, o.on_hold, o.error, o.dispatched_at, json_text(o.ship_to), stamp, now)


async def _write_orders(
    conn: BaseDBAsyncClient, plans: Sequence[_Plan], progress: Callable[[int, int], None] | None
) -> dict[int, int]:
    """Insert new orders, update changed ones, replace changed item lists; return ``{index: new id}``."""
    new = [p for p in plans if p.result is UpsertResult.CREATED]
    updates = [p for p in plans if p.write_row and p.stored is not None]
    total, done = len(new) + len(updates), 0
    now = datetime.now(UTC)
    ids: dict[int, int] = {}
    for chunk in chunks(new):
        index_of = {(p.company_id, p.order.ref): p.index for p in chunk}
        rows = [(*_db_values(p, now), p.order.ref, now) for p in chunk]
        for row in await _insert_rows(conn, "order", (*_WRITTEN, "external_ref", "created_at"), rows,
                                      returning=("id", "company_id", "external_ref")):
            ids[index_of[(row["company_id"], row["external_ref"])]] = row["id"]
        done += len(chunk)
        if progress:
            progress(done, total)
    q = Statement(conn)
    assignments = ", ".join(f"{column} = {q(None)}" for column in _WRITTEN)
    update_sql = f'UPDATE "order" SET {assignments} WHERE id = {q(None)}'
    for chunk in chunks(updates):
        await q.execute_many(update_sql, [[*_db_values(p, now), p.stored.id] for p in chunk])
        done += len(chunk)
        if progress:
            progress(done, total)
    for chunk in chunks([p.stored.id for p in plans if p.write_items and p.stored is not None]):
        q = Statement(conn)
        await q.execute(f"DELETE FROM order_item WHERE order_id {q.any_of(chunk, 'int')}")
    await _insert_rows(conn, "order_item", _ITEM_COLUMNS, [
        (ids.get(p.index) or p.stored.id, pos, item.sku, item.quantity, item.description)  # type: ignore[union-attr]
        for p in plans if p.write_items for pos, item in enumerate(p.order.items)])
    return ids


async def upsert_order(
    company: Company,
    external_ref: str,
    *,
    items: Sequence[ItemInput],
    status: str,
    dispatched_at: datetime | None = None,
    on_hold: bool = False,
    error: str | None = None,
    ship_to: Mapping[str, Any] | None = None,
    source_updated_at: datetime | None = None,
) -> Order:
    """Create or update one order by its reference (idempotent); see ``upsert_orders``.

    An invoiced order's items can no longer change (``InvoicedOrderConflict``); its
    status, hold and error flags may, as the OMS keeps reporting them. An update older
    than the stored ``source_updated_at`` is ignored and the stored order returned.
    """
    clean = clean_order(OrderInput(company.short_name, external_ref, items, status, dispatched_at, on_hold, error,
                                   ship_to, source_updated_at))
    tenant = await Tenant.get(id=company.tenant_id)
    [outcome] = await upsert_orders(tenant, [clean])
    return await Order.get(id=outcome.order_id)
