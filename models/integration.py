"""An accounting integration of one company: the PDF Emailer today, the XML export and Xero next.

One row per (company, kind). The columns every kind shares are the scheduler's
(``enabled``, ``schedule``, ``next_run_at``, lease) and the order-selection rules of
the product article (``starting_from``, ``include_errors``); what only one kind
needs lives in ``settings`` (JSON, shaped and validated by that kind's package in
``invoicing.integrations``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company


class IntegrationKind(StrEnum):
    PDF_EMAILER = "pdf_emailer"
    XML_EXPORT = "xml_export"
    # Xero: not scheduled (``next_run_at`` stays empty); every document issued for the company is pushed.
    XERO = "xero"


class Integration(Model):
    """Settings and scheduler state of one integration of one company.

    Every company has one row per kind (created with the company, disabled), so a
    run can always lock it: the row is the mutex of that kind's runs of the company.
    """

    id = fields.IntField(primary_key=True)
    company: fields.ForeignKeyRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="integrations", on_delete=fields.CASCADE
    )
    company_id: int
    kind = fields.CharEnumField(IntegrationKind, max_length=20)
    enabled = fields.BooleanField(default=False)
    include_errors = fields.BooleanField(default=False)
    # No run before it; orders dispatched before it are never picked up (UTC).
    starting_from = fields.DatetimeField(null=True)
    # ``hourly|daily|weekly|monthly`` or a 5-field cron, in the company time zone.
    schedule = fields.CharField(max_length=100, default="weekly")
    next_run_at = fields.DatetimeField(null=True, db_index=True)
    # Cutoff of the last run that completed; the next period starts here.
    last_cutoff_at = fields.DatetimeField(null=True)
    # Scheduler lease (multi-replica): who holds the row and until when.
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    # Approval mode: a scheduled run prepares the invoice and waits for an admin's decision
    # (``approval_timeout`` seconds, then ``approval_on_timeout``: ``issue`` or ``skip``).
    # (``db_default``: the columns were added to tables that already had rows.)
    approval = fields.BooleanField(default=False, db_default=False)
    approval_timeout = fields.IntField(default=86400, db_default=86400)
    approval_on_timeout = fields.CharField(max_length=10, default="skip", db_default="skip")
    # The kind's own settings (PDF Emailer: the BCC list).
    settings: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "integration"
        unique_together = (("company", "kind"),)
        # `/invoicing schedule`'s page: the enabled integrations of a kind in next-run order, read a page at a time
        # even when every company is due in the same minute (a tie on next_run_at alone sorted all of them).
        indexes = (("kind", "enabled", "next_run_at", "id"),)
