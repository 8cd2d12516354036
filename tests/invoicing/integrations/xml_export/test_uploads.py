"""The upload outbox against a real SFTP server: in order, exactly one final file, retries, blocks, notices."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from invoicing.integrations.xml_export import keys
from invoicing.integrations.xml_export import run as xml_run
from invoicing.integrations.xml_export import settings as xml_settings
from invoicing.integrations.xml_export.destinations import upload
from invoicing.integrations.xml_export.uploads import Uploads
from invoicing.integrations.xml_export.validation import validate_orders_file
from models import Company, NoticeKind, SlackNotice, Tenant, XmlExport, XmlExportStatus
from tests import factories
from tests.fakes.sftp_server import SftpServer, UserAuth
from tests.invoicing.integrations.xml_export.helpers import BOX, at, xml_of


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def world(db, tmp_path: Path) -> AsyncIterator[tuple[Tenant, Company, SftpServer]]:
    tenant = await factories.tenant()
    company = await factories.company(tenant, "zeta")
    company.slack_channel = "#billing"
    await company.save()
    await factories.price(tenant, "MUG", "4.50")
    key = await keys.tenant_key(tenant.id, BOX)
    root = tmp_path / "root"
    (root / "upload").mkdir(parents=True)
    async with SftpServer(root, {"acme": UserAuth(keys=[key.public_line])}) as server:
        await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX, host="127.0.0.1",
                                     port=str(server.port), username="acme", path="/upload",
                                     host_key=server.host_key_line)
        yield tenant, company, server


async def export(tenant: Tenant, company: Company, *refs: str, hours: float = 1) -> XmlExport:
    for ref in refs:
        await factories.order(company, ref=ref)
    await xml_run.run_company(tenant, company, clock=lambda: at(hours), actor="test")
    return await XmlExport.filter(company_id=company.id).order_by("-sequence").first()  # type: ignore[return-value]


def arrived(server: SftpServer) -> list[str]:
    return sorted(os.listdir(server.root / "upload"))


async def test_files_arrive_in_sequence_order_complete_and_valid(world, tmp_path: Path):
    tenant, company, server = world
    first = await export(tenant, company, "A-1", "A-2", hours=1)
    second = await export(tenant, company, "A-3", hours=2)
    order: list[str] = []

    async def recording(target, name, source, **kw):
        order.append(name)
        return await upload(target, name, source, **kw)

    outcomes = await Uploads(BOX, clock=Clock(at(3)), upload=recording).upload_due()
    assert [o.status for o in outcomes] == [XmlExportStatus.SENT, XmlExportStatus.SENT]
    assert order == [first.file_name, second.file_name]
    assert arrived(server) == [first.file_name, second.file_name]
    path = server.root / "upload" / first.file_name
    validate_orders_file(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first.sha256
    row = await XmlExport.get(id=first.id)
    assert row.status == XmlExportStatus.SENT and row.location == f"sftp://127.0.0.1:{server.port}/upload/" \
        f"{first.file_name}"


async def test_a_crash_after_the_upload_uploads_the_same_bytes_again_under_the_same_name(world):
    tenant, company, server = world
    first = await export(tenant, company, "K-1")
    clock = Clock(at(2))

    async def dies_after_upload(target, name, source, **kw):
        await upload(target, name, source, **kw)
        raise asyncio.CancelledError  # the process stopped before it could record "sent"

    with pytest.raises(asyncio.CancelledError):
        await Uploads(BOX, clock=clock, upload=dies_after_upload, lease_seconds=60).upload_due()
    assert (await XmlExport.get(id=first.id)).status == XmlExportStatus.SENDING
    before = (server.root / "upload" / first.file_name).read_bytes()
    assert await Uploads(BOX, clock=clock, lease_seconds=60).upload_due() == []  # leased: nobody doubles it
    clock.advance(61)
    [outcome] = await Uploads(BOX, clock=clock, lease_seconds=60).upload_due()
    assert outcome.status == XmlExportStatus.SENT and outcome.attempts == 2
    assert arrived(server) == [first.file_name]
    assert (server.root / "upload" / first.file_name).read_bytes() == before == xml_of(first)


async def test_a_server_that_is_down_is_retried_and_the_channel_hears_of_failure_and_recovery_once(world):
    tenant, company, server = world
    first = await export(tenant, company, "D-1")
    second = await export(tenant, company, "D-2", hours=2)
    clock = Clock(at(3))
    worker = Uploads(BOX, clock=clock, base_backoff_seconds=10, timeout=5)
    await server.stop()
    [outcome] = await worker.upload_due()  # the later file waits behind the first
    assert outcome.status == XmlExportStatus.PENDING and outcome.export_id == first.id
    clock.advance(11)
    [again] = await worker.upload_due()
    assert again.status == XmlExportStatus.PENDING
    assert await SlackNotice.filter(kind=NoticeKind.XML_FAILING).count() == 1
    assert (await XmlExport.get(id=second.id)).attempts == 0
    await server.start()
    clock.advance(30)
    outcomes = await worker.upload_due()
    assert [(o.export_id, o.status) for o in outcomes] == [(first.id, XmlExportStatus.SENT),
                                                           (second.id, XmlExportStatus.SENT)]
    [recovered] = await SlackNotice.filter(kind=NoticeKind.XML_RECOVERED)
    assert recovered.dedupe_key == f"xml-recovered:{first.id}"


async def test_a_changed_host_key_blocks_until_the_settings_change_and_offers_the_key_to_trust(world):
    tenant, company, server = world
    other = await SftpServer(server.root, server.users).__aenter__()  # a different host key, same files
    try:
        await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX, port=str(other.port))
        await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX,
                                     host_key=server.host_key_line)
        first = await export(tenant, company, "H-1")
        clock = Clock(at(2))
        worker = Uploads(BOX, clock=clock)
        [outcome] = await worker.upload_due()
        assert outcome.status == XmlExportStatus.FAILED
        row = await XmlExport.get(id=first.id)
        assert row.error_kind == "host_key_changed"
        [notice] = await SlackNotice.filter(kind=NoticeKind.XML_BLOCKED)
        assert notice.payload["offered_key"] == other.host_key_line
        assert notice.payload["fingerprint"] == other.fingerprint
        blocked = (await xml_settings.settings(company)).blocked
        assert blocked is not None and blocked.kind == "host_key_changed"
        clock.advance(7200)
        assert await worker.upload_due() == []  # blocked: no retry by time alone
        assert arrived(server) == []

        await xml_settings.trust_host_key(company, other.host_key_line, now=clock(), actor="test")
        assert (await xml_settings.settings(company)).blocked is None
        [sent] = await worker.upload_due()
        assert sent.status == XmlExportStatus.SENT and arrived(server) == [first.file_name]
    finally:
        await other.stop()


async def test_a_refused_key_blocks_and_a_read_only_directory_blocks(world):
    tenant, company, server = world
    server.users["acme"] = UserAuth(keys=[])  # the tenant key was removed from authorized_keys
    first = await export(tenant, company, "P-1")
    worker = Uploads(BOX, clock=Clock(at(2)))
    [outcome] = await worker.upload_due()
    assert outcome.status == XmlExportStatus.FAILED and (await XmlExport.get(id=first.id)).error_kind == "auth"
    key = await keys.tenant_key(tenant.id, BOX)
    server.users["acme"] = UserAuth(keys=[key.public_line])
    server.read_only("/upload")
    try:
        await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX, username="acme ")
        assert (await XmlExport.get(id=first.id)).status == XmlExportStatus.FAILED  # same value: not a change
        await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX, path="/upload/")
        # "/upload/" is stored as "/upload": no change either; an explicit re-pin is a change of the key
        await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX, auth="key",
                                     host_key="none")
        await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX,
                                     host_key=server.host_key_line)
        [again] = await worker.upload_due()
        assert again.status == XmlExportStatus.FAILED
        assert (await XmlExport.get(id=first.id)).error_kind == "permission"
    finally:
        server.read_only("/upload", False)
