"""The authorisation code flow with PKCE: the authorize link, the callback's work, ``/connections``.

``authorize_link`` makes the link ``/invoicing xero connect`` shows; ``complete_authorization`` is
what ``GET /xero/callback`` does with Xero's ``code`` and ``state``: use the state once (tenant,
user and purpose come from it, never from the request), exchange the code with the verifier, list
the organisations the user authorised and either connect the only one or keep them for the user's
choice (``connections.choose_organisation``). A refusal at any step stores no connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from tortoise.transactions import in_transaction

from invoicing import audit
from invoicing.integrations.xero import connections
from invoicing.integrations.xero.apps import load_app
from invoicing.integrations.xero.connections import Organisation, refresh_purpose
from invoicing.integrations.xero.endpoints import XeroEnv, XeroHttp
from invoicing.integrations.xero.errors import (
    XeroAuthorizationRefused,
    XeroNotSetUp,
    XeroRequestFailed,
    XeroUnavailable,
)
from invoicing.integrations.xero.identity import InvalidGrant, exchange_code, revoke
from invoicing.integrations.xero.state import consume_state, new_state
from invoicing.integrations.xero.tokens import access_token
from models import XeroAuthPurpose, XeroConnection, XeroConnectionStatus

log = logging.getLogger(__name__)

#: Apps created on or after 2 March 2026 use the granular ``accounting.invoices`` scope.
SCOPES = ("offline_access", "openid", "profile", "email", "accounting.invoices", "accounting.contacts")
#: Older apps keep ``accounting.transactions``.
LEGACY_SCOPES = ("offline_access", "openid", "profile", "email", "accounting.transactions", "accounting.contacts")


def scopes_for(legacy: bool) -> str:
    return " ".join(LEGACY_SCOPES if legacy else SCOPES)


@dataclass(frozen=True)
class Authorized:
    """What the callback did: ``connection`` when one organisation was connected, else the choice."""

    connection: XeroConnection | None
    choices: tuple[Organisation, ...]
    user_id: str
    state_id: int


async def authorize_link(*, tenant_id: int, user_id: str, channel: str, company_id: int | None,
                         env: XeroEnv) -> str:
    """The URL to send the user to (valid 10 minutes, once). ``company_id``: a dropship company's own org."""
    if not env.configured:
        raise XeroNotSetUp("Xero connections need PUBLIC_URL (the service's external address) in the settings; "
                           "ask whoever runs InvoiceBot to set it.")
    app = await load_app(tenant_id, env.box)
    purpose = XeroAuthPurpose.COMPANY if company_id is not None else XeroAuthPurpose.RETAILER
    made = await new_state(tenant_id=tenant_id, user_id=user_id, purpose=purpose, company_id=company_id,
                           channel=channel, box=env.box, now=env.clock())
    query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": env.http.urls.redirect_uri,
             "scope": scopes_for(app.legacy_scopes), "state": made.state, "code_challenge": made.code_challenge,
             "code_challenge_method": "S256"}
    return f"{env.http.urls.authorize}?{urlencode(query)}"


async def list_organisations(http: XeroHttp, access_token: str) -> list[Organisation]:
    """The organisations the token may use (``GET /connections``, ``tenantType`` ORGANISATION only)."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    try:
        async with http.session.get(http.urls.connections, headers=headers, timeout=http.client_timeout) as answer:
            status = answer.status
            body: Any = await answer.json(content_type=None) if status == 200 else None
    except (TimeoutError, aiohttp.ClientError, ValueError):
        raise XeroUnavailable("Xero did not list the connected organisations; try again later.") from None
    if status != 200 or not isinstance(body, list):
        raise XeroRequestFailed(f"Xero did not list the connected organisations (HTTP {status}).", status=status)
    return [Organisation(str(c.get("id", "")), str(c.get("tenantId", "")), str(c.get("tenantName") or ""))
            for c in body if isinstance(c, dict) and c.get("tenantType", "ORGANISATION") == "ORGANISATION"
            and c.get("id") and c.get("tenantId")]


async def complete_authorization(*, state: str, code: str, error: str, env: XeroEnv) -> Authorized:
    """The callback: ``XeroAuthorizationRefused`` (state, Xero's refusal) or another ``XeroError``."""
    consumed = await consume_state(state, box=env.box, now=env.clock())
    row = consumed.row
    if error:
        raise XeroAuthorizationRefused(f"Xero did not authorise the connection ({error[:80]}). Nothing was "
                                       "connected; type `/invoicing xero connect` to try again.")
    if not code:
        raise XeroAuthorizationRefused("Xero sent no authorisation code. Type `/invoicing xero connect` again.")
    app = await load_app(row.tenant_id, env.box)
    try:
        tokens = await exchange_code(env.http, app, code=code[:2000], code_verifier=consumed.code_verifier)
    except InvalidGrant:
        raise XeroAuthorizationRefused("Xero refused the authorisation code (it expires after 5 minutes and works "
                                       "once). Type `/invoicing xero connect` for a new link.") from None
    organisations = await list_organisations(env.http, tokens.access_token)
    log.info("xero authorised tenant=%s user=%s organisations=%d", row.tenant_id, row.user_id, len(organisations))
    if not organisations:
        raise XeroAuthorizationRefused("No Xero organisation was authorised. Type `/invoicing xero connect` again "
                                       "and tick the organisation on Xero's page.")
    if len(organisations) == 1:
        connection = await connections.store_connection(row, organisations[0], tokens, box=env.box, now=env.clock())
        return Authorized(connection, (), row.user_id, row.id)
    await connections.keep_choice(row, organisations, tokens, box=env.box, now=env.clock())
    return Authorized(None, tuple(organisations), row.user_id, row.id)


async def disconnect(connection: XeroConnection, *, actor: str, env: XeroEnv) -> XeroConnection:
    """Disconnect at Xero (``DELETE /connections/{id}``, then revoke the refresh token) and mark the row
    revoked, its tokens wiped. A broken connection (Xero refuses its tokens already) is only marked."""
    if connection.status == XeroConnectionStatus.CONNECTED:
        app = await load_app(connection.tenant_id, env.box)
        token = await access_token(connection.id, box=env.box, http=env.http, clock=env.clock)
        url = f"{env.http.urls.connections}/{connection.xero_connection_id}"
        try:
            async with env.http.session.delete(url, headers={"Authorization": f"Bearer {token}"},
                                               timeout=env.http.client_timeout) as answer:
                status = answer.status
                await answer.read()
        except (TimeoutError, aiohttp.ClientError):
            raise XeroUnavailable("Xero did not answer the disconnection; nothing changed, try again.") from None
        if status not in (200, 204, 404):
            raise XeroRequestFailed(f"Xero refused the disconnection (HTTP {status}); nothing changed.", status=status)
        fresh = await XeroConnection.get(id=connection.id)
        await revoke(env.http, app, env.box.open(fresh.refresh_token, purpose=refresh_purpose(fresh.id)))
    async with in_transaction():
        row = await XeroConnection.filter(id=connection.id).select_for_update().get()
        old = {"organisation": row.organisation_name, "status": str(row.status)}
        row.status, row.access_token, row.refresh_token = XeroConnectionStatus.REVOKED, "", ""
        await row.save(update_fields=["status", "access_token", "refresh_token", "updated_at"])
        target = "xero" if row.company_id is None else f"xero:company:{row.company_id}"
        await audit.record(row.tenant_id, actor=actor, action="xero.disconnect", target=target, old=old,
                           new={"organisation": row.organisation_name, "status": "revoked"})
    return row
