"""The PDF Emailer integration of one company (the product article's fields)."""

from tortoise import fields
from tortoise.models import Model


class EmailerIntegration(Model):
    """Per-company invoicing settings and scheduler state.

    Every company has exactly one row (created with the company, disabled), so a
    run can always lock it: the row is the per-company mutex of invoice runs.
    """

    id = fields.IntField(primary_key=True)
    company = fields.OneToOneField("models.Company", related_name="emailer", on_delete=fields.CASCADE)
    enabled = fields.BooleanField(default=False)
    include_errors = fields.BooleanField(default=False)
    # No run before it; orders dispatched before it are never picked up (UTC).
    starting_from = fields.DatetimeField(null=True)
    # Extra recipients, envelope only (list of addresses).
    bcc = fields.JSONField(default=list)
    # ``hourly|daily|weekly|monthly`` or a 5-field cron, in the company time zone.
    schedule = fields.CharField(max_length=100, default="weekly")
    next_run_at = fields.DatetimeField(null=True, db_index=True)
    # Cutoff of the last run that completed; the next invoice period starts here.
    last_cutoff_at = fields.DatetimeField(null=True)
    # Scheduler lease (multi-replica): who holds the row and until when.
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "emailer_integration"
