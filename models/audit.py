"""Audit log: who changed what, when, from which value to which."""

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    id = fields.IntField(primary_key=True)
    tenant = fields.ForeignKeyField("models.Tenant", related_name="audit_entries", on_delete=fields.RESTRICT)
    at = fields.DatetimeField(auto_now_add=True)
    # ``slack:U123``, ``cli``, ``api:token-3`` …
    actor = fields.CharField(max_length=100)
    action = fields.CharField(max_length=60)
    # What was changed, e.g. ``company:acme`` or ``seller``.
    target = fields.CharField(max_length=100)
    old = fields.JSONField(default=dict)
    new = fields.JSONField(default=dict)

    class Meta:
        table = "audit_entry"
        ordering = ["-id"]
