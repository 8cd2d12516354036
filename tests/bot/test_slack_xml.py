"""``/invoicing xml`` through the real Slack app: settings, admin only, test + Trust this key, run, key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from commands.clicks import action_id
from commands.context import Services
from commands.xml_notices import TRUST
from invoicing.integrations.xml_export import keys
from invoicing.secrets import SecretBox, new_key
from models import AuditEntry, Integration, IntegrationKind, XmlExport
from tests import factories as f
from tests.bot.slack_harness import start_harness, stop_harness
from tests.fakes.sftp_server import SftpServer, UserAuth
from tests.fakes.slack_api import text_of

NOW = datetime(2026, 11, 25, 10, 20, tzinfo=UTC)
BOX = SecretBox(new_key())


@pytest.fixture
async def slack(db):
    harness = await start_harness(services=Services(secret_box=BOX), clock=lambda: NOW)
    yield harness
    await stop_harness(harness)


@pytest.fixture
async def zeta(db):
    t = await f.tenant(team="T1")
    company = await f.company(t, "zeta")
    await f.price(t, "MUG", "4.50")
    return company


async def row(company) -> Integration:
    return await Integration.get(company_id=company.id, kind=IntegrationKind.XML_EXPORT)


async def click(slack, value: str, **kwargs) -> dict:
    """Press Trust this key and wait for the answer to the clicker."""
    before = len(slack.fake.received("response_url"))
    assert (await slack.click(action_id(TRUST), value, **kwargs)).status == 200
    return (await slack.fake.wait_for("response_url", before + 1))[before].params


def trust_value(reply: dict) -> str:
    for block in reply.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id(TRUST):
                return str(element["value"])
    raise AssertionError("no Trust this key button")


async def test_a_local_directory_export_from_slack_set_enable_run(slack, zeta, tmp_path: Path):
    shown = text_of(await slack.reply("xml zeta"))
    assert "XML export: zeta" in shown and "none (set host=" in shown
    refused = text_of(await slack.reply("xml zeta enable"))
    assert "no destination yet" in refused
    share = tmp_path / "share"
    share.mkdir()
    answer = text_of(await slack.reply(f"xml zeta set dir={share}"))
    assert share.as_uri() in answer
    assert "First export" in text_of(await slack.reply("xml zeta enable"))
    await f.order(zeta, ref="S-1", dispatched_at=datetime(2026, 11, 24, tzinfo=UTC))
    preview = text_of(await slack.reply("xml zeta run dry-run"))
    assert "Dry run: XML export zeta: 1 orders" in preview and await XmlExport.all().count() == 0
    done = text_of(await slack.reply("xml zeta run"))
    assert f"XML export zeta: 1 orders → {(share / 'inkwell-zeta-000001.xml').as_uri()}" in done
    assert await XmlExport.all().count() == 1
    actions = [e.action for e in await AuditEntry.filter(action__startswith="xml.").order_by("id")]
    assert actions == ["xml.set", "xml.enable"]


async def test_changes_need_an_admin_and_bad_input_changes_nothing(slack, zeta, tmp_path: Path):
    before = (await row(zeta)).settings
    answer = text_of(await slack.reply(f"xml zeta set dir={tmp_path}", user="UOPS"))
    assert "Only workspace admins" in answer
    answer = text_of(await slack.reply("xml zeta set host=files.example.com port=99999 username=acme path=/up"))
    assert "port" in answer and "out of range" in answer
    answer = text_of(await slack.reply('xml zeta set host_key="ssh-ed25519 not-a-key" path=/up'))
    assert "host_key" in answer
    assert (await row(zeta)).settings == before
    assert await AuditEntry.filter(action__startswith="xml.").count() == 0


async def test_a_password_is_sealed_never_shown_and_audited_as_changed(slack, zeta):
    await slack.reply("xml zeta set host=files.example.com username=acme path=/upload auth=password "
                      "password=s3cret-Pa55")
    stored = (await row(zeta)).settings
    assert stored["password"] != "s3cret-Pa55" and "s3cret" not in json.dumps(stored)
    assert BOX.open(stored["password"], purpose=f"sftp-password:{(await row(zeta)).id}") == "s3cret-Pa55"
    shown = text_of(await slack.reply("xml zeta"))
    assert "s3cret" not in shown and "password (set)" in shown
    [entry] = await AuditEntry.filter(action="xml.set")
    assert entry.new["password"] == "changed" and "s3cret" not in json.dumps([entry.old, entry.new])


async def test_test_offers_the_unknown_host_key_and_trust_pins_it_only_if_still_offered(slack, zeta, tmp_path):
    key = await keys.tenant_key(zeta.tenant_id, BOX)
    (tmp_path / "upload").mkdir()
    async with SftpServer(tmp_path, {"acme": UserAuth(keys=[key.public_line])}) as server:
        await slack.reply(f"xml zeta set host=127.0.0.1 port={server.port} username=acme path=/upload")
        answer = await slack.reply("xml zeta test")
        assert server.fingerprint in text_of(answer) and "host_key_unknown" in text_of(answer)
        value = trust_value(answer)
        assert "Only workspace admins" in text_of(await click(slack, value, user="UOPS"))
        assert (await row(zeta)).settings.get("host_key") is None
        forged = value.split("|")[0] + "|" + "ssh-ed25519 " + key.public_line.split()[1]  # not the server's key
        assert "nothing was pinned" in text_of(await click(slack, forged))
        assert (await row(zeta)).settings.get("host_key") is None
        assert "trusted by" in text_of(await click(slack, value))
        assert (await row(zeta)).settings["host_key"] == server.host_key_line
        works = text_of(await slack.reply("xml zeta test"))
        assert "works" in works and sorted(p.name for p in (tmp_path / "upload").iterdir()) == []


async def test_xml_key_shows_the_tenant_public_key_to_install(slack, zeta):
    shown = text_of(await slack.reply("xml key", user="UOPS"))
    key = await keys.tenant_key(zeta.tenant_id, BOX)
    assert key.public_line in shown and key.fingerprint in shown and "authorized_keys" in shown
