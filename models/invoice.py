"""Issued invoices: immutable snapshots of who sold what to whom, for how much."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.tenant import Tenant


class ImmutableInvoiceError(RuntimeError):
    """Raised on any attempt to change an issued invoice or its lines."""


class _Immutable(Model):
    """Rows that may be inserted once and never updated or deleted."""

    class Meta:
        abstract = True

    async def save(self, *args: Any, **kwargs: Any) -> None:
        if self._saved_in_db:
            raise ImmutableInvoiceError(
                f"{type(self).__name__} {self.pk} is issued and cannot be changed; issue a credit note"
            )
        await super().save(*args, **kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        raise ImmutableInvoiceError(f"{type(self).__name__} {self.pk} is issued and cannot be deleted")


class Invoice(_Immutable):
    """``number`` is the value of the tenant sequence, ``display_number`` adds prefix and padding.

    Seller and buyer are JSON snapshots of the accounting details at issue time;
    amounts are in ``currency`` and already rounded (see ``invoicing.billing.money``).
    ``tax_breakdown`` is a list of ``{"rate", "net", "tax", "category", "exemption_reason",
    "exemption_code"}`` with decimal strings, one per (VAT category, rate); invoices issued
    before categories existed lack the last three keys (readers derive them).
    ``timezone`` is the seller's zone in which the document's dates are printed (the buyer's
    on invoices issued before issue 14). ``language`` is the invoice language, ``notes`` the
    legal notes printed on it (already in that language; ``None`` on older invoices), ``fx``
    the VAT restated in the seller's accounting currency (``None`` when the invoice is in it):
    ``{"currency", "rate", "rate_date", "source", "tax_bands": [{"rate", "category", "tax"}],
    "tax_total"}``.
    """

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="invoices", on_delete=fields.RESTRICT
    )
    tenant_id: int
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="invoices", on_delete=fields.RESTRICT
    )
    company_id: int
    number = fields.IntField()
    display_number = fields.CharField(max_length=40)
    issued_at = fields.DatetimeField()
    period_start = fields.DatetimeField(null=True)
    period_end = fields.DatetimeField()
    currency = fields.CharField(max_length=3)
    timezone = fields.CharField(max_length=64)
    seller: fields.JSONField[dict[str, Any]] = fields.JSONField()
    buyer: fields.JSONField[dict[str, Any]] = fields.JSONField()
    net_total = fields.DecimalField(max_digits=16, decimal_places=4)
    tax_total = fields.DecimalField(max_digits=16, decimal_places=4)
    gross_total = fields.DecimalField(max_digits=16, decimal_places=4)
    tax_breakdown: fields.JSONField[list[dict[str, str]]] = fields.JSONField()
    order_count = fields.IntField()
    payment_terms_days = fields.IntField()
    language = fields.CharField(max_length=2, default="en", db_default="en")
    notes: fields.JSONField[list[str] | None] = fields.JSONField(null=True)
    fx: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)

    lines: fields.ReverseRelation[InvoiceLine]

    class Meta:
        table = "invoice"
        unique_together = (("tenant", "number"),)
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("tenant_id", "display_number"), ("company_id",))
        ordering = ["number"]


class InvoiceLine(_Immutable):
    """One order item as billed: quantity × (unit cost + unit shipping) = net."""

    id = fields.IntField(primary_key=True)
    invoice: fields.ForeignKeyRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="lines", on_delete=fields.RESTRICT, db_index=True
    )
    invoice_id: int
    position = fields.IntField()
    order_id_ref = fields.IntField()
    order_ref = fields.CharField(max_length=64)
    dispatched_at = fields.DatetimeField()
    sku = fields.CharField(max_length=64)
    description = fields.CharField(max_length=300)
    quantity = fields.IntField()
    unit_cost = fields.DecimalField(max_digits=14, decimal_places=4)
    unit_shipping = fields.DecimalField(max_digits=14, decimal_places=4)
    tax_rate = fields.DecimalField(max_digits=7, decimal_places=3)
    net = fields.DecimalField(max_digits=16, decimal_places=4)
    # EN 16931 VAT category (BT-151); "" on lines issued before categories existed.
    vat_category = fields.CharField(max_length=2, default="", db_default="")

    class Meta:
        table = "invoice_line"
        ordering = ["position"]
