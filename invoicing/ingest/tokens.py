"""Order-feed API tokens: create (shown once), list, revoke, authenticate.

A token is ``ibt_`` + 43 URL-safe characters (256 random bits from ``secrets``). Only
its sha256 is stored: a stolen database does not yield usable tokens, and because the
secret has full entropy a fast hash is enough (no password hashing needed). Lookup is
by hash, so the secret itself is never compared byte by byte; the final
``hmac.compare_digest`` keeps constant-time semantics should the lookup ever change.
The first 12 characters (``prefix``) name a token in listings, logs and audit entries;
the rest is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.clock import Clock, utc_now
from invoicing.errors import NotFound
from invoicing.ingest.batches import TenantKey
from invoicing.ingest.token_cache import VerifiedTokens
from invoicing.sql import Statement, instant
from models import ApiToken, Tenant

log = logging.getLogger(__name__)

SCHEME = "ibt_"
PREFIX_LENGTH = 12
_SHAPE = re.compile(r"^ibt_[A-Za-z0-9_-]{43}$")
#: ``last_used_at`` is refreshed at most this often, so authenticating stays a single read.
LAST_USED_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class NewToken:
    """The only moment the secret exists outside the client: print it, then drop it."""

    token: str
    prefix: str
    label: str


@dataclass(frozen=True)
class TokenInfo:
    prefix: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Revocation:
    token: TokenInfo
    already_revoked: bool


@dataclass(frozen=True)
class Principal:
    """Who is calling the feed: a tenant, through one token."""

    tenant_id: int
    tenant_name: str
    token_id: int
    prefix: str

    async def tenant(self) -> Tenant:
        """The tenant row, for writes that need its settings (currency, name …)."""
        return await Tenant.get(id=self.tenant_id)

    @property
    def tenant_key(self) -> TenantKey:
        """The tenant's id and name as the token check read them, for writes that need no more
        (orders): no read of the tenant row."""
        return TenantKey(self.tenant_id, self.tenant_name)

    @property
    def actor(self) -> str:
        """How audit entries name the caller (``api:ibt_AbCd1234``)."""
        return f"api:{self.prefix}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.prefix, row.label, row.created_at, row.last_used_at, row.revoked_at)


async def create_token(tenant: Tenant, *, label: str = "", actor: str = "cli") -> NewToken:
    """Store a new token's hash for ``tenant`` and return the token itself (once)."""
    label = validation.text(label, "label", max_len=100, required=False)
    while True:
        token = SCHEME + secrets.token_urlsafe(32)
        prefix = token[:PREFIX_LENGTH]
        # Prefixes name tokens for revocation, so keep them unique per tenant (a clash is ~2^-48).
        if not await ApiToken.filter(tenant_id=tenant.id, prefix=prefix).exists():
            break
    async with in_transaction():
        await ApiToken.create(tenant_id=tenant.id, label=label, token_hash=hash_token(token), prefix=prefix)
        await audit.record(tenant.id, actor=actor, action="token.create", target=f"token:{prefix}",
                           new={"label": label})
    log.info("api token created tenant=%s prefix=%s", tenant.name, prefix)
    return NewToken(token=token, prefix=prefix, label=label)


async def list_tokens(tenant: Tenant) -> list[TokenInfo]:
    """Every token of the tenant, oldest first, revoked ones included."""
    return [_info(row) for row in await ApiToken.filter(tenant_id=tenant.id).order_by("id")]


async def revoke_token(tenant: Tenant, prefix: str, *, actor: str = "cli", clock: Clock = utc_now) -> Revocation:
    """Revoke the tenant's token named by ``prefix``; effective for the next request. Idempotent.

    The revocation and its ``token.revoke`` audit entry are written in one transaction
    holding the token row's lock, so concurrent revokes record it once.
    """
    row = await ApiToken.get_or_none(tenant_id=tenant.id, prefix=prefix.strip())
    if row is None:
        raise NotFound(f"No token with prefix '{prefix.strip()}' in {tenant.name}. "
                       "`invoicebot token list TENANT` shows them.")
    if row.revoked_at is not None:
        return Revocation(_info(row), already_revoked=True)
    async with in_transaction():
        row = await ApiToken.filter(id=row.id).select_for_update(no_key=True).get()
        if row.revoked_at is not None:  # a concurrent revoke committed first
            return Revocation(_info(row), already_revoked=True)
        row.revoked_at = clock()
        await row.save(update_fields=["revoked_at"])
        await audit.record(tenant.id, actor=actor, action="token.revoke", target=f"token:{row.prefix}",
                           old={"label": row.label})
    log.info("api token revoked tenant=%s prefix=%s", tenant.name, row.prefix)
    return Revocation(_info(row), already_revoked=False)


_AUTH_SQL = ("SELECT k.id, k.prefix, k.token_hash, k.last_used_at, t.id, t.name FROM api_token k "
             "JOIN tenant t ON t.id = k.tenant_id WHERE k.token_hash = {digest} AND k.revoked_at IS NULL")


async def authenticate(presented: str, *, clock: Clock = utc_now,
                       cache: VerifiedTokens[Principal] | None = None) -> Principal | None:
    """The principal of an active token, or None for anything else (unknown, revoked, malformed).

    One indexed read by hash (hand-written: it runs on every request, and the ORM's
    query building cost more than the query); ``last_used_at`` is written at most every
    ``LAST_USED_RESOLUTION``. With ``cache`` (the feed app's), a token verified less than
    its ttl ago is not read again: a revocation then takes effect within that ttl
    (``token_cache``).
    """
    if not _SHAPE.match(presented):
        return None
    digest = hash_token(presented)
    if cache is not None and (cached := cache.get(digest)) is not None:
        return cached
    read_at = cache.now() if cache is not None else 0.0
    q = Statement()
    rows = await q.rows(_AUTH_SQL.format(digest=q(digest)))
    if not rows or not hmac.compare_digest(rows[0][2], digest):
        return None
    token_id, prefix, _, last_used, tenant_id, tenant_name = rows[0]
    last_used = instant(last_used)
    now = clock()
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
        await ApiToken.filter(id=token_id).update(last_used_at=now)
    principal = Principal(tenant_id=tenant_id, tenant_name=tenant_name, token_id=token_id, prefix=prefix)
    if cache is not None:
        cache.put(digest, principal, read_at=read_at)
    return principal
