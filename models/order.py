"""Orders fed from the OMS, with their items and ship-to address."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.invoice import Invoice


class OrderStatus(StrEnum):
    RECEIVED = "received"
    IN_PRODUCTION = "in_production"
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


class Order(Model):
    """One retailer order. ``invoice`` is set exactly once, by the run that bills it."""

    id = fields.IntField(primary_key=True)
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="orders", on_delete=fields.RESTRICT
    )
    company_id: int
    external_ref = fields.CharField(max_length=64)
    status = fields.CharEnumField(OrderStatus, default=OrderStatus.RECEIVED, max_length=16)
    on_hold = fields.BooleanField(default=False)
    error = fields.TextField(null=True)
    dispatched_at = fields.DatetimeField(null=True)
    # {"name", "line1", "line2", "city", "region", "postcode", "country"}
    ship_to: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    invoice: fields.ForeignKeyNullableRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="orders", null=True, on_delete=fields.RESTRICT
    )
    invoice_id: int | None
    # When the source system last changed the order (feed ``updated_at``); an update
    # carrying an older value is out of order and is not applied.
    source_updated_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    items: fields.ReverseRelation[OrderItem]

    class Meta:
        table = "order"
        unique_together = (("company", "external_ref"),)
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("company_id", "invoice_id", "status", "dispatched_at"), ("invoice_id",))


class OrderItem(Model):
    id = fields.IntField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="items", on_delete=fields.CASCADE, db_index=True
    )
    order_id: int
    position = fields.IntField(default=0)
    sku = fields.CharField(max_length=64)
    quantity = fields.IntField()
    description = fields.CharField(max_length=300, default="")

    class Meta:
        table = "order_item"
