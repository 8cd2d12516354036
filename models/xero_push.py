"""What goes to Xero: one push per document (the Xero outbox) and the contacts already written there.

A ``XeroPush`` row is written in the transaction that issues its document (an invoice, a credit note),
so the two commit or roll back together; ``invoicing.integrations.xero.pushes`` sends the rows after
commit. ``dedupe_key`` names the document and what it becomes in Xero (``invoice:<id>``,
``credit:<id>``, ``po:<invoice id>``), so a document is queued at most once per target. The request
(``payload``) and its ``batch_key`` are fixed when the push is first claimed and kept until Xero
answers, so a push sent again after a crash is the same request under the same ``Idempotency-Key``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.credit_note import CreditNote
    from models.invoice import Invoice
    from models.tenant import Tenant
    from models.xero import XeroConnection


class XeroPushKind(StrEnum):
    # An ACCREC invoice in the tenant's organisation.
    INVOICE = "invoice"
    # An ACCRECCREDIT credit note in the tenant's organisation.
    CREDIT_NOTE = "credit_note"
    # The matching purchase order in the dropship company's own organisation.
    PURCHASE_ORDER = "purchase_order"


class XeroPushStatus(StrEnum):
    PENDING = "pending"
    # Claimed by a worker until ``lease_until`` (after it the push is claimed again, same request).
    SENDING = "sending"
    DONE = "done"
    # Xero refused it (validation): waits for ops (`xero <co> retry`, or a settings change).
    FAILED = "failed"


class XeroPush(Model):
    """One document to create in Xero, with what Xero answered."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="xero_pushes", on_delete=fields.RESTRICT
    )
    tenant_id: int
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="xero_pushes", on_delete=fields.RESTRICT
    )
    company_id: int
    kind = fields.CharEnumField(XeroPushKind, max_length=20)
    invoice: fields.ForeignKeyNullableRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="xero_pushes", null=True, on_delete=fields.RESTRICT
    )
    invoice_id: int | None
    credit_note: fields.ForeignKeyNullableRelation[CreditNote] = fields.ForeignKeyField(
        "models.CreditNote", related_name="xero_pushes", null=True, on_delete=fields.RESTRICT
    )
    credit_note_id: int | None
    dedupe_key = fields.CharField(max_length=120, unique=True)
    # Our document number as Xero shows it (InvoiceNumber / CreditNoteNumber / the PO's Reference).
    number = fields.CharField(max_length=40)
    status = fields.CharEnumField(XeroPushStatus, default=XeroPushStatus.PENDING, max_length=10, db_index=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    # The connection the request was built for, the request element and the batch it went in.
    connection: fields.ForeignKeyNullableRelation[XeroConnection] = fields.ForeignKeyField(
        "models.XeroConnection", related_name="pushes", null=True, on_delete=fields.RESTRICT
    )
    connection_id: int | None
    # The request element as the exact JSON text sent (so a resend is byte-identical; "" until built).
    payload = fields.TextField(default="")
    batch_key = fields.CharField(max_length=64, null=True)
    # What Xero answered: its id and totals; ``mismatch`` says how they differ from ours (empty: equal).
    xero_id = fields.CharField(max_length=64, default="")
    xero_totals: fields.JSONField[dict[str, str] | None] = fields.JSONField(null=True)
    mismatch = fields.CharField(max_length=500, default="")
    last_error = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "xero_push"
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("company_id",), ("connection_id",), ("credit_note_id",), ("invoice_id",), ("tenant_id",))


class XeroContact(Model):
    """A contact we wrote to one organisation: its ``ContactNumber`` (our short name), Xero's id, and the
    fingerprint of what we sent, so a contact is written again only when its details changed."""

    id = fields.IntField(primary_key=True)
    connection: fields.ForeignKeyRelation[XeroConnection] = fields.ForeignKeyField(
        "models.XeroConnection", related_name="contacts", on_delete=fields.CASCADE
    )
    connection_id: int
    # The tenant's organisation: Xero organisation id too, so a reconnect to another organisation starts over.
    xero_tenant_id = fields.CharField(max_length=64)
    contact_number = fields.CharField(max_length=50)
    contact_id = fields.CharField(max_length=64)
    fingerprint = fields.CharField(max_length=64)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "xero_contact"
        unique_together = (("connection", "xero_tenant_id", "contact_number"),)
