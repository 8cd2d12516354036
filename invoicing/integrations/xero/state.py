"""The ``state`` of an authorisation and its PKCE pair: bound to a tenant and a user, single use, 10 minutes.

``new_state`` stores the sha256 of a random state (never the state itself) with the sealed
code verifier; the authorize URL carries the state and the S256 challenge. ``consume_state`` is one
conditional UPDATE (``used_at IS NULL AND expires_at > now``), so of two callbacks with the same
state exactly one wins, on either backend; a state that is unknown (tampered), used (replayed) or
expired is refused with ``XeroAuthorizationRefused`` saying which, and nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from invoicing.integrations.xero.errors import XeroAuthorizationRefused
from invoicing.secrets import SecretBox
from models import XeroAuthPurpose, XeroAuthState

#: How long an authorize link works.
STATE_LIFETIME = timedelta(minutes=10)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def verifier_purpose(hashed: str) -> str:
    return f"xero:state:{hashed}:verifier"


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class NewState:
    """What goes into the authorize URL (never stored in clear)."""

    state: str = field(repr=False)
    code_challenge: str
    row: XeroAuthState


@dataclass(frozen=True)
class ConsumedState:
    """A state that was valid and is now used: who asked, for what, and the opened code verifier."""

    row: XeroAuthState
    code_verifier: str = field(repr=False)


async def new_state(*, tenant_id: int, user_id: str, purpose: XeroAuthPurpose, company_id: int | None,
                    channel: str, box: SecretBox, now: datetime) -> NewState:
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]: RFC 7636 allows 43-128
    hashed = state_hash(state)
    row = await XeroAuthState.create(
        state_hash=hashed, tenant_id=tenant_id, user_id=user_id, purpose=purpose, company_id=company_id,
        channel=channel[:80], code_verifier=box.seal(verifier, purpose=verifier_purpose(hashed)),
        expires_at=now + STATE_LIFETIME)
    return NewState(state, pkce_challenge(verifier), row)


async def consume_state(state: str, *, box: SecretBox, now: datetime) -> ConsumedState:
    """Use ``state`` once. Refused (nothing changes) when unknown, already used or expired."""
    if not state or len(state) > 200:
        raise XeroAuthorizationRefused(_UNKNOWN)
    hashed = state_hash(state)
    used = await XeroAuthState.filter(state_hash=hashed, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    row = await XeroAuthState.get_or_none(state_hash=hashed)
    if row is None:
        raise XeroAuthorizationRefused(_UNKNOWN)
    if not used:
        if row.used_at is not None:
            raise XeroAuthorizationRefused("This authorisation link was used already (each link works once). "
                                           "Type `/invoicing xero connect` in Slack for a new one.")
        raise XeroAuthorizationRefused("This authorisation link expired (links work for 10 minutes). "
                                       "Type `/invoicing xero connect` in Slack for a new one.")
    return ConsumedState(row, box.open(row.code_verifier, purpose=verifier_purpose(hashed)))


_UNKNOWN = ("This authorisation link is not one InvoiceBot made (it was changed, or is from another "
            "service). Type `/invoicing xero connect` in Slack for a new one.")
