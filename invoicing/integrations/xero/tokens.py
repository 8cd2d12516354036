"""A usable access token for a connection, refreshed by one worker at a time across replicas.

``access_token`` returns the stored token while it has more than ``REFRESH_AHEAD`` left. Otherwise
it refreshes **inside a transaction holding the connection row's lock** (``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite the transaction's write lock, ``BEGIN IMMEDIATE``): whoever gets the lock
second re-reads the row and finds the new token, so Xero sees one refresh per connection however
many workers or replicas ask at once — the known failure of Xero SDKs (two refreshes with the same
token, one connection lost) cannot happen. The new access *and* refresh tokens are written in that
same transaction. Rules a caller may rely on:

* A refresh whose answer was lost (timeout, connection dropped, 5xx) is sent again with the same
  refresh token (Xero keeps a used refresh token valid for 30 minutes), ``LOST_ATTEMPTS`` times in
  all; then ``XeroUnavailable`` and nothing changed — the caller's push waits and tries later.
* ``invalid_grant`` marks the connection broken and queues a ``xero_broken`` notice telling ops to
  connect again, committed together; then ``XeroConnectionBroken``. Nothing is lost: pushes wait.
* ``stale``: the token a call was refused with (401); it is refreshed unless someone already did.
* The lock is held for the refresh call (at most ``identity.TOKEN_TIMEOUT`` × attempts); on SQLite
  that is the process's write lock, so keep the identity timeout short.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from invoicing.clock import Clock
from invoicing.delivery.notices import queue_xero_notice
from invoicing.integrations.xero import identity
from invoicing.integrations.xero.apps import load_app
from invoicing.integrations.xero.connections import access_purpose, refresh_purpose, seal_tokens
from invoicing.integrations.xero.endpoints import XeroHttp
from invoicing.integrations.xero.errors import XeroConnectionBroken, XeroNotSetUp, XeroUnavailable
from invoicing.retrying import atomic_retry
from invoicing.secrets import SecretBox
from models import Company, NoticeKind, XeroConnection, XeroConnectionStatus

log = logging.getLogger(__name__)

#: A token with less than this left is refreshed before use (a push must not meet its expiry mid-batch).
REFRESH_AHEAD = timedelta(minutes=5)
#: Refresh calls per refresh, the first included, when the answer is lost.
LOST_ATTEMPTS = 3
#: Pause before the n-th repeat: n × this (seconds).
LOST_PAUSE = 0.5


@dataclass(frozen=True)
class _Broken:
    reason: str


async def access_token(connection_id: int, *, box: SecretBox, http: XeroHttp, clock: Clock,
                       stale: str | None = None) -> str:
    """A valid access token of the connection (see the module docstring for the guarantees)."""
    row = await XeroConnection.get_or_none(id=connection_id)
    _check_usable(row)
    assert row is not None
    if stale is None and row.access_expires_at - clock() > REFRESH_AHEAD:
        return box.open(row.access_token, purpose=access_purpose(row.id))

    async def work(_: BaseDBAsyncClient) -> str | _Broken:
        return await _refresh_locked(connection_id, box=box, http=http, clock=clock, stale=stale)

    result = await atomic_retry(work)
    if isinstance(result, _Broken):
        raise XeroConnectionBroken(result.reason)
    return result


def _check_usable(row: XeroConnection | None) -> None:
    if row is None:
        raise XeroNotSetUp("That Xero connection does not exist any more; an admin types `/invoicing xero connect`.")
    if row.status == XeroConnectionStatus.REVOKED:
        raise XeroConnectionBroken(f"The Xero connection to {row.organisation_name} was disconnected; an admin "
                                   "types `/invoicing xero connect` to connect again.")
    if row.status == XeroConnectionStatus.BROKEN:
        raise XeroConnectionBroken(_broken_text(row.organisation_name))


def _broken_text(organisation: str) -> str:
    return (f"Xero no longer accepts InvoiceBot's access to {organisation} (the refresh was refused). An admin "
            "types `/invoicing xero connect` to connect again; waiting pushes then go ahead.")


async def _refresh_locked(connection_id: int, *, box: SecretBox, http: XeroHttp, clock: Clock,
                          stale: str | None) -> str | _Broken:
    row = await XeroConnection.filter(id=connection_id).select_for_update().first()
    _check_usable(row)
    assert row is not None
    current = box.open(row.access_token, purpose=access_purpose(row.id))
    if row.access_expires_at - clock() > REFRESH_AHEAD and (stale is None or current != stale):
        return current  # another worker refreshed while we waited for the lock
    app = await load_app(row.tenant_id, box)
    old_refresh = box.open(row.refresh_token, purpose=refresh_purpose(row.id))
    for attempt in range(1, LOST_ATTEMPTS + 1):
        try:
            tokens = await identity.refresh(http, app, old_refresh)
            break
        except XeroUnavailable:
            log.warning("xero refresh answer lost connection=%s attempt=%d", row.id, attempt)
            if attempt == LOST_ATTEMPTS:
                raise
            await asyncio.sleep(LOST_PAUSE * attempt)
        except identity.InvalidGrant:
            return await _mark_broken(row, clock)
    now = clock()
    seal_tokens(row, tokens, box=box, now=now)
    await row.save(update_fields=["access_token", "refresh_token", "access_expires_at", "refreshed_at", "scopes",
                                  "updated_at"])
    log.info("xero token refreshed connection=%s tenant=%s", row.id, row.tenant_id)
    return tokens.access_token


async def _mark_broken(row: XeroConnection, clock: Clock) -> _Broken:
    now = clock()
    reason = _broken_text(row.organisation_name)
    log.warning("xero connection broken connection=%s tenant=%s (invalid_grant)", row.id, row.tenant_id)
    row.status, row.broken_reason = XeroConnectionStatus.BROKEN, "invalid_grant: the refresh token was refused"
    await row.save(update_fields=["status", "broken_reason", "updated_at"])
    company = await Company.get_or_none(id=row.company_id) if row.company_id is not None else None
    channel = (company.slack_channel if company is not None else "") or row.notice_channel
    await queue_xero_notice(
        tenant_id=row.tenant_id, company_id=row.company_id, channel=channel, kind=NoticeKind.XERO_BROKEN,
        key=f"xero-broken:{row.id}:{row.refreshed_at.isoformat()}", now=now,
        payload={"organisation": row.organisation_name, "company": company.short_name if company else "",
                 "connection_id": row.id, "reason": row.broken_reason})
    return _Broken(reason)
