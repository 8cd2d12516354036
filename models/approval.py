"""A scheduled run waiting for an admin's decision (approval mode of the PDF Emailer).

With approval on, a scheduled slot does not issue: it *prepares* the invoice (the
lines a run with that cutoff would issue, no number taken) and stores it here with a
fingerprint of exactly what was previewed. Approving re-plans under the run's locks
and issues only when the fingerprint is unchanged. Every write to a row happens
while its integration row is locked (the integration is the mutex of its runs).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from models.run import RunTrigger

if TYPE_CHECKING:
    from models.company import Company
    from models.integration import Integration
    from models.invoice import Invoice
    from models.run import InvoiceRun
    from models.tenant import Tenant


class ApprovalState(StrEnum):
    PENDING = "pending"
    # Issued (by an admin, or by the timeout with ``on_timeout=issue``): ``run``/``invoice`` set.
    APPROVED = "approved"
    # An admin skipped it: a ``skipped`` run was recorded, the orders wait for the next run.
    SKIPPED = "skipped"
    # Nobody decided in time and ``on_timeout=skip`` applied (a ``skipped`` run was recorded).
    EXPIRED = "expired"
    # What it previewed changed (or a newer preview / another run covers it): never issued.
    SUPERSEDED = "superseded"


class OnTimeout(StrEnum):
    ISSUE = "issue"
    SKIP = "skip"


class RunApproval(Model):
    """One prepared invoice of one integration's scheduled slot, and what became of it."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="approvals", on_delete=fields.RESTRICT
    )
    tenant_id: int
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="approvals", on_delete=fields.CASCADE
    )
    company_id: int
    integration: fields.ForeignKeyRelation[Integration] = fields.ForeignKeyField(
        "models.Integration", related_name="approvals", on_delete=fields.CASCADE
    )
    integration_id: int
    # The scheduled slot that prepared it and the cutoff its lines were planned with (UTC).
    slot = fields.DatetimeField()
    cutoff = fields.DatetimeField()
    trigger = fields.CharEnumField(RunTrigger, max_length=10)
    state = fields.CharEnumField(ApprovalState, default=ApprovalState.PENDING, max_length=10, db_index=True)
    # sha256 of the planned lines: order ids, each order's updated_at, every line's amounts.
    fingerprint = fields.CharField(max_length=64)
    currency = fields.CharField(max_length=3)
    period_start = fields.DatetimeField(null=True)
    orders = fields.IntField(default=0)
    lines = fields.IntField(default=0)
    net_total = fields.DecimalField(max_digits=16, decimal_places=4)
    tax_total = fields.DecimalField(max_digits=16, decimal_places=4)
    gross_total = fields.DecimalField(max_digits=16, decimal_places=4)
    # ``[{"ref", "reason"}]`` (capped) and complete counts per reason, as in a run record.
    skipped: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    skipped_by_reason: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    # The policy in force when it was prepared (changing the setting later does not change it).
    on_timeout = fields.CharEnumField(OnTimeout, max_length=10)
    created_at = fields.DatetimeField()
    remind_at = fields.DatetimeField(null=True)
    reminded_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(db_index=True)
    decided_by = fields.CharField(max_length=100, default="")
    decided_at = fields.DatetimeField(null=True)
    # Where the preview was clicked last (set by the click; the notice row has where it was posted).
    channel_id = fields.CharField(max_length=20, default="")
    message_ts = fields.CharField(max_length=32, default="")
    # The id of the fresh preview that replaced this one, when a re-plan superseded it.
    superseded_by = fields.IntField(null=True)
    run: fields.ForeignKeyNullableRelation[InvoiceRun] = fields.ForeignKeyField(
        "models.InvoiceRun", related_name="approvals", null=True, on_delete=fields.SET_NULL
    )
    run_id: int | None
    invoice: fields.ForeignKeyNullableRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="approvals", null=True, on_delete=fields.SET_NULL
    )
    invoice_id: int | None

    class Meta:
        table = "run_approval"
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("company_id",), ("integration_id",), ("invoice_id",), ("run_id",), ("tenant_id",))
