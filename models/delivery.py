"""The outbox: one row per e-mail that must leave for an invoice."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.credit_note import CreditNote
    from models.invoice import Invoice
    from models.tenant import Tenant


class DeliveryKind(StrEnum):
    INITIAL = "initial"
    RESEND = "resend"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    # Handed to the SMTP server; outcome not yet recorded (crash window).
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Delivery(Model):
    """Written in the transaction of the run and sent only after it commits.

    ``message_id`` is stable per invoice (and per resend) so a retry after an
    unknown outcome can be recognised by the receiving side.

    A credit note's e-mail is a delivery with ``credit_note`` set; ``invoice`` is then the
    invoice it credits (so every delivery still names an invoice), and the e-mail carries
    the credit note's PDF.
    """

    id = fields.IntField(primary_key=True)
    # The invoice's tenant, copied so that ``/invoicing deliveries`` reads one tenant's open e-mails as one range of
    # the partial index ``delivery_open`` (migration 0021) without joining invoice first: the join's plan depended on
    # statistics, which a table growing from empty during a burst does not have. No index of its own (tenants are
    # never deleted); ``delivery_open`` is the index it leads.
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="deliveries", on_delete=fields.RESTRICT, db_index=False
    )
    tenant_id: int
    invoice: fields.ForeignKeyRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="deliveries", on_delete=fields.RESTRICT
    )
    invoice_id: int
    credit_note: fields.ForeignKeyNullableRelation[CreditNote] = fields.ForeignKeyField(
        "models.CreditNote", related_name="deliveries", null=True, on_delete=fields.RESTRICT
    )
    credit_note_id: int | None
    kind = fields.CharEnumField(DeliveryKind, default=DeliveryKind.INITIAL, max_length=10)
    status = fields.CharEnumField(DeliveryStatus, default=DeliveryStatus.PENDING, max_length=10)
    message_id = fields.CharField(max_length=200)
    to_addr = fields.CharField(max_length=254)
    bcc: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)
    last_error = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    # Names the request that queued a resend ("resend-click:<channel>:<ts>", "retry:<delivery id>"),
    # so the same button pressed twice (two admins at once, a retried request) queues one e-mail.
    dedupe_key = fields.CharField(max_length=120, null=True, unique=True)

    class Meta:
        table = "delivery"
        # The workers' due-selection (status = pending, attempt time passed) reads only the queued rows
        # through it, however many sent rows the table keeps (benchmarks/queue_history.py).
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("status", "next_attempt_at"), ("invoice_id",), ("credit_note_id",))
