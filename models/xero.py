"""Xero connections of a tenant: its own Xero app, the organisations it connected, pending authorisations.

Every secret here (the app's client secret, access and refresh tokens, a PKCE code verifier) is stored
sealed by ``invoicing.secrets.SecretBox`` (a purpose names the row and the column), never in clear.
``invoicing.integrations.xero`` owns the rules; this module only says what is stored.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from models.company import Company
    from models.tenant import Tenant


class XeroApp(Model):
    """The tenant's own Xero app (each client creates one at developer.xero.com): one per tenant."""

    id = fields.IntField(primary_key=True)
    tenant: fields.OneToOneRelation[Tenant] = fields.OneToOneField(
        "models.Tenant", related_name="xero_app", on_delete=fields.CASCADE
    )
    tenant_id: int
    client_id = fields.CharField(max_length=64)
    # Sealed (purpose ``xero:app:<tenant id>:secret``).
    client_secret = fields.TextField()
    # Apps created before 2 March 2026 ask for ``accounting.transactions`` instead of ``accounting.invoices``.
    legacy_scopes = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    created_by = fields.CharField(max_length=100, default="")

    class Meta:
        table = "xero_app"


class XeroConnectionStatus(StrEnum):
    CONNECTED = "connected"
    # The refresh token was refused (``invalid_grant``): ops must connect again; pushes wait.
    BROKEN = "broken"
    # Disconnected on purpose (revoked at Xero): kept for the record, never used again.
    REVOKED = "revoked"


class XeroConnection(Model):
    """One Xero organisation connected to a tenant: the tenant's own (``company`` null) or a dropship
    company's (its purchase orders). The row is also the lock of its token refresh
    (``invoicing.integrations.xero.tokens``) and holds the organisation's daily call count."""

    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="xero_connections", on_delete=fields.CASCADE
    )
    tenant_id: int
    company: fields.ForeignKeyNullableRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="xero_connections", null=True, on_delete=fields.CASCADE
    )
    company_id: int | None
    # Xero's ids: the organisation (``xero-tenant-id`` header) and the connection (``DELETE /connections/{id}``).
    xero_tenant_id = fields.CharField(max_length=64)
    xero_connection_id = fields.CharField(max_length=64)
    organisation_name = fields.CharField(max_length=255, default="")
    # Space-separated scopes the tokens carry.
    scopes = fields.TextField(default="")
    # Sealed (purposes ``xero:connection:<id>:access`` / ``:refresh``); empty once revoked.
    access_token = fields.TextField(default="")
    refresh_token = fields.TextField(default="")
    access_expires_at = fields.DatetimeField()
    refreshed_at = fields.DatetimeField()
    status = fields.CharEnumField(XeroConnectionStatus, default=XeroConnectionStatus.CONNECTED, max_length=10)
    broken_reason = fields.CharField(max_length=500, default="")
    # Where notices about this connection go (the channel ``xero connect`` was typed in, or a user for a DM).
    notice_channel = fields.CharField(max_length=80, default="")
    # Daily budget: ``calls_today`` calls were made on ``calls_day`` (UTC); ``daily_limit`` is the tier's.
    calls_day = fields.DateField(null=True)
    calls_today = fields.IntField(default=0)
    daily_limit = fields.IntField(default=5000)
    created_at = fields.DatetimeField(auto_now_add=True)
    created_by = fields.CharField(max_length=100, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "xero_connection"
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("company_id",), ("tenant_id",))

    def __repr__(self) -> str:  # never the tokens
        return f"<XeroConnection {self.id} tenant={self.tenant_id} org={self.organisation_name!r} {self.status}>"


class XeroAuthPurpose(StrEnum):
    RETAILER = "retailer"
    COMPANY = "company"


class XeroAuthState(Model):
    """One authorisation in flight: the ``state`` sent to Xero (only its sha256 is stored), bound to the
    tenant and the user who asked, single use, valid 10 minutes. When Xero authorised several
    organisations, the sealed token set and the list wait here for the user's choice (``pending_*``)."""

    id = fields.IntField(primary_key=True)
    state_hash = fields.CharField(max_length=64, unique=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="xero_auth_states", on_delete=fields.CASCADE
    )
    tenant_id: int
    user_id = fields.CharField(max_length=32)
    purpose = fields.CharEnumField(XeroAuthPurpose, max_length=10)
    company: fields.ForeignKeyNullableRelation[Company] = fields.ForeignKeyField(
        "models.Company", related_name="xero_auth_states", null=True, on_delete=fields.CASCADE
    )
    company_id: int | None
    channel = fields.CharField(max_length=80, default="")
    # Sealed (purpose ``xero:state:<state hash>:verifier``).
    code_verifier = fields.TextField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    # Sealed token set (JSON) and the organisations to choose from, until the choice or ``pending_until``.
    pending_tokens = fields.TextField(default="")
    pending_organisations: fields.JSONField[list[Any]] = fields.JSONField(default=list)
    pending_until = fields.DatetimeField(null=True)
    chosen_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "xero_auth_state"
        # Every foreign key leads an index (tests/models/test_indexes.py): lookups and joins from the parent side.
        indexes = (("company_id",), ("tenant_id",))
