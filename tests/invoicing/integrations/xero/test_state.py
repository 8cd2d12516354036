"""Authorisation states: PKCE S256, single use, 10-minute expiry, tampering refused; the app's secret sealed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from invoicing.errors import InvalidInput
from invoicing.integrations.xero.apps import load_app, save_app
from invoicing.integrations.xero.errors import XeroAuthorizationRefused, XeroNotSetUp
from invoicing.integrations.xero.state import STATE_LIFETIME, consume_state, new_state, pkce_challenge
from invoicing.secrets import SecretBox, SecretsUnavailable, new_key
from models import AuditEntry, XeroApp, XeroAuthPurpose, XeroAuthState
from tests import factories

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
BOX = SecretBox(new_key())


def test_pkce_challenge_is_rfc7636_s256():
    # RFC 7636 appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def _state(tenant_id: int) -> tuple[str, str, XeroAuthState]:
    made = await new_state(tenant_id=tenant_id, user_id="U1", purpose=XeroAuthPurpose.RETAILER, company_id=None,
                           channel="C1", box=BOX, now=NOW)
    return made.state, made.code_challenge, made.row


async def test_a_state_is_stored_only_as_its_hash_and_opens_its_verifier_once(db):
    t = await factories.tenant()
    state, challenge, row = await _state(t.id)
    stored = await XeroAuthState.get(id=row.id)
    assert stored.state_hash == hashlib.sha256(state.encode()).hexdigest()
    assert state not in stored.code_verifier
    consumed = await consume_state(state, box=BOX, now=NOW + timedelta(minutes=9))
    assert consumed.row.tenant_id == t.id and consumed.row.user_id == "U1"
    digest = hashlib.sha256(consumed.code_verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    assert 43 <= len(consumed.code_verifier) <= 128
    with pytest.raises(XeroAuthorizationRefused, match="used already"):
        await consume_state(state, box=BOX, now=NOW + timedelta(minutes=9))


async def test_tampered_and_expired_states_are_refused_and_nothing_changes(db):
    t = await factories.tenant()
    state, _, row = await _state(t.id)
    for bad in (state[:-1] + ("A" if state[-1] != "A" else "B"), "", "x" * 500):
        with pytest.raises(XeroAuthorizationRefused, match="not one InvoiceBot made"):
            await consume_state(bad, box=BOX, now=NOW)
    with pytest.raises(XeroAuthorizationRefused, match="expired"):
        await consume_state(state, box=BOX, now=NOW + STATE_LIFETIME)
    assert (await XeroAuthState.get(id=row.id)).used_at is None


async def test_two_callbacks_with_one_state_one_wins(db):
    t = await factories.tenant()
    state, _, _ = await _state(t.id)
    results = await asyncio.gather(*(consume_state(state, box=BOX, now=NOW) for _ in range(4)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, XeroAuthorizationRefused) for r in results if isinstance(r, BaseException))


async def test_the_app_secret_is_sealed_audited_without_it_and_refused_without_a_key(db):
    t = await factories.tenant()
    with pytest.raises(XeroNotSetUp):
        await load_app(t.id, BOX)
    with pytest.raises(SecretsUnavailable):
        await save_app(t, client_id="ABCDEF0123456789", client_secret="s3cret-value-xyz", legacy_scopes=False,
                       actor="slack:U1", box=SecretBox(None))
    assert await XeroApp.all().count() == 0
    with pytest.raises(InvalidInput, match="client_secret"):
        await save_app(t, client_id="ABCDEF0123456789", client_secret="short", legacy_scopes=False,
                       actor="slack:U1", box=BOX)
    await save_app(t, client_id="ABCDEF0123456789", client_secret="s3cret-value-xyz", legacy_scopes=True,
                   actor="slack:U1", box=BOX)
    row = await XeroApp.get(tenant_id=t.id)
    assert "s3cret" not in row.client_secret
    app = await load_app(t.id, BOX)
    assert (app.client_id, app.client_secret, app.legacy_scopes) == ("ABCDEF0123456789", "s3cret-value-xyz", True)
    assert "s3cret" not in repr(app)
    entries = await AuditEntry.filter(tenant_id=t.id, action="xero.setup")
    assert len(entries) == 1 and "s3cret" not in str(entries[0].new)
    other = await factories.tenant("other")
    row.tenant_id = other.id  # a sealed secret copied to another tenant does not open there
    with pytest.raises(Exception, match="does not open"):
        BOX.open(row.client_secret, purpose=f"xero:app:{other.id}:secret")
