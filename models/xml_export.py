"""The XML export: one row per file (and its upload outbox state), and the ledger of what each file carries.

``XmlExport`` is written in the transaction of the run that takes its ``sequence``
(gapless per company: max + 1 under the integration row lock) together with its
``XmlExportItem`` rows, so "which orders went into which file" and "the file exists"
commit together. The file's bytes are kept (``body``, gzip with mtime 0: the same file
always has the same bytes), so a re-upload after a crash sends exactly what the first
attempt sent, under the same name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.credit_note import CreditNote
    from models.integration import Integration
    from models.invoice import Invoice
    from models.order import Order
    from models.tenant import Tenant


class XmlContent(StrEnum):
    ORDERS = "orders"
    INVOICES = "invoices"


class XmlExportStatus(StrEnum):
    PENDING = "pending"
    # Claimed by an upload worker; ``next_attempt_at`` is its lease (crash window: uploaded again after it).
    SENDING = "sending"
    SENT = "sent"
    # Given up (bounded retries) or blocked by a permanent error; re-queued when the settings change.
    FAILED = "failed"


class XmlExport(Model):
    """One exported file of one company, and its place in the upload outbox.

    Files of one company are uploaded in ``sequence`` order: a file is never uploaded
    while an earlier one of the same company is not ``sent``.
    """

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="xml_exports", on_delete=fields.RESTRICT
    )
    tenant_id: int
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="xml_exports", on_delete=fields.RESTRICT
    )
    company_id: int
    integration: fields.ForeignKeyRelation[Integration] = fields.ForeignKeyField(
        "models.Integration", related_name="xml_exports", on_delete=fields.RESTRICT
    )
    integration_id: int
    sequence = fields.IntField()
    file_name = fields.CharField(max_length=220)
    content = fields.CharEnumField(XmlContent, max_length=10, default=XmlContent.ORDERS)
    status = fields.CharEnumField(XmlExportStatus, max_length=10, default=XmlExportStatus.PENDING, db_index=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)
    last_error = fields.TextField(default="")
    # ``destinations.UploadError.kind`` of the last failure ("" = none).
    error_kind = fields.CharField(max_length=20, default="")
    # Where the file arrived ("sftp://host:22/path/name.xml" or "file:///dir/name.xml"), once sent.
    location = fields.CharField(max_length=600, default="")
    # Size and SHA-256 of the XML file itself (not of the gzip body).
    size = fields.BigIntField(default=0)
    sha256 = fields.CharField(max_length=64)
    body = fields.BinaryField()
    order_count = fields.IntField(default=0)
    # ``[{"ref": …, "reason": …}]`` (capped) and totals per reason.
    skipped: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    cutoff = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    # ``invoices`` content: the invoice or credit note the file carries.
    invoice: fields.ForeignKeyNullableRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="xml_exports", null=True, on_delete=fields.RESTRICT
    )
    invoice_id: int | None
    credit_note: fields.ForeignKeyNullableRelation[CreditNote] = fields.ForeignKeyField(
        "models.CreditNote", related_name="xml_exports", null=True, on_delete=fields.RESTRICT
    )
    credit_note_id: int | None

    class Meta:
        table = "xml_export"
        unique_together = (("company", "sequence"),)
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("credit_note_id",), ("integration_id",), ("invoice_id",), ("tenant_id",))


class XmlExportItem(Model):
    """The ledger: order ``order`` went into ``export`` as ``revision``, with this record's fingerprint.

    ``fingerprint`` is the SHA-256 of the order's exported record; an order changed after
    its export (and not yet invoiced) has another fingerprint and goes again as the next
    revision.
    """

    id = fields.IntField(primary_key=True)
    export: fields.ForeignKeyRelation[XmlExport] = fields.ForeignKeyField(
        "models.XmlExport", related_name="items", on_delete=fields.RESTRICT
    )
    export_id: int
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="xml_exports", on_delete=fields.RESTRICT, db_index=False
    )
    order_id: int
    revision = fields.IntField(default=0)
    fingerprint = fields.CharField(max_length=64)

    class Meta:
        table = "xml_export_item"
        unique_together = (("export", "order"),)
        indexes = (("order_id", "id"),)
