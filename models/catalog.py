"""Products and their prices: one default price plus optional per-retailer overrides."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.tenant import Tenant


class Product(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="products", on_delete=fields.RESTRICT
    )
    tenant_id: int
    sku = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)

    class Meta:
        table = "product"
        unique_together = (("tenant", "sku"),)


class Price(Model):
    """What the fulfiller charges a retailer per unit of a product.

    ``retailer`` null is the default price, in the currency of the tenant; a retailer
    price is in the currency of that retailer. Cost and shipping are per unit, tax rate
    in percent; ``vat_category`` overrides the derived VAT category. Amounts keep 4
    decimals; rounding to the minor unit of the currency happens once per invoice line
    (``invoicing.billing.money``).
    """

    id = fields.IntField(primary_key=True)
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "models.Product", related_name="prices", on_delete=fields.CASCADE
    )
    product_id: int
    retailer: fields.ForeignKeyNullableRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="prices", null=True, on_delete=fields.CASCADE
    )
    retailer_id: int | None
    currency = fields.CharField(max_length=3)
    cost_price = fields.DecimalField(max_digits=14, decimal_places=4)
    shipping = fields.DecimalField(max_digits=14, decimal_places=4, default=0)
    tax_rate = fields.DecimalField(max_digits=7, decimal_places=3, default=0)
    # EN 16931 VAT category (S, Z, E, AE, K, G, O) set per price; "" derives it per invoice
    # from seller/buyer country and the buyer's VAT number (``invoicing.billing.vat_rules``).
    vat_category = fields.CharField(max_length=2, default="", db_default="")
    # VATEX code of an exempt (E) price, e.g. ``VATEX-EU-132``; "" for every other category.
    vat_exemption_code = fields.CharField(max_length=30, default="", db_default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "price"
        unique_together = (("product", "retailer"),)
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("retailer_id",),)
