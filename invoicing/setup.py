"""Creating and changing the things invoicing works on: tenants, companies, prices, orders.

Every function validates all of its input before writing anything and writes in
one transaction, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from invoicing import validation
from invoicing.accounting import normalise_accounting, normalise_country
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.money import parse_amount, parse_tax_rate
from models import (
    AuditEntry,
    Company,
    EmailerIntegration,
    Invoice,
    Order,
    OrderStatus,
    Plan,
    Price,
    Product,
    Tenant,
)

#: Rows per bulk statement and per ``IN (…)`` list: well under SQLite's and asyncpg's parameter limits.
_CHUNK = 1000


async def create_tenant(
    name: str, *, slack_team_id: str | None = None, plan: str = "oms", currency: str = "GBP", actor: str = "cli"
) -> Tenant:
    name = validation.text(name, "name", max_len=100)
    try:
        plan_value = Plan(plan)
    except ValueError:
        raise InvalidInput("plan", f"{plan!r} is not a plan; use oms or oms_lite") from None
    currency = validation.currency(currency)
    if slack_team_id is not None and not slack_team_id.strip().startswith("T"):
        raise InvalidInput("slack-team", f"{slack_team_id!r} is not a Slack team id (they start with T)")
    if await Tenant.filter(name=name).exists():
        raise Conflict(f"A tenant called '{name}' already exists.")
    if slack_team_id and await Tenant.filter(slack_team_id=slack_team_id.strip()).exists():
        raise Conflict(f"Slack workspace {slack_team_id} is already linked to another tenant.")
    async with in_transaction():
        tenant = await Tenant.create(
            name=name, slack_team_id=slack_team_id.strip() if slack_team_id else None, plan=plan_value, currency=currency
        )
        await AuditEntry.create(tenant=tenant, actor=actor, action="tenant.create", target=f"tenant:{name}",
                                new={"plan": plan_value.value, "currency": currency, "slack_team_id": slack_team_id})
    return tenant


async def get_tenant(name: str) -> Tenant:
    tenant = await Tenant.get_or_none(name=name)
    if tenant is None:
        raise NotFound(f"No tenant called '{name}'. `invoicebot tenant create` makes one.")
    return tenant


async def create_company(
    tenant: Tenant,
    short_name: str,
    *,
    name: str,
    country: str,
    currency: str,
    timezone: str = "UTC",
    channel: str = "",
    accounting: Mapping[str, Any] | None = None,
    actor: str = "cli",
) -> Company:
    """A dropship company with its (disabled) PDF Emailer row; accounting keys optional."""
    short = validation.short_name(short_name)
    values = {
        "name": validation.text(name, "name"),
        "country": normalise_country(country),
        "currency": validation.currency(currency),
        "timezone": validation.timezone(timezone),
        "slack_channel": validation.text(channel, "channel", max_len=80, required=False),
    }
    details = normalise_accounting({"country": values["country"], **(accounting or {})}, country=values["country"])
    if await Company.filter(tenant_id=tenant.id, short_name=short).exists():
        raise Conflict(f"Company '{short}' already exists in {tenant.name}.")
    async with in_transaction():
        company = await Company.create(tenant_id=tenant.id, short_name=short, **{**values, **details})
        await EmailerIntegration.create(company=company)
        await AuditEntry.create(tenant_id=tenant.id, actor=actor, action="company.add", target=f"company:{short}",
                                new={**values, **details})
    return company


class UpsertResult(StrEnum):
    """What an idempotent write did; ``STALE`` means an out-of-order update was ignored."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# --- companies ---------------------------------------------------------------------------------


def _accounting(updates: Mapping[str, Any], country: str) -> dict[str, Any]:
    """Accounting keys validated for ``country``; errors name ``accounting.<key>``."""
    stated = str(updates.get("country") or "").strip()
    if stated and stated.upper() != country:
        raise InvalidInput("accounting.country", f"{stated!r} contradicts the company's country {country}")
    try:
        return normalise_accounting({k: v for k, v in updates.items() if k != "country"}, country=country)
    except InvalidInput as exc:
        raise InvalidInput(f"accounting.{exc.field}", exc.reason) from None


