"""Order-feed API tokens. Only a hash is stored; the token itself is shown once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.tenant import Tenant


class ApiToken(Model):
    """A bearer token that lets an OMS push data for one tenant."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="api_tokens", on_delete=fields.CASCADE
    )
    tenant_id: int
    label = fields.CharField(max_length=100, default="")
    # sha256 hex of the full token; lookups hash the presented token and compare.
    token_hash = fields.CharField(max_length=64, unique=True)
    # First characters of the token, to tell tokens apart in listings.
    prefix = fields.CharField(max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_token"
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("tenant_id",),)
