"""The tenant's own Xero app: stored from ``/invoicing xero setup``, read for every identity call.

The client secret is sealed (``SecretBox``, purpose ``xero:app:<tenant id>:secret``); without
``INVOICEBOT_SECRET_KEY`` nothing is stored. The audit entry names the client id and the scope
family, never the secret.
"""

from __future__ import annotations

import re

from tortoise.transactions import in_transaction

from invoicing import audit
from invoicing.errors import InvalidInput
from invoicing.integrations.xero.errors import XeroNotSetUp
from invoicing.integrations.xero.identity import AppCredentials
from invoicing.secrets import SecretBox
from models import Tenant, XeroApp

#: Xero client ids are 32 upper-case hex characters; accept what looks like an id, refuse obvious mistakes.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SECRET = re.compile(r"[\x21-\x7e]{8,200}")


def secret_purpose(tenant_id: int) -> str:
    return f"xero:app:{tenant_id}:secret"


async def save_app(tenant: Tenant, *, client_id: str, client_secret: str, legacy_scopes: bool, actor: str,
                   box: SecretBox) -> XeroApp:
    """Store (or replace) the tenant's Xero app. Bad values → ``InvalidInput`` naming the field; nothing saved."""
    client_id, client_secret = client_id.strip(), client_secret.strip()
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidInput("client_id", "is not a Xero client id (copy it from the app's Configuration page)")
    if not _SECRET.fullmatch(client_secret):
        raise InvalidInput("client_secret", "is not a Xero client secret (generate one on the app's Configuration "
                                            "page and paste it whole)")
    sealed = box.seal(client_secret, purpose=secret_purpose(tenant.id))  # SecretsUnavailable before any write
    async with in_transaction():
        app = await XeroApp.filter(tenant_id=tenant.id).select_for_update().first()
        old = {"client_id": app.client_id, "legacy_scopes": app.legacy_scopes} if app else {}
        if app is None:
            app = XeroApp(tenant_id=tenant.id)
        app.client_id, app.client_secret, app.legacy_scopes, app.created_by = client_id, sealed, legacy_scopes, actor
        await app.save()
        await audit.record(tenant.id, actor=actor, action="xero.setup", target="xero",
                           old=old, new={"client_id": client_id, "legacy_scopes": legacy_scopes,
                                         "client_secret": "(set)"})
    return app


async def load_app(tenant_id: int, box: SecretBox) -> AppCredentials:
    """The tenant's app with its secret opened; ``XeroNotSetUp`` when there is none."""
    app = await XeroApp.get_or_none(tenant_id=tenant_id)
    if app is None:
        raise XeroNotSetUp("This workspace has no Xero app yet: an admin runs `/invoicing xero setup` first.")
    return AppCredentials(app.client_id, box.open(app.client_secret, purpose=secret_purpose(tenant_id)),
                          app.legacy_scopes)