async def upsert_company(
    tenant: Tenant,
    short_name: str,
    *,
    name: str,
    country: str,
    currency: str,
    timezone: str = "UTC",
    channel: str | None = None,
    accounting: Mapping[str, Any] | None = None,
    actor: str = "cli",
) -> tuple[Company, UpsertResult]:
    """Create the company or bring it to the given state (the feed's ``PUT /companies/{co}``).

    Only the accounting keys given are changed (others keep their values); ``channel``
    None leaves the channel alone. Changing the currency is refused once the company
    has retailer prices or invoices, because those are in the old currency. A replay
    writes nothing and adds no audit entry.
    """
    short = validation.short_name(short_name)
    values: dict[str, Any] = {
        "name": validation.text(name, "name"),
        "country": normalise_country(country),
        "currency": validation.currency(currency),
        "timezone": validation.timezone(timezone),
    }
    if channel is not None:
        values["slack_channel"] = validation.text(channel, "channel", max_len=80, required=False)
    details = _accounting(accounting or {}, values["country"])
    company = await Company.get_or_none(tenant_id=tenant.id, short_name=short)
    if company is None:
        created = await create_company(
            tenant, short, name=values["name"], country=values["country"], currency=values["currency"],
            timezone=values["timezone"], channel=values.get("slack_channel", ""), accounting=details, actor=actor,
        )
        return created, UpsertResult.CREATED
    if values["country"] != company.country and company.vat_number and "vat_number" not in details:
        # A stored VAT number must stay valid for the new country.
        details["vat_number"] = _accounting({"vat_number": company.vat_number}, values["country"])["vat_number"]
    wanted = {**values, **details}
    changes = {k: (getattr(company, k), v) for k, v in wanted.items() if getattr(company, k) != v}
    if not changes:
        return company, UpsertResult.UNCHANGED
    if "currency" in changes and (
        await Price.filter(retailer_id=company.id).exists() or await Invoice.filter(company_id=company.id).exists()
    ):
        raise Conflict(f"Company '{short}' already has prices or invoices in {company.currency}; "
                       "its currency can no longer change.")
    async with in_transaction():
        company.update_from_dict({k: new for k, (_, new) in changes.items()})
        await company.save(update_fields=list(changes))
        await AuditEntry.create(tenant_id=tenant.id, actor=actor, action="company.update", target=f"company:{short}",
                                old={k: old for k, (old, _) in changes.items()},
                                new={k: new for k, (_, new) in changes.items()})
    return company, UpsertResult.UPDATED


# --- products and prices -----------------------------------------------------------------------


@dataclass(frozen=True)
class PriceInput:
    retailer: str | None
    cost_price: Any
    shipping: Any = "0"
    tax_rate: Any = "0"
    currency: str | None = None


@dataclass(frozen=True)
class ProductInput:
    sku: str
    name: str
    prices: Sequence[PriceInput]


@dataclass(frozen=True)
class CleanPrice:
    """A validated price: amounts parsed, currency implied, retailer resolved (None = default)."""

    retailer_id: int | None
    retailer: str | None
    currency: str
    cost_price: Decimal
    shipping: Decimal
    tax_rate: Decimal


@dataclass(frozen=True)
class CatalogResult:
    products_created: int = 0
    products_renamed: int = 0
    prices_created: int = 0
    prices_updated: int = 0
    prices_unchanged: int = 0

    @property
    def result(self) -> UpsertResult:
        """The overall outcome, for a one-product write."""
        if self.products_created:
            return UpsertResult.CREATED
        if self.products_renamed or self.prices_created or self.prices_updated:
            return UpsertResult.UPDATED
        return UpsertResult.UNCHANGED


async def retailers_of(tenant: Tenant, names: Iterable[str | None] | None = None) -> dict[str, Company]:
    """The tenant's companies by short name (all of them when ``names`` is None)."""
    query = Company.filter(tenant_id=tenant.id)
    if names is not None:
        wanted = {n.strip().lower() for n in names if n}
        query = query.filter(short_name__in=sorted(n for n in wanted if validation.storable(n, 40)))
    return {c.short_name: c for c in await query}


