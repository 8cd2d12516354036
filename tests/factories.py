"""Builders for realistic test data, written through the same setup functions ops use."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count

from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.ingest.order_sync import ItemInput, upsert_order
from invoicing.parties.companies import create_company
from invoicing.parties.tenants import create_tenant
from models import Company, Integration, IntegrationKind, Tenant

SELLER = {
    "legal_name": "Inkwell Print & Ship Ltd",
    "address_line1": "Unit 4, Riverside Works",
    "city": "Leeds",
    "postcode": "LS10 1AB",
    "country": "GB",
    "vat_number": "GB980780684",
    "company_number": "08123456",
    "email": "accounts@inkwell.example",
}

BUYER = {
    "legal_name": "Acme Gifts Ltd",
    "address_line1": "1 High Street",
    "city": "Bristol",
    "postcode": "BS1 4DJ",
    "email": "ap@acme.example",
}

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
_refs = count(1)


async def tenant(name: str = "inkwell", *, plan: str = "oms", complete: bool = True, team: str | None = None) -> Tenant:
    t = await create_tenant(name, plan=plan, currency="GBP", slack_team_id=team)
    if complete:
        t.update_from_dict(SELLER)
        await t.save()
    return t


async def company(
    t: Tenant, short: str = "acme", *, country: str = "GB", currency: str = "GBP", complete: bool = True,
    timezone: str = "Europe/London",
) -> Company:
    accounting = {**BUYER, "legal_name": f"{short.title()} Ltd"} if complete else {}
    if country == "US" and complete:
        accounting.update(region="NY", postcode="10001", city="New York")
    return await create_company(t, short, name=f"{short.title()} Ltd", country=country, currency=currency,
                                timezone=timezone, accounting=accounting)


async def price(t: Tenant, sku: str, cost: str, *, shipping: str = "0", tax: str = "20", retailer: str | None = None,
                name: str | None = None) -> None:
    await set_product(t, sku, name=name or f"Product {sku}",
                      prices=[PriceInput(retailer=retailer, cost_price=cost, shipping=shipping, tax_rate=tax)])


async def order(
    c: Company, *, sku: str = "MUG", quantity: int = 1, status: str = "dispatched",
    dispatched_at: datetime | None = None, on_hold: bool = False, error: str | None = None, ref: str | None = None,
    items: list[ItemInput] | None = None,
):
    if status == "dispatched" and dispatched_at is None:
        dispatched_at = T0 - timedelta(days=1)
    return await upsert_order(
        c, ref or f"ORD-{next(_refs):05d}", items=items or [ItemInput(sku, quantity)], status=status,
        dispatched_at=dispatched_at, on_hold=on_hold, error=error,
    )


async def emailer(c: Company, **values) -> Integration:
    """Set PDF Emailer columns directly (``bcc=`` goes into its settings)."""
    integration = await emailer_row(c)
    if "bcc" in values:
        integration.settings = {**integration.settings, "bcc": values.pop("bcc")}
    integration.update_from_dict(values)
    await integration.save()
    return integration


async def emailer_row(c: Company) -> Integration:
    """The company's PDF Emailer integration row."""
    return await Integration.get(company_id=c.id, kind=IntegrationKind.PDF_EMAILER)


async def fx_rate(tenant: Tenant, base: str, quote: str = "GBP", rate: str = "0.85", day: date | None = None) -> None:
    """An ops-set exchange rate (default: on ``T0``'s day), so a run in a foreign currency can restate its VAT."""
    from invoicing.billing.fx import set_rate
    from models.fx import FxSource

    await set_rate(tenant, base, quote, rate, day or T0.date(), source=FxSource.OPS, actor="test")
