"""Issued credit notes: immutable snapshots that credit (part of) one issued invoice.

A credit note is how an issued invoice is corrected (DESIGN rule 9): the invoice never
changes; the credit note states what of it is cancelled. Amounts are **positive** (it is
a credit note, not a negative invoice) and in the invoice's currency. Seller and buyer are
copied from the *original invoice's* snapshot, lines from its lines (with their VAT rate
and category), so the pair reads consistently whatever changed since.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields

from models.invoice import _Immutable

if TYPE_CHECKING:
    from models.company import Company
    from models.invoice import Invoice, InvoiceLine
    from models.tenant import Tenant


class CreditNote(_Immutable):
    """``number`` is the value of the tenant's credit-note sequence, ``display_number`` adds its prefix.

    ``tax_breakdown`` is a list of ``{"rate", "category", "net", "tax"}`` with decimal strings.
    ``request_key`` names the request that issued it (one confirm button of one message), so the
    same button pressed twice issues one credit note; it is unique when set.
    """

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="credit_notes", on_delete=fields.RESTRICT
    )
    tenant_id: int
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="credit_notes", on_delete=fields.RESTRICT
    )
    company_id: int
    invoice: fields.ForeignKeyRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="credit_notes", on_delete=fields.RESTRICT
    )
    invoice_id: int
    number = fields.IntField()
    display_number = fields.CharField(max_length=40)
    issued_at = fields.DatetimeField()
    currency = fields.CharField(max_length=3)
    timezone = fields.CharField(max_length=64)
    seller: fields.JSONField[dict[str, Any]] = fields.JSONField()
    buyer: fields.JSONField[dict[str, Any]] = fields.JSONField()
    net_total = fields.DecimalField(max_digits=16, decimal_places=4)
    tax_total = fields.DecimalField(max_digits=16, decimal_places=4)
    gross_total = fields.DecimalField(max_digits=16, decimal_places=4)
    tax_breakdown: fields.JSONField[list[dict[str, str]]] = fields.JSONField()
    reason = fields.CharField(max_length=500)
    #: True when the credited orders were made eligible for invoicing again.
    reinvoice = fields.BooleanField(default=False)
    actor = fields.CharField(max_length=100, default="")
    request_key = fields.CharField(max_length=120, null=True, unique=True)

    lines: fields.ReverseRelation[CreditNoteLine]

    class Meta:
        table = "credit_note"
        unique_together = (("tenant", "number"),)
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("tenant_id", "display_number"), ("company_id",), ("invoice_id",))
        ordering = ["number"]


class CreditNoteLine(_Immutable):
    """One credited (part of an) invoice line: ``quantity`` units of it, for ``net``.

    ``invoice_position`` is the credited line's position on the invoice as printed (1-based).
    """

    id = fields.IntField(primary_key=True)
    credit_note: fields.ForeignKeyRelation[CreditNote] = fields.ForeignKeyField(
        "models.CreditNote", related_name="lines", on_delete=fields.RESTRICT, db_index=True
    )
    credit_note_id: int
    invoice_line: fields.ForeignKeyRelation[InvoiceLine] = fields.ForeignKeyField(
        "models.InvoiceLine", related_name="credit_lines", on_delete=fields.RESTRICT, db_index=True
    )
    invoice_line_id: int
    position = fields.IntField()
    invoice_position = fields.IntField()
    order_id_ref = fields.IntField()
    order_ref = fields.CharField(max_length=64)
    dispatched_at = fields.DatetimeField()
    sku = fields.CharField(max_length=64)
    description = fields.CharField(max_length=300)
    quantity = fields.IntField()
    unit_cost = fields.DecimalField(max_digits=14, decimal_places=4)
    unit_shipping = fields.DecimalField(max_digits=14, decimal_places=4)
    tax_rate = fields.DecimalField(max_digits=7, decimal_places=3)
    vat_category = fields.CharField(max_length=2, default="S")
    net = fields.DecimalField(max_digits=16, decimal_places=4)

    class Meta:
        table = "credit_note_line"
        ordering = ["position"]