def clean_price(tenant: Tenant, price: PriceInput, retailers: Mapping[str, Company], field: str = "") -> CleanPrice:
    """Validate one price row; ``field`` prefixes error names (``prices[0].`` → ``prices[0].cost_price``).

    The currency is implied (default → tenant currency, retailer → its currency); a
    stated currency that contradicts it is refused.
    """
    company = None
    if price.retailer and price.retailer.strip():
        company = retailers.get(price.retailer.strip().lower())
        if company is None:
            raise InvalidInput(f"{field}retailer", f"no company '{price.retailer}' in {tenant.name}")
    implied = company.currency if company else tenant.currency
    if price.currency and validation.currency(price.currency, f"{field}currency") != implied:
        who = f"company '{company.short_name}'" if company else "default prices (the seller currency)"
        raise InvalidInput(f"{field}currency", f"{price.currency} contradicts {who}, which use {implied}")
    return CleanPrice(
        retailer_id=company.id if company else None,
        retailer=company.short_name if company else None,
        currency=implied,
        cost_price=parse_amount(price.cost_price, f"{field}cost_price"),
        shipping=parse_amount(price.shipping, f"{field}shipping"),
        tax_rate=parse_tax_rate(price.tax_rate, f"{field}tax_rate"),
    )


_PRICE_FIELDS = ("currency", "cost_price", "shipping", "tax_rate")


async def set_product(
    tenant: Tenant, sku: str, *, name: str, prices: Sequence[PriceInput], actor: str = "cli"
) -> Product:
    """Create or update a product and upsert its prices (default: retailer None).

    A price's currency is implied (default → tenant currency, retailer → its
    currency); a stated currency that contradicts it is refused.
    """
    await set_products(tenant, [ProductInput(sku, name, prices)], actor=actor, field="")
    return await Product.get(tenant_id=tenant.id, sku=validation.sku(sku))


async def set_products(
    tenant: Tenant, products: Sequence[ProductInput], *, actor: str = "cli", field: str = "products"
) -> CatalogResult:
    """Create or update many products and their prices in one transaction (feed and CSV import).

    Validates everything first (errors name ``{field}[i].prices[j].cost_price``, or
    ``prices[j].cost_price`` when ``field`` is empty). Prices not listed are left as
    they are. Changed prices are audited (old → new); a replay writes nothing.
    """
    retailers = await retailers_of(tenant, (p.retailer for product in products for p in product.prices))
    clean: dict[str, tuple[str, list[CleanPrice]]] = {}
    for i, product in enumerate(products):
        prefix = f"{field}[{i}]." if field else ""
        sku = validation.sku(product.sku, f"{prefix}sku")
        if sku in clean:
            raise InvalidInput(f"{prefix}sku", f"SKU {sku} is listed twice")
        prices: list[CleanPrice] = []
        for j, price in enumerate(product.prices):
            row = clean_price(tenant, price, retailers, f"{prefix}prices[{j}].")
            if any(p.retailer_id == row.retailer_id for p in prices):
                raise InvalidInput(f"{prefix}prices[{j}].retailer",
                                   f"the {row.retailer or 'default'} price of {sku} is listed twice")
            prices.append(row)
        clean[sku] = (validation.text(product.name, f"{prefix}name"), prices)
    async with in_transaction():
        return await _write_catalog(tenant, clean, actor)


