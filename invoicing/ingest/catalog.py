"""Products and their prices (default and per retailer): validated, idempotent, in bulk.

Every function validates all of its input before writing anything and writes in
one transaction, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.billing.limits import MAX_UNIT_PRICE, check_unit_price
from invoicing.billing.money import parse_amount, parse_tax_rate
from invoicing.errors import InvalidInput
from invoicing.ingest.batches import CHUNK, UpsertResult, chunks
from models import (
    AuditEntry,
    Company,
    Price,
    Product,
    Tenant,
)

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


def short_names(names: Iterable[str | None]) -> list[str]:
    """``names`` as stored short names (trimmed, lower case), sorted, once each; a name no company
    can have (longer than the column) is left out, so it matches nothing instead of failing the query."""
    return sorted(n for n in {name.strip().lower() for name in names if name} if validation.storable(n, 40))


async def retailers_of(tenant: Tenant, names: Iterable[str | None] | None = None) -> dict[str, Company]:
    """The tenant's companies by short name (all of them when ``names`` is None)."""
    query = Company.filter(tenant_id=tenant.id)
    if names is not None:
        query = query.filter(short_name__in=short_names(names))
    return {c.short_name: c for c in await query}


def clean_price(tenant: Tenant, price: PriceInput, retailers: Mapping[str, Company], field: str = "") -> CleanPrice:
    """Validate one price row; ``field`` prefixes error names (``prices[0].`` → ``prices[0].cost_price``).

    Cost price and shipping are bounded together (``limits.check_unit_price``): a line of
    ``MAX_QUANTITY`` units at this price must fit an invoice line.

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
    cost_price = parse_amount(price.cost_price, f"{field}cost_price", at_most=MAX_UNIT_PRICE)
    shipping = parse_amount(price.shipping, f"{field}shipping", at_most=MAX_UNIT_PRICE)
    check_unit_price(cost_price, shipping, cost_field=f"{field}cost_price", shipping_field=f"{field}shipping")
    return CleanPrice(
        retailer_id=company.id if company else None,
        retailer=company.short_name if company else None,
        currency=implied,
        cost_price=cost_price,
        shipping=shipping,
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
    for chunk in chunks(skus):
        for row in await Product.filter(tenant_id=tenant.id, sku__in=chunk).values("id", "sku", "name"):
            stored[row["sku"]] = (row["id"], row["name"])
    new = [sku for sku in skus if sku not in stored]
    await Product.bulk_create([Product(tenant_id=tenant.id, sku=sku, name=clean[sku][0]) for sku in new],
                              batch_size=CHUNK)
    for chunk in chunks(new):
        for row in await Product.filter(tenant_id=tenant.id, sku__in=chunk).values("id", "sku", "name"):
            stored[row["sku"]] = (row["id"], row["name"])
    renamed = [Product(id=stored[sku][0], name=clean[sku][0]) for sku in skus
               if sku not in new and stored[sku][1] != clean[sku][0]]
    if renamed:
        await Product.bulk_update(renamed, fields=["name"], batch_size=CHUNK)
    product_ids = [stored[sku][0] for sku in skus]
    existing: dict[tuple[int, int | None], dict[str, Any]] = {}
    for chunk in chunks(product_ids):
        for stored_row in await Price.filter(product_id__in=chunk).values(
                "id", "product_id", "retailer_id", *_PRICE_FIELDS):
            existing[(stored_row["product_id"], stored_row["retailer_id"])] = stored_row
    created: list[Price] = []
    changed: list[Price] = []
    audits: list[AuditEntry] = []
    unchanged = 0
    for sku in skus:
        product_id = stored[sku][0]
        for price in clean[sku][1]:
            values = {k: getattr(price, k) for k in _PRICE_FIELDS}
            current = existing.get((product_id, price.retailer_id))
            if current is None:
                created.append(Price(product_id=product_id, retailer_id=price.retailer_id, **values))
            elif all(current[k] == v for k, v in values.items()):  # numeric compare: 5.0000 == 5.00
                unchanged += 1
            else:
                changed.append(Price(id=current["id"], **values))
                audits.append(audit.entry(
                    tenant.id, actor=actor, action="price.set",
                    target=f"price:{sku}:{price.retailer or 'default'}",
                    old={k: str(current[k]) for k in _PRICE_FIELDS}, new={k: str(v) for k, v in values.items()},
                ))
    await Price.bulk_create(created, batch_size=CHUNK)
    if changed:
        await Price.bulk_update(changed, fields=[*_PRICE_FIELDS, "updated_at"], batch_size=CHUNK)
    await AuditEntry.bulk_create(audits, batch_size=CHUNK)
    return CatalogResult(products_created=len(new), products_renamed=len(renamed), prices_created=len(created),
                         prices_updated=len(changed), prices_unchanged=unchanged)
