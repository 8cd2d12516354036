"""Audit log: who changed what, when, from which value to which."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.tenant import Tenant


class AuditEntry(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="audit_entries", on_delete=fields.RESTRICT
    )
    tenant_id: int
    at = fields.DatetimeField(auto_now_add=True)
    # ``slack:U123``, ``cli``, ``api:token-3`` …
    actor = fields.CharField(max_length=100)
    action = fields.CharField(max_length=60)
    # What was changed, e.g. ``company:acme`` or ``seller``.
    target = fields.CharField(max_length=100)
    old: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    new: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "audit_entry"
        ordering = ["-id"]
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("tenant_id", "id"),)
