"""One SSH key pair per tenant: created once (also under concurrent callers), private half sealed, never shown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncssh
import pytest

from invoicing.integrations.xml_export.destinations import SftpTarget, fingerprint, upload
from invoicing.integrations.xml_export.keys import rotate_tenant_key, tenant_key
from invoicing.secrets import SecretBox, SecretsUnavailable, SecretUnreadable, new_key
from models import SshKey
from tests import factories
from tests.fakes.sftp_server import SftpServer, UserAuth

BOX = SecretBox(new_key())


def private_body(text: str) -> list[str]:
    """The base64 lines of an OpenSSH private key: what must never be logged or stored in clear."""
    return [line for line in text.splitlines() if line and not line.startswith("-----")]


async def test_a_tenant_gets_one_stable_ed25519_key_and_another_tenant_its_own(db):
    inkwell, other = await factories.tenant("inkwell"), await factories.tenant("Other Print Co")
    first = await tenant_key(inkwell.id, BOX)
    again = await tenant_key(inkwell.id, BOX)
    assert again == first
    assert first.public_line.startswith("ssh-ed25519 AAAA") and first.public_line.endswith(" invoicebot-inkwell")
    assert first.fingerprint == fingerprint(first.public_line) and first.fingerprint.startswith("SHA256:")
    private = asyncssh.import_private_key(first.private_text)
    assert private.export_public_key().decode().split()[:2] == first.public_line.split()[:2]
    theirs = await tenant_key(other.id, BOX)
    assert theirs.public_line != first.public_line and theirs.public_line.endswith(" invoicebot-other-print-co")
    assert await SshKey.all().count() == 2


async def test_concurrent_first_use_creates_one_key_that_every_caller_gets(db, caplog):
    caplog.set_level(logging.INFO, logger="invoicing.integrations.xml_export.keys")
    tenant = await factories.tenant()
    keys = await asyncio.gather(*(tenant_key(tenant.id, BOX) for _ in range(6)))
    assert len({k.public_line for k in keys}) == 1 and len({k.private_text for k in keys}) == 1
    assert await SshKey.filter(tenant_id=tenant.id).count() == 1
    assert caplog.text.count("ssh key created") == 1  # the others lost the INSERT race and read the winner's row


async def test_the_private_key_is_stored_sealed_and_never_in_a_repr_or_a_log_line(db, caplog):
    caplog.set_level(logging.DEBUG)
    tenant = await factories.tenant()
    key = await tenant_key(tenant.id, BOX)
    rotated = await rotate_tenant_key(tenant.id, BOX)
    row = await SshKey.get(tenant_id=tenant.id)
    secrets = private_body(key.private_text) + private_body(rotated.private_text)
    assert secrets
    shown = caplog.text + repr(key) + str(key) + repr(rotated) + repr(row)
    assert not [line for line in secrets if line in shown]
    assert "PRIVATE KEY" not in row.private_sealed and not [s for s in secrets if s in row.private_sealed]
    assert "ssh key created" in caplog.text  # the log is there, with the fingerprint only


async def test_without_the_secret_key_no_key_is_created_and_a_sealed_key_does_not_open(db):
    tenant = await factories.tenant()
    with pytest.raises(SecretsUnavailable, match="INVOICEBOT_SECRET_KEY"):
        await tenant_key(tenant.id, SecretBox(None))
    assert await SshKey.all().count() == 0
    await tenant_key(tenant.id, BOX)
    with pytest.raises(SecretsUnavailable):
        await tenant_key(tenant.id, SecretBox(None))
    with pytest.raises(SecretUnreadable):  # under another key (e.g. the setting was replaced, not rotated)
        await tenant_key(tenant.id, SecretBox(new_key()))


async def test_a_sealed_key_copied_to_another_tenant_does_not_open(db):
    inkwell, other = await factories.tenant("inkwell"), await factories.tenant("other")
    await tenant_key(inkwell.id, BOX)
    await tenant_key(other.id, BOX)
    stolen = (await SshKey.get(tenant_id=inkwell.id)).private_sealed
    await SshKey.filter(tenant_id=other.id).update(private_sealed=stolen)
    with pytest.raises(SecretUnreadable):
        await tenant_key(other.id, BOX)


async def test_rotation_replaces_the_pair_and_the_old_key_no_longer_logs_in(db, tmp_path: Path):
    tenant = await factories.tenant()
    old = await tenant_key(tenant.id, BOX)
    new = await rotate_tenant_key(tenant.id, BOX)
    assert new.public_line != old.public_line and await tenant_key(tenant.id, BOX) == new
    assert (await SshKey.get(tenant_id=tenant.id)).rotated_at is not None
    (tmp_path / "upload").mkdir()
    source = tmp_path / "x.xml"
    source.write_bytes(b"<orders/>\n")
    async with SftpServer(tmp_path, {"acme": UserAuth(keys=[new.public_line])}) as server:
        target = SftpTarget("127.0.0.1", server.port, "acme", "/upload", server.host_key_line, new.private_text, None)
        await upload(target, "a.xml", source)  # the tenant key, installed as /invoicing xml key shows it, logs in
        with pytest.raises(Exception, match=r"\(auth\)"):
            await upload(SftpTarget("127.0.0.1", server.port, "acme", "/upload", server.host_key_line,
                                    old.private_text, None), "b.xml", source)
    assert (tmp_path / "upload" / "a.xml").exists() and not (tmp_path / "upload" / "b.xml").exists()
