"""The tenant's SSH key pair: what ops install in the server's ``authorized_keys``, and what we log in with.

What a caller may rely on:

* ``tenant_key(tenant_id, box)`` returns the tenant's Ed25519 key, creating it on first use. Two callers at
  once (two replicas, two Slack commands) get the same key: the row's tenant is unique, the loser of the
  INSERT reads the winner's row.
* The private key is stored only sealed with the ``SecretBox`` (purpose ``ssh-key:<tenant_id>``, so a sealed
  value copied to another tenant does not open). Without ``INVOICEBOT_SECRET_KEY`` nothing is created and
  ``SecretsUnavailable`` is raised. ``TenantKey``'s repr never shows the private key; nothing here logs it.
* ``rotate_tenant_key`` replaces the pair (the old public key must then be removed from the servers).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import asyncssh
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from invoicing.clock import Clock, utc_now
from invoicing.errors import NotFound
from invoicing.secrets import SecretBox, SecretsUnavailable
from models import SshKey, Tenant

log = logging.getLogger(__name__)
ALGORITHM = "ssh-ed25519"


@dataclass(frozen=True)
class TenantKey:
    """The opened key pair. ``public_line`` is ``"ssh-ed25519 AAAA… invoicebot-<tenant>"``."""

    tenant_id: int
    public_line: str
    fingerprint: str
    private_text: str = field(repr=False)


def _purpose(tenant_id: int) -> str:
    return f"ssh-key:{tenant_id}"


def _comment(tenant: Tenant) -> str:
    return "invoicebot-" + (re.sub(r"[^a-z0-9]+", "-", tenant.name.lower()).strip("-")[:60] or str(tenant.id))


def _new_pair(tenant: Tenant, box: SecretBox) -> dict[str, Any]:
    if not box.configured:
        raise SecretsUnavailable("An SSH key cannot be created: INVOICEBOT_SECRET_KEY is not set (see .env.example); "
                                 "nothing was saved.")
    key = asyncssh.generate_private_key(ALGORITHM, comment=_comment(tenant))
    private_text = key.export_private_key("openssh").decode("ascii")
    return {
        "algorithm": ALGORITHM,
        "public_line": key.export_public_key("openssh").decode("ascii").strip(),
        "fingerprint": key.get_fingerprint("sha256"),
        "private_sealed": box.seal(private_text, purpose=_purpose(tenant.id)),
    }


def _opened(row: SshKey, box: SecretBox) -> TenantKey:
    return TenantKey(tenant_id=row.tenant_id, public_line=row.public_line, fingerprint=row.fingerprint,
                     private_text=box.open(row.private_sealed, purpose=_purpose(row.tenant_id)))


async def _tenant(tenant_id: int) -> Tenant:
    tenant = await Tenant.get_or_none(id=tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant {tenant_id}.")
    return tenant


async def tenant_key(tenant_id: int, box: SecretBox) -> TenantKey:
    """The tenant's key pair, created on first use (concurrency-safe; see the module docstring)."""
    row = await SshKey.get_or_none(tenant_id=tenant_id)
    if row is None:
        values = _new_pair(await _tenant(tenant_id), box)
        try:
            # A savepoint when the caller is in a transaction: a lost race undoes only this INSERT.
            async with in_transaction():
                row = await SshKey.create(tenant_id=tenant_id, **values)
            log.info("ssh key created tenant=%d fingerprint=%s", tenant_id, row.fingerprint)
        except IntegrityError:  # another creator committed first: its key is the tenant's key
            row = await SshKey.get(tenant_id=tenant_id)
    return _opened(row, box)


async def rotate_tenant_key(tenant_id: int, box: SecretBox, *, clock: Clock = utc_now) -> TenantKey:
    """Replace the tenant's key pair with a new one (created if there was none)."""
    values = _new_pair(await _tenant(tenant_id), box)
    async with in_transaction():
        row = await SshKey.filter(tenant_id=tenant_id).select_for_update().first()
        if row is None:
            row = await SshKey.create(tenant_id=tenant_id, **values)
        else:
            old = row.fingerprint
            row.update_from_dict({**values, "rotated_at": clock()})
            await row.save()
            log.info("ssh key rotated tenant=%d old=%s new=%s", tenant_id, old, row.fingerprint)
    return _opened(row, box)
