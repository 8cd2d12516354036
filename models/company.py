"""A dropship company (retailer): the buyer of the invoices issued under a tenant."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields

from models.accounting import AccountingFields

if TYPE_CHECKING:
    from models.tenant import Tenant


class Company(AccountingFields):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="companies", on_delete=fields.RESTRICT
    )
    tenant_id: int
    # The handle ops type in Slack (``acme``); unique within a tenant.
    short_name = fields.CharField(max_length=40)
    name = fields.CharField(max_length=200)
    currency = fields.CharField(max_length=3)
    # IANA zone used for schedules, ``starting_from`` and printed dates.
    timezone = fields.CharField(max_length=64, default="UTC")
    slack_channel = fields.CharField(max_length=80, default="")
    # Invoice language (en, de, fr, pl, es, it, nl); "" = the default of ``country``
    # (``invoicing.billing.languages``), decided at issue time and snapshotted on the invoice.
    language = fields.CharField(max_length=2, default="", db_default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "company"
        unique_together = (("tenant", "short_name"),)

    def __str__(self) -> str:
        return self.short_name
