"""Stored connections: connecting an authorised organisation, the pending choice between several, lookups.

A connection belongs to one tenant, for its own organisation (``company`` null) or a dropship
company's. There is at most one usable (connected or broken) connection per (tenant, company): a new
authorisation for the same purpose replaces its organisation and tokens in place, so pushes keep
finding it. Tokens are sealed with purposes naming the connection row (``access_purpose`` /
``refresh_purpose``), so a sealed token copied to another row or tenant does not open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from invoicing import audit
from invoicing.integrations.xero.errors import XeroAuthorizationRefused, XeroNotSetUp
from invoicing.integrations.xero.identity import TokenSet
from invoicing.secrets import SecretBox
from models import XeroAuthState, XeroConnection, XeroConnectionStatus, XeroPush, XeroPushStatus

#: How long the organisation buttons of a multi-organisation authorisation work.
CHOICE_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class Organisation:
    """One entry of Xero's ``GET /connections``."""

    connection_id: str
    tenant_id: str
    name: str


def access_purpose(connection_id: int) -> str:
    return f"xero:connection:{connection_id}:access"


def refresh_purpose(connection_id: int) -> str:
    return f"xero:connection:{connection_id}:refresh"


def choice_purpose(state_id: int) -> str:
    return f"xero:state:{state_id}:tokens"


def seal_tokens(connection: XeroConnection, tokens: TokenSet, *, box: SecretBox, now: datetime) -> None:
    """Put ``tokens`` on ``connection`` (not saved): sealed, with the expiry and scopes."""
    connection.access_token = box.seal(tokens.access_token, purpose=access_purpose(connection.id))
    connection.refresh_token = box.seal(tokens.refresh_token, purpose=refresh_purpose(connection.id))
    connection.access_expires_at = now + timedelta(seconds=tokens.expires_in)
    connection.refreshed_at = now
    if tokens.scope:
        connection.scopes = tokens.scope[:2000]


async def store_connection(state: XeroAuthState, organisation: Organisation, tokens: TokenSet, *, box: SecretBox,
                           now: datetime) -> XeroConnection:
    """Connect ``organisation`` for the tenant (and company) of ``state``, in one transaction with its audit."""
    async with in_transaction():
        row = await (XeroConnection.filter(tenant_id=state.tenant_id, company_id=state.company_id)
                     .exclude(status=XeroConnectionStatus.REVOKED).order_by("id").select_for_update().first())
        old = {"organisation": row.organisation_name, "status": str(row.status)} if row else {}
        if row is None:
            row = await XeroConnection.create(
                tenant_id=state.tenant_id, company_id=state.company_id, xero_tenant_id=organisation.tenant_id,
                xero_connection_id=organisation.connection_id, access_expires_at=now, refreshed_at=now,
                created_by=f"slack:{state.user_id}")
        row.xero_tenant_id, row.xero_connection_id = organisation.tenant_id, organisation.connection_id
        row.organisation_name = organisation.name[:255]
        row.status, row.broken_reason = XeroConnectionStatus.CONNECTED, ""
        row.notice_channel = state.channel or state.user_id
        row.created_by = f"slack:{state.user_id}"
        seal_tokens(row, tokens, box=box, now=now)
        await row.save()
        target = "xero" if state.company_id is None else f"xero:company:{state.company_id}"
        await audit.record(state.tenant_id, actor=f"slack:{state.user_id}", action="xero.connect", target=target,
                           old=old, new={"organisation": row.organisation_name, "status": "connected",
                                         "xero_tenant_id": row.xero_tenant_id})
        # Pushes held while nothing (or a broken connection) was there go now.
        await XeroPush.filter(tenant_id=state.tenant_id, status=XeroPushStatus.PENDING,
                              next_attempt_at__gt=now).update(next_attempt_at=now)
    return row


async def keep_choice(state: XeroAuthState, organisations: list[Organisation], tokens: TokenSet, *,
                      box: SecretBox, now: datetime) -> None:
    """Several organisations were authorised: keep them (and the sealed tokens) for the user's button."""
    state.pending_tokens = box.seal(tokens.to_json(), purpose=choice_purpose(state.id))
    state.pending_organisations = [{"connection_id": o.connection_id, "tenant_id": o.tenant_id, "name": o.name}
                                   for o in organisations]
    state.pending_until = now + CHOICE_LIFETIME
    await state.save(update_fields=["pending_tokens", "pending_organisations", "pending_until"])


async def choose_organisation(*, tenant_id: int, user_id: str, state_id: int, xero_tenant_id: str,
                              box: SecretBox, now: datetime) -> XeroConnection:
    """The user's button: connect one of the kept organisations. Only the user who authorised, in the same
    tenant, within ``CHOICE_LIFETIME``, once."""
    async with in_transaction():
        state = await XeroAuthState.filter(id=state_id, tenant_id=tenant_id).select_for_update().first()
        if state is None or state.user_id != user_id or not state.pending_tokens:
            raise XeroAuthorizationRefused("This choice is not yours (only the person who connected Xero can "
                                           "pick the organisation).")
        if state.chosen_at is not None:
            raise XeroAuthorizationRefused("An organisation was chosen already for this authorisation.")
        if state.pending_until is None or state.pending_until <= now:
            raise XeroAuthorizationRefused("This choice expired; type `/invoicing xero connect` again.")
        picked = [o for o in state.pending_organisations if o.get("tenant_id") == xero_tenant_id]
        if not picked:
            raise XeroAuthorizationRefused("That organisation was not among the authorised ones.")
        tokens = TokenSet.from_json(box.open(state.pending_tokens, purpose=choice_purpose(state.id)))
        state.chosen_at, state.pending_tokens = now, ""
        await state.save(update_fields=["chosen_at", "pending_tokens"])
        choice = picked[0]
        return await store_connection(state, Organisation(str(choice["connection_id"]), str(choice["tenant_id"]),
                                                          str(choice.get("name") or "")), tokens, box=box, now=now)


async def tenant_connections(tenant_id: int, *, include_revoked: bool = False) -> list[XeroConnection]:
    """The tenant's connections (its own first, then per company), oldest first."""
    query = XeroConnection.filter(tenant_id=tenant_id)
    if not include_revoked:
        query = query.exclude(status=XeroConnectionStatus.REVOKED)
    return sorted(await query.order_by("id"), key=lambda c: (c.company_id is not None, c.id))


async def usable_connection(tenant_id: int, company_id: int | None = None) -> XeroConnection:
    """The tenant's (or the company's) current connection; ``XeroNotSetUp`` when there is none."""
    row = await (XeroConnection.filter(tenant_id=tenant_id, company_id=company_id)
                 .exclude(status=XeroConnectionStatus.REVOKED).order_by("id").first())
    if row is None:
        raise XeroNotSetUp("No Xero organisation is connected; an admin types `/invoicing xero connect`.")
    return row
