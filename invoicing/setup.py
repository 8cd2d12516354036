"""Creating and changing the things invoicing works on: tenants, companies, prices, orders.

Every function validates all of its input before writing anything and writes in
one transaction, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from typing import Any

from tortoise.transactions import in_transaction

from invoicing import validation
from invoicing.accounting import normalise_accounting, normalise_country
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.money import parse_amount, parse_tax_rate
from models import (
    AuditEntry,
    Company,
    EmailerIntegration,
    Order,
    OrderItem,
    OrderStatus,
    Plan,
    Price,
    Product,
    Tenant,
)


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


@dataclass(frozen=True)
class PriceInput:
    retailer: str | None
    cost_price: Any
    shipping: Any = "0"
    tax_rate: Any = "0"
    currency: str | None = None


async def set_product(
    tenant: Tenant, sku: str, *, name: str, prices: Sequence[PriceInput], actor: str = "cli"
) -> Product:
    """Create or update a product and upsert its prices (default: retailer None).

    A price's currency is implied (default → tenant currency, retailer → its
    currency); a stated currency that contradicts it is refused.
    """
    sku = validation.sku(sku)
    name = validation.text(name, "name")
    rows: list[tuple[Company | None, dict[str, Any]]] = []
    for index, p in enumerate(prices):
        field = f"prices[{index}]"
        company = None
        if p.retailer:
            company = await Company.get_or_none(tenant_id=tenant.id, short_name=p.retailer.strip().lower())
            if company is None:
                raise InvalidInput(f"{field}.retailer", f"no company '{p.retailer}' in {tenant.name}")
        implied = company.currency if company else tenant.currency
        if p.currency and validation.currency(p.currency, f"{field}.currency") != implied:
            who = f"company '{company.short_name}'" if company else "default prices (the seller currency)"
            raise InvalidInput(f"{field}.currency", f"{p.currency} contradicts {who}, which use {implied}")
        rows.append((company, {
            "currency": implied,
            "cost_price": parse_amount(p.cost_price, f"{field}.cost_price"),
            "shipping": parse_amount(p.shipping, f"{field}.shipping"),
            "tax_rate": parse_tax_rate(p.tax_rate, f"{field}.tax_rate"),
        }))
    async with in_transaction():
        product = await Product.get_or_none(tenant_id=tenant.id, sku=sku)
        if product is None:
            product = await Product.create(tenant_id=tenant.id, sku=sku, name=name)
        elif product.name != name:
            product.name = name
            await product.save(update_fields=["name"])
        for company, values in rows:
            retailer_id = company.id if company else None
            existing = await Price.get_or_none(product_id=product.id, retailer_id=retailer_id)
            if existing is None:
                await Price.create(product_id=product.id, retailer_id=retailer_id, **values)
            else:
                old = {k: str(getattr(existing, k)) for k in values}
                existing.update_from_dict(values)
                await existing.save()
                if old != {k: str(v) for k, v in values.items()}:
                    await AuditEntry.create(
                        tenant_id=tenant.id, actor=actor, action="price.set",
                        target=f"price:{sku}:{company.short_name if company else 'default'}",
                        old=old, new={k: str(v) for k, v in values.items()},
                    )
    return product


@dataclass(frozen=True)
class ItemInput:
    sku: str
    quantity: int
    description: str = ""


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
) -> Order:
    """Create or update an order by its reference (idempotent).

    An invoiced order's items can no longer change (``Conflict``); its status,
    hold and error flags may, as the OMS keeps reporting them.
    """
    ref = validation.text(external_ref, "ref", max_len=64)
    try:
        status_value = OrderStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in OrderStatus)
        raise InvalidInput("status", f"{status!r} is not a status; use one of {allowed}") from None
    if dispatched_at is not None and dispatched_at.tzinfo is None:
        raise InvalidInput("dispatched_at", "must include a time zone offset (ISO 8601, e.g. 2026-11-20T14:03:00Z)")
    if status_value == OrderStatus.DISPATCHED and dispatched_at is None:
        raise InvalidInput("dispatched_at", "is required when status is dispatched")
    if not items:
        raise InvalidInput("items", "an order needs at least one item")
    clean_items = []
    for index, item in enumerate(items):
        if not isinstance(item.quantity, int) or isinstance(item.quantity, bool) or not 1 <= item.quantity <= 100_000:
            raise InvalidInput(f"items[{index}].quantity", "must be a whole number between 1 and 100000")
        clean_items.append(ItemInput(validation.sku(item.sku, f"items[{index}].sku"), item.quantity,
                                     validation.text(item.description, f"items[{index}].description", max_len=300, required=False)))
    values = {
        "status": status_value,
        "dispatched_at": dispatched_at.astimezone(UTC) if dispatched_at else None,
        "on_hold": bool(on_hold),
        "error": validation.text(error, "error", max_len=2000, required=False) or None,
        "ship_to": dict(ship_to or {}),
    }
    async with in_transaction():
        order = await Order.get_or_none(company_id=company.id, external_ref=ref)
        if order is None:
            order = await Order.create(company_id=company.id, external_ref=ref, **values)
        else:
            current = [ItemInput(i.sku, i.quantity, i.description) for i in await order.items.all().order_by("position")]
            if order.invoice_id is not None and current != clean_items:
                raise Conflict(f"Order {ref} is already invoiced; its items can no longer change.")
            order.update_from_dict(values)
            await order.save()
            if current == clean_items:
                return order
            await OrderItem.filter(order_id=order.id).delete()
        await OrderItem.bulk_create(
            [OrderItem(order_id=order.id, position=i, sku=it.sku, quantity=it.quantity, description=it.description)
             for i, it in enumerate(clean_items)]
        )
    return order


def parse_iso_datetime(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not an ISO 8601 date-time such as 2026-11-20T14:03:00Z") from None
    if moment.tzinfo is None:
        raise InvalidInput(field, "must include a time zone offset, e.g. Z for UTC")
    return moment.astimezone(UTC)