async def _write_catalog(
    tenant: Tenant, clean: Mapping[str, tuple[str, list[CleanPrice]]], actor: str
) -> CatalogResult:
    skus = list(clean)
    stored: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(skus):
        for row in await Product.filter(tenant_id=tenant.id, sku__in=chunk).values("id", "sku", "name"):
            stored[row["sku"]] = (row["id"], row["name"])
    new = [sku for sku in skus if sku not in stored]
    await Product.bulk_create([Product(tenant_id=tenant.id, sku=sku, name=clean[sku][0]) for sku in new],
                              batch_size=_CHUNK)
    for chunk in _chunks(new):
        for row in await Product.filter(tenant_id=tenant.id, sku__in=chunk).values("id", "sku", "name"):
            stored[row["sku"]] = (row["id"], row["name"])
    renamed = [Product(id=stored[sku][0], name=clean[sku][0]) for sku in skus
               if sku not in new and stored[sku][1] != clean[sku][0]]
    if renamed:
        await Product.bulk_update(renamed, fields=["name"], batch_size=_CHUNK)
    product_ids = [stored[sku][0] for sku in skus]
    existing: dict[tuple[int, int | None], dict[str, Any]] = {}
    for chunk in _chunks(product_ids):
        for row in await Price.filter(product_id__in=chunk).values("id", "product_id", "retailer_id", *_PRICE_FIELDS):
            existing[(row["product_id"], row["retailer_id"])] = row
    created: list[Price] = []
    changed: list[Price] = []
    audits: list[AuditEntry] = []
    unchanged = 0
    for sku in skus:
        product_id = stored[sku][0]
        for price in clean[sku][1]:
            values = {k: getattr(price, k) for k in _PRICE_FIELDS}
            row = existing.get((product_id, price.retailer_id))
            if row is None:
                created.append(Price(product_id=product_id, retailer_id=price.retailer_id, **values))
            elif all(row[k] == v for k, v in values.items()):  # numeric compare: 5.0000 == 5.00
                unchanged += 1
            else:
                changed.append(Price(id=row["id"], **values))
                audits.append(AuditEntry(
                    tenant_id=tenant.id, actor=actor, action="price.set",
                    target=f"price:{sku}:{price.retailer or 'default'}",
                    old={k: str(row[k]) for k in _PRICE_FIELDS}, new={k: str(v) for k, v in values.items()},
                ))
    await Price.bulk_create(created, batch_size=_CHUNK)
    if changed:
        await Price.bulk_update(changed, fields=[*_PRICE_FIELDS, "updated_at"], batch_size=_CHUNK)
    await AuditEntry.bulk_create(audits, batch_size=_CHUNK)
    return CatalogResult(products_created=len(new), products_renamed=len(renamed), prices_created=len(created),
                         prices_updated=len(changed), prices_unchanged=unchanged)


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
MAX_QUANTITY = 100_000
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
    return value.astimezone(UTC)


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
    tenant: Tenant, orders: Sequence[CleanOrder], *, progress: Callable[[int, int], None] | None = None
) -> list[OrderOutcome]:
    """Create or update many orders in one transaction; outcomes in input order.

    All or nothing, checked before any write: an unknown company is ``NotFound``, the same
    order twice is ``InvalidInput`` (``orders[i].ref``), changing the items or company of an
    invoiced order is ``InvoicedOrderConflict`` naming the invoice. Status, hold, error,
    dispatch time and ship-to of an invoiced order are still recorded: the invoice is a
    snapshot and never changes. Orders are identified by company and reference; an order
    moves between companies only when ``previous_company`` asks for it. Writes use bulk
    statements (a few per 1,000 orders), and rows being updated are locked (PostgreSQL) so
    a concurrent invoice run and an item change cannot interleave.
    """
    seen: dict[tuple[str, str], int] = {}
    for i, order in enumerate(orders):
        first = seen.setdefault((order.company, order.ref), i)
        if first != i:
            raise InvalidInput(f"orders[{i}].ref",
                               f"order {order.ref} of '{order.company}' is already at orders[{first}]; send it once")
    names = {o.company for o in orders} | {o.previous_company for o in orders if o.previous_company}
    async with in_transaction() as conn:  # every read on the transaction's connection: fewer round trips
        companies = await retailers_of(tenant, names)
        for order in orders:
            for name in (order.company, order.previous_company):
                if name and name not in companies:
                    raise NotFound(f"No company '{name}' in {tenant.name}.")
        stored = await _load_orders(conn,
            [(companies[o.company].id, o.ref) for o in orders]
            + [(companies[o.previous_company].id, o.ref) for o in orders if o.previous_company]
        )
        plans: list[_Plan] = []
        refusals: list[InvoicedOrderChange] = []
        for i, order in enumerate(orders):
            company_id = companies[order.company].id
            current = stored.get((company_id, order.ref))
            if current is None and order.previous_company:
                current = stored.get((companies[order.previous_company].id, order.ref))
            decided = _plan(i, order, company_id, current)
            if isinstance(decided, str):
                assert current is not None and current.invoice_number is not None
                refusals.append(InvoicedOrderChange(i, order.company, order.ref, current.invoice_number, decided))
            else:
                plans.append(decided)
        if refusals:
            raise InvoicedOrderConflict(refusals)
        ids = await _write_orders(conn, plans, progress)
    written = sum(1 for p in plans if p.write_row)
    if written >= ANALYZE_AFTER and conn.capabilities.dialect == "postgres":
        # After a bulk load the planner's statistics still describe the old, smaller table,
        # and the next import's lookups would be planned as scans (minutes, not seconds).
        for table in ("order", "order_item"):
            await Order._meta.db.execute_script(f'ANALYZE "{table}"')
    return [
        OrderOutcome(p.order.company, p.order.ref, ids.get(p.index) or p.stored.id,  # type: ignore[union-attr]
                     p.result, p.stored.invoice_number if p.stored else None)
        for p in plans
    ]


