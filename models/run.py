"""A record of every invoice run (manual or scheduled), including refused and empty ones."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.integration import Integration
    from models.invoice import Invoice
    from models.tenant import Tenant


class RunTrigger(StrEnum):
    MANUAL = "manual"
    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"


class RunOutcome(StrEnum):
    INVOICED = "invoiced"
    NO_ORDERS = "no_orders"
    REFUSED = "refused"
    FAILED = "failed"
    # Approval mode: an admin (or the timeout policy) skipped the slot; its orders wait for the next run.
    SKIPPED = "skipped"
    # Approval mode: the slot prepared an invoice for approval (a report only, never a run record).
    PREPARED = "prepared"
    # XML export: a file with the run's orders (or documents) was written and queued for upload.
    EXPORTED = "exported"


class InvoiceRun(Model):
    """Run record of the PDF Emailer: one per run, whatever its outcome."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="runs", on_delete=fields.RESTRICT
    )
    tenant_id: int
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="runs", on_delete=fields.RESTRICT
    )
    company_id: int
    # The integration that ran (null only for runs recorded before integrations existed).
    integration: fields.ForeignKeyNullableRelation[Integration] = fields.ForeignKeyField(
        "models.Integration", related_name="invoice_runs", null=True, on_delete=fields.RESTRICT
    )
    integration_id: int | None
    trigger = fields.CharEnumField(RunTrigger, max_length=10)
    actor = fields.CharField(max_length=100, default="")
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    # Orders dispatched before this instant are in scope (UTC).
    cutoff = fields.DatetimeField()
    outcome = fields.CharEnumField(RunOutcome, max_length=10)
    orders_invoiced = fields.IntField(default=0)
    orders_skipped = fields.IntField(default=0)
    # ``[{"ref": "...", "reason": "..."}]`` (capped; see ``skipped_by_reason`` for totals).
    skipped: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    skipped_by_reason: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    message = fields.TextField(default="")
    invoice: fields.OneToOneNullableRelation[Invoice] = fields.OneToOneField(
        "models.Invoice", related_name="run", null=True, on_delete=fields.RESTRICT
    )
    invoice_id: int | None

    class Meta:
        table = "invoice_run"
        ordering = ["-id"]
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("company_id",), ("integration_id",), ("tenant_id",))
