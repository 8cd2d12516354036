"""The Slack notice outbox: one row per message that must reach a company's channel."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.tenant import Tenant


class NoticeKind(StrEnum):
    RUN_ISSUED = "run_issued"
    RUN_REFUSED = "run_refused"
    RUN_FAILED = "run_failed"
    DELIVERY_FAILED = "delivery_failed"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_REMINDER = "approval_reminder"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    CREDIT_ISSUED = "credit_issued"
    # The XML export (``invoicing.integrations.xml_export``): a file exported, its upload failing,
    # recovered, or blocked by a permanent error (auth, host key, directory, permission).
    XML_EXPORTED = "xml_exported"
    XML_FAILING = "xml_failing"
    XML_RECOVERED = "xml_recovered"
    XML_BLOCKED = "xml_blocked"
    XERO_BROKEN = "xero_broken"
    XERO_BUDGET = "xero_budget"
    # Xero pushes (``invoicing.integrations.xero.pushes``): refused by Xero, totals that differ from ours,
    # a push waiting (daily budget spent, connection broken).
    XERO_PUSH_FAILED = "xero_push_failed"
    XERO_MISMATCH = "xero_mismatch"
    XERO_WAITING = "xero_waiting"


class NoticeStatus(StrEnum):
    PENDING = "pending"
    # Claimed by a worker; ``next_attempt_at`` is its lease (crash window).
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class SlackNotice(Model):
    """Written in the transaction of what it announces and posted only after that commits.

    ``dedupe_key`` names what is announced (``run:<id>``, ``delivery-failed:<id>``), so
    the same event is queued once, and travels with the Slack message as metadata so a
    retry after an unknown outcome can find the message it may already have posted.
    """

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="notices", on_delete=fields.RESTRICT
    )
    tenant_id: int
    company: fields.ForeignKeyNullableRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="notices", null=True, on_delete=fields.SET_NULL
    )
    company_id: int | None
    # As configured on the company (a channel id such as C0123 or a name such as #billing).
    channel = fields.CharField(max_length=80)
    # The channel id Slack answered with (needed to read the channel history).
    channel_id = fields.CharField(max_length=20, default="")
    kind = fields.CharEnumField(NoticeKind, max_length=20)
    # The facts the message is rendered from (plain JSON values, rendered by the poster).
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    dedupe_key = fields.CharField(max_length=120, unique=True)
    status = fields.CharEnumField(NoticeStatus, default=NoticeStatus.PENDING, max_length=10)
    attempts = fields.IntField(default=0)
    # True when an earlier attempt may have posted: look in the channel history before posting.
    outcome_unknown = fields.BooleanField(default=False)
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)
    last_error = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)
    # The ts of the posted message (its id within the channel).
    message_ts = fields.CharField(max_length=32, default="")

    class Meta:
        table = "slack_notice"
        # The workers' due-selection (status = pending, attempt time passed) reads only the queued rows
        # through it, however many sent rows the table keeps (benchmarks/queue_history.py).
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("status", "next_attempt_at"), ("tenant_id", "channel", "id"), ("company_id",))