class _Sql:
    """Parameter placeholders in the connection's dialect (``$1`` for asyncpg, ``?`` for SQLite).

    The order write path uses hand-written statements: at 500–1,000 orders per request,
    the ORM's per-row objects and query building cost more than the database work.
    """

    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.postgres = conn.capabilities.dialect == "postgres"
        self.params: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else "?"

    def any_of(self, values: Sequence[Any], pg_type: str) -> str:
        """``= ANY($n::int[])`` (one prepared statement for any length) or ``IN (?, ?, …)``."""
        if self.postgres:
            return f"= ANY({self(list(values))}::{pg_type}[])"
        return f"IN ({','.join(self(v) for v in values)})"


def _instant(value: datetime | str | None) -> datetime | None:
    """asyncpg returns aware datetimes; SQLite the ISO text Tortoise stores."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


async def _load_orders(conn: BaseDBAsyncClient, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], _Stored]:
    """Stored orders (with items and invoice number) for ``(company_id, ref)`` keys, locked for update
    (PostgreSQL; SQLite serialises writers anyway)."""
    by_company: dict[int, list[str]] = {}
    for company_id, ref in keys:
        by_company.setdefault(company_id, []).append(ref)
    rows: list[Any] = []
    for company_id in sorted(by_company):  # one lock order for every writer (no deadlocks between batches)
        for chunk in _chunks(sorted(set(by_company[company_id]))):
            q = _Sql(conn)
            sql = ("SELECT id, company_id, external_ref, invoice_id, source_updated_at, status, on_hold, error, "
                   f'dispatched_at, ship_to FROM "order" WHERE company_id = {q(company_id)} '
                   f"AND external_ref {q.any_of(chunk, 'varchar')} ORDER BY id" + (" FOR UPDATE" if q.postgres else ""))
            rows += (await conn.execute_query(sql, q.params))[1]
    items: dict[int, list[ItemInput]] = {}
    for chunk in _chunks([row[0] for row in rows]):
        q = _Sql(conn)
        sql = (f"SELECT order_id, sku, quantity, description FROM order_item WHERE order_id {q.any_of(chunk, 'int')} "
               "ORDER BY order_id, position, id")
        for order_id, sku, quantity, description in (await conn.execute_query(sql, q.params))[1]:
            items.setdefault(order_id, []).append(ItemInput(sku, quantity, description))
    invoice_ids = sorted({row[3] for row in rows if row[3] is not None})
    numbers: dict[int, str] = {}
    for chunk in _chunks(invoice_ids):
        numbers.update(await Invoice.filter(id__in=chunk).values_list("id", "display_number"))  # type: ignore[arg-type]
    decode = Order._meta.fields_map["ship_to"].to_python_value  # the field's own JSON decoding
    return {
        (company_id, ref): _Stored(
            id=order_id, company_id=company_id, source_updated_at=_instant(stamp), invoice_id=invoice_id,
            values={"status": OrderStatus(status), "on_hold": bool(on_hold), "error": error,
                    "dispatched_at": _instant(dispatched_at), "ship_to": decode(ship_to)},
            items=tuple(items.get(order_id, ())), invoice_number=numbers.get(invoice_id),  # type: ignore[arg-type]
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
    per_statement = max(1, min(_CHUNK, 30_000 // len(columns)))  # asyncpg allows 32,767 parameters
    quoted = ",".join(f'"{c}"' for c in columns)
    tail = " RETURNING " + ",".join(f'"{c}"' for c in returning) if returning else ""
    out: list[dict[str, Any]] = []
    for chunk in _chunks(rows, per_statement):
        q = _Sql(conn)
        groups = ",".join("(" + ",".join(q(value) for value in row) + ")" for row in chunk)
        sql = f'INSERT INTO "{table}" ({quoted}) VALUES {groups}{tail}'
        if returning:
            out += await conn.execute_query_dict(sql, q.params)
        else:
            await conn.execute_query(sql, q.params)
    return out


_ITEM_COLUMNS = ("order_id", "position", "sku", "quantity", "description")
_WRITTEN = ("company_id", "status", "on_hold", "error", "dispatched_at", "ship_to", "source_updated_at", "updated_at")


def _db_values(p: _Plan, now: datetime) -> tuple[Any, ...]:
    """The ``_WRITTEN`` columns of a planned order, as database values."""
    o = p.order
    stored_stamp = p.stored.source_updated_at if p.stored else None
    stamp = max(filter(None, (o.updated_at, stored_stamp)), default=None)  # never moves backwards
    ship_to = Order._meta.fields_map["ship_to"].to_db_value(o.ship_to, None)  # the field's own JSON encoding
    return (p.company_id, o.status.value, o.on_hold, o.error, o.dispatched_at, ship_to, stamp, now)


async def _write_orders(
    conn: BaseDBAsyncClient, plans: Sequence[_Plan], progress: Callable[[int, int], None] | None
) -> dict[int, int]:
    """Insert new orders, update changed ones, replace changed item lists; return ``{index: new id}``."""
    new = [p for p in plans if p.result is UpsertResult.CREATED]
    updates = [p for p in plans if p.write_row and p.stored is not None]
    total, done = len(new) + len(updates), 0
    now = datetime.now(UTC)
    ids: dict[int, int] = {}
    for chunk in _chunks(new):
        index_of = {(p.company_id, p.order.ref): p.index for p in chunk}
        rows = [(*_db_values(p, now), p.order.ref, now) for p in chunk]
        for row in await _insert_rows(conn, "order", (*_WRITTEN, "external_ref", "created_at"), rows,
                                      returning=("id", "company_id", "external_ref")):
            ids[index_of[(row["company_id"], row["external_ref"])]] = row["id"]
        done += len(chunk)
        if progress:
            progress(done, total)
    q = _Sql(conn)
    assignments = ", ".join(f"{column} = {q(None)}" for column in _WRITTEN)
    update_sql = f'UPDATE "order" SET {assignments} WHERE id = {q(None)}'
    for chunk in _chunks(updates):
        await conn.execute_many(update_sql, [[*_db_values(p, now), p.stored.id] for p in chunk])  # type: ignore[union-attr]
        done += len(chunk)
        if progress:
            progress(done, total)
    for chunk in _chunks([p.stored.id for p in plans if p.write_items and p.stored is not None]):
        q = _Sql(conn)
        await conn.execute_query(f"DELETE FROM order_item WHERE order_id {q.any_of(chunk, 'int')}", q.params)
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


def parse_iso_datetime(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not an ISO 8601 date-time such as 2026-11-20T14:03:00Z") from None
    if moment.tzinfo is None:
        raise InvalidInput(field, "must include a time zone offset, e.g. Z for UTC")
    return moment.astimezone(UTC)


