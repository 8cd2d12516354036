"""The admin company: the tenant, the seller on every invoice, owner of the number sequence."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields

from models.accounting import AccountingFields


class Plan(StrEnum):
    OMS = "oms"
    OMS_LITE = "oms_lite"


class Tenant(AccountingFields):
    """The OMS account of one fulfiller. One Slack workspace maps to one tenant.

    ``last_invoice_number`` *is* the invoice number sequence: a run locks this row,
    increments it and writes the invoice in the same transaction, so a number is
    either used by a committed invoice or was never taken (gapless).
    ``last_credit_note_number`` is the credit notes' own sequence, kept the same way
    (``invoicing.billing.numbering.take_next_credit_number``).
    """

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    slack_team_id = fields.CharField(max_length=32, null=True, unique=True)
    plan = fields.CharEnumField(Plan, default=Plan.OMS, max_length=10)
    # ISO 4217 currency of default (non-retailer) prices.
    currency = fields.CharField(max_length=3, default="GBP")
    timezone = fields.CharField(max_length=64, default="UTC")
    invoice_prefix = fields.CharField(max_length=20, default="")
    # Minimum number of digits of the printed number (zero padded).
    number_padding = fields.IntField(default=6)
    last_invoice_number = fields.IntField(default=0)
    credit_note_prefix = fields.CharField(max_length=20, default="CN-", db_default="CN-")
    last_credit_note_number = fields.IntField(default=0, db_default=0)
    # Slack user ids allowed to change configuration besides workspace admins/owners.
    admin_user_ids: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tenant"

    def format_number(self, number: int) -> str:
        """The printed invoice number, e.g. ``INV-000042``."""
        return f"{self.invoice_prefix}{number:0{self.number_padding}d}"

    def format_credit_number(self, number: int) -> str:
        """The printed credit-note number, e.g. ``CN-000003`` (same padding as invoices)."""
        return f"{self.credit_note_prefix}{number:0{self.number_padding}d}"

    def __str__(self) -> str:
        return self.name
