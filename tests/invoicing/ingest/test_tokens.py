"""Order-feed API tokens: shown once, stored as a hash, scoped to one tenant, revocable."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from invoicing.errors import NotFound
from invoicing.ingest.tokens import (
    LAST_USED_RESOLUTION,
    authenticate,
    create_token,
    list_tokens,
    revoke_token,
)
from models import ApiToken, AuditEntry
from tests import factories as f
from tests.factories import T0


async def test_a_new_token_authenticates_its_tenant_and_only_its_hash_is_stored(db):
    t = await f.tenant()
    new = await create_token(t, label="shopify sync")
    assert new.token.startswith("ibt_") and len(new.token) == 47 and new.token.startswith(new.prefix)
    row = await ApiToken.get(tenant_id=t.id)
    assert row.token_hash == hashlib.sha256(new.token.encode()).hexdigest()
    assert new.token not in {row.token_hash, row.prefix, row.label}
    principal = await authenticate(new.token)
    assert principal is not None and principal.tenant_id == t.id and principal.actor == f"api:{new.prefix}"


@pytest.mark.parametrize("presented", ["", "ibt_", "Bearer x", "ibt_" + "A" * 43, "x" * 47])
async def test_unknown_or_malformed_tokens_do_not_authenticate(db, presented):
    t = await f.tenant()
    await create_token(t)
    assert await authenticate(presented) is None


async def test_a_revoked_token_stops_working_and_revoking_again_is_harmless(db):
    t = await f.tenant()
    new = await create_token(t)
    first = await revoke_token(t, new.prefix, clock=lambda: T0)
    assert not first.already_revoked and first.token.revoked_at == T0
    assert await authenticate(new.token) is None
    again = await revoke_token(t, new.prefix)
    assert again.already_revoked
    actions = await AuditEntry.filter(tenant_id=t.id).values_list("action", flat=True)
    assert sorted(a for a in actions if a.startswith("token.")) == ["token.create", "token.revoke"]


async def test_a_tenant_cannot_revoke_or_list_another_tenants_tokens(db):
    ink = await f.tenant("inkwell")
    other = await f.tenant("other")
    new = await create_token(ink)
    with pytest.raises(NotFound, match="No token with prefix"):
        await revoke_token(other, new.prefix)
    assert await list_tokens(other) == []
    assert [info.prefix for info in await list_tokens(ink)] == [new.prefix]


async def test_last_used_is_recorded_but_not_rewritten_on_every_request(db):
    t = await f.tenant()
    new = await create_token(t)
    await authenticate(new.token, clock=lambda: T0)
    await authenticate(new.token, clock=lambda: T0 + timedelta(seconds=30))
    assert (await ApiToken.get(tenant_id=t.id)).last_used_at == T0
    later = T0 + LAST_USED_RESOLUTION
    await authenticate(new.token, clock=lambda: later)
    [info] = await list_tokens(t)
    assert info.last_used_at == later and info.active
