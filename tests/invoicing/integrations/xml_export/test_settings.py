"""XML export settings: the emailer's timing rules, a usable destination before enabling, secrets sealed, blocks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from invoicing.errors import InvalidInput, NotEligible
from invoicing.integrations.xml_export import settings as xml_settings
from invoicing.secrets import SecretBox, SecretsUnavailable
from models import AuditEntry, XmlExport, XmlExportStatus
from tests import factories
from tests.invoicing.integrations.xml_export.helpers import BOX, at, row, setup

NOW = datetime(2026, 11, 25, 10, 20, tzinfo=UTC)  # a Wednesday
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl comment"


async def test_enable_runs_in_the_next_hour_then_weekly_like_the_emailer(db, tmp_path: Path):
    _, company = await setup(tmp_path)
    result = await xml_settings.enable(company, now=NOW, actor="test")
    assert result.enabled and result.next_run_at == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    changed = await xml_settings.configure(company, now=NOW, actor="test", box=BOX, schedule="daily",
                                           next="2026-12-01 09:00")
    assert (changed.schedule, changed.next_run_at) == ("daily", datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


async def test_an_sftp_destination_needs_a_pinned_host_key_before_enabling(db):
    tenant = await factories.tenant()
    company = await factories.company(tenant, "zeta")
    await xml_settings.configure(company, now=NOW, actor="test", box=BOX, host="files.example.com",
                                 username="acme", path="/upload")
    with pytest.raises(NotEligible, match="host key"):
        await xml_settings.enable(company, now=NOW, actor="test")
    pinned = await xml_settings.configure(company, now=NOW, actor="test", box=BOX, host_key=KEY)
    assert pinned.host_key == " ".join(KEY.split()[:2]) and pinned.host_key_fingerprint.startswith("SHA256:")
    assert (await xml_settings.enable(company, now=NOW, actor="test")).enabled


async def test_a_password_is_refused_without_the_secret_key_and_nothing_changes(db, tmp_path: Path):
    _, company = await setup(tmp_path)
    before = (await row(company)).settings
    with pytest.raises(SecretsUnavailable):
        await xml_settings.configure(company, now=NOW, actor="test", box=SecretBox(None), host="h.example.com",
                                     username="u", path="/p", auth="password", password="pw")
    assert (await row(company)).settings == before


async def test_bad_input_names_the_field_and_changes_nothing(db, tmp_path: Path):
    _, company = await setup(tmp_path)
    before = (await row(company)).settings
    audits = await AuditEntry.all().count()
    for bad in ({"port": "0"}, {"path": "relative/dir"}, {"host": "bad host"}, {"content": "csv"},
                {"auth": "token"}, {"host_key": "ssh-rsa nope"}, {"dir": "/x", "host": "h.example.com"}):
        with pytest.raises(InvalidInput):
            await xml_settings.configure(company, now=NOW, actor="test", box=BOX, **bad)
    assert (await row(company)).settings == before and await AuditEntry.all().count() == audits


async def test_a_destination_change_clears_a_block_and_requeues_failed_files(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="Q-1")
    from invoicing.integrations.xml_export.run import run_company

    await run_company(tenant, company, clock=lambda: at(1))
    integration = await row(company)
    await XmlExport.filter(company_id=company.id).update(status=XmlExportStatus.FAILED, error_kind="permission")
    assert await xml_settings.block(integration.id, kind="permission", message="denied", now=at(2))
    assert not await xml_settings.block(integration.id, kind="permission", message="denied", now=at(2))  # once
    await xml_settings.configure(company, now=at(3), actor="test", content="orders", box=BOX)  # not the destination
    assert (await xml_settings.settings(company)).blocked is not None
    other = tmp_path / "other"
    other.mkdir()
    await xml_settings.configure(company, now=at(3), actor="test", box=BOX, dir=str(other))
    assert (await xml_settings.settings(company)).blocked is None
    assert [e.status for e in await XmlExport.all()] == [XmlExportStatus.PENDING]


async def test_a_passing_test_after_a_server_side_fix_clears_the_block_and_requeues(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="Q-2")
    from invoicing.integrations.xml_export.run import run_company

    await run_company(tenant, company, clock=lambda: at(1))
    integration = await row(company)
    await XmlExport.filter(company_id=company.id).update(status=XmlExportStatus.FAILED, error_kind="permission")
    assert await xml_settings.block(integration.id, kind="permission", message="denied", now=at(2))
    assert await xml_settings.resume_after_test(company, now=at(3), actor="slack:UADMIN") == 1
    assert (await xml_settings.settings(company)).blocked is None
    assert [e.status for e in await XmlExport.all()] == [XmlExportStatus.PENDING]
    assert await AuditEntry.filter(action="xml.resume").count() == 1
    assert await xml_settings.resume_after_test(company, now=at(4), actor="slack:UADMIN") == 0  # nothing to do
    assert await AuditEntry.filter(action="xml.resume").count() == 1
