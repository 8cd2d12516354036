"""Connecting Xero through ``invoicebot serve``: Slack command → Xero's authorize page → ``/xero/callback``.

The whole service runs (its HTTP app with Slack and the callback), Slack is the local fake Web API and
Xero the local fake Xero (``tests.fakes.xero``), which checks every request against Xero's OpenAPI
spec. Both share one movable clock, so link expiry and token age are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest

from bot.app import Service
from bot.settings import Settings
from commands.xero import CHOOSE, DISCONNECT
from invoicing.integrations.xero.apps import save_app
from invoicing.secrets import SecretBox, new_key
from models import AuditEntry, XeroAuthState, XeroConnection, XeroConnectionStatus
from tests import factories as f
from tests.bot.slack_harness import SIGNING_SECRET, SlackHarness
from tests.bot.test_e2e import until
from tests.fakes.slack_api import FakeSlack, text_of
from tests.fakes.smtp import free_port
from tests.fakes.xero import FakeClock, FakeXero

KEY = new_key()
START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def world(db_url, tmp_path):
    clock = FakeClock(START)
    xero = await FakeXero(clock=clock).__aenter__()
    slack = await FakeSlack(admins={"UADMIN"}).start()
    port = free_port()
    settings = Settings(
        invoicebot_data_dir=tmp_path, database_url=db_url.url, host="127.0.0.1", port=port,
        slack_bot_token="xoxb-xero", slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url,
        invoicebot_secret_key=KEY, public_url=f"http://127.0.0.1:{port}", xero_login_url=xero.base_url,
        xero_identity_url=xero.base_url, xero_api_url=xero.base_url, xero_timeout_seconds=5,
    )
    service = Service(settings, clock=clock, scheduler_enabled=False)
    await service.start()
    assert service.poster is not None
    service.poster.min_interval = 0.0
    session = aiohttp.ClientSession()
    harness = SlackHarness(slack, f"http://127.0.0.1:{port}/slack/events", None, session, service.poster)  # type: ignore[arg-type]
    yield service, xero, harness, clock
    await session.close()
    await service.stop()
    await slack.stop()
    await xero.__aexit__(None, None, None)
    assert xero.validation_errors == []


async def _tenant_with_app(xero: FakeXero, team: str = "T1", name: str = "inkwell"):
    tenant = await f.tenant(name, team=team)
    app = xero.register_app()
    await save_app(tenant, client_id=app.client_id, client_secret=app.client_secret, legacy_scopes=False,
                   actor="slack:UADMIN", box=SecretBox(KEY))
    return tenant, app


async def _authorize_link(h: SlackHarness, text: str = "xero connect", **kwargs) -> str:
    answer = await h.reply(text, **kwargs)
    shown = text_of(answer)
    found = re.search(r"<(http[^|>]+)\|Open Xero and authorise>", str(answer))
    assert found, shown
    return found.group(1).replace("&amp;", "&")


async def _follow(h: SlackHarness, url: str) -> tuple[int, str, str]:
    """A browser: follow the authorize link (the fake redirects to our callback); the final status, page, URL."""
    async with h.session.get(url, allow_redirects=True) as page:
        return page.status, await page.text(), str(page.url)


async def test_connect_one_organisation_end_to_end(world):
    service, xero, h, clock = world
    tenant, app = await _tenant_with_app(xero)
    org = xero.add_organisation("Acme Ltd")
    xero.authorize_as("dana", [org])

    url = await _authorize_link(h)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert set(query["scope"][0].split()) == {"offline_access", "openid", "profile", "email", "accounting.invoices",
                                              "accounting.contacts"}
    assert query["redirect_uri"] == [f"http://127.0.0.1:{service.port}/xero/callback"]

    status, page, landed = await _follow(h, url)
    assert status == 200, page
    assert "Connected to Acme Ltd" in page
    code = parse_qs(urlsplit(landed).query)["code"][0]
    assert code not in page
    [row] = await XeroConnection.filter(tenant_id=tenant.id)
    assert (row.xero_tenant_id, row.organisation_name, row.status) == (org.tenant_id, "Acme Ltd", "connected")
    assert "accounting.invoices" in row.scopes
    assert row.access_token.startswith("v1:") and row.refresh_token.startswith("v1:")
    assert await AuditEntry.filter(tenant_id=tenant.id, action="xero.connect").count() == 1

    # the same callback again (a replay) is refused, and changes nothing
    status, page, _ = await _follow(h, landed)
    assert status == 400 and "used already" in page
    assert await XeroConnection.filter(tenant_id=tenant.id).count() == 1

    status_text = text_of(await h.reply("xero status"))
    assert "Acme Ltd" in status_text and "connected" in status_text and "accounting.invoices" in status_text


async def test_tampered_and_expired_states_are_refused(world):
    service, xero, h, clock = world
    tenant, _ = await _tenant_with_app(xero)
    xero.authorize_as("dana", [xero.add_organisation("Acme Ltd")])

    url = await _authorize_link(h)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = query["state"][:-2] + ("xy" if not query["state"].endswith("xy") else "ab")
    status, page, _ = await _follow(h, urlunsplit(parts._replace(query=urlencode(query))))
    assert status == 400 and "not one InvoiceBot made" in page

    late = await _authorize_link(h)
    clock.advance(11 * 60)
    status, page, _ = await _follow(h, late)
    assert status == 400 and "expired" in page
    assert await XeroConnection.filter(tenant_id=tenant.id).count() == 0


async def test_a_callback_with_a_foreign_or_script_state_shows_an_escaped_page(world):
    service, xero, h, clock = world
    evil = "<script>alert(1)</script>"
    async with h.session.get(f"http://127.0.0.1:{service.port}/xero/callback",
                             params={"state": evil, "code": "x", "error": evil}) as page:
        text = await page.text()
        assert page.status == 400 and "<script>" not in text
        assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"


async def test_several_organisations_are_chosen_with_a_button_by_the_same_user(world):
    service, xero, h, clock = world
    tenant, _ = await _tenant_with_app(xero)
    first, second = xero.add_organisation("Acme Ltd"), xero.add_organisation("Acme Holdings")
    xero.authorize_as("dana", [first, second])

    status, page, _ = await _follow(h, await _authorize_link(h))
    assert status == 200 and "Choose the organisation in Slack" in page
    assert await XeroConnection.filter(tenant_id=tenant.id).count() == 0
    [dm] = [c for c in await h.fake.wait_for("chat.postMessage") if c.params.get("channel") == "UADMIN"]
    buttons = [e for b in dm.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Acme Ltd", "Acme Holdings"]
    choice = next(b for b in buttons if b["text"]["text"] == "Acme Holdings")

    # another user of the workspace cannot use the button
    await h.click(choice["action_id"], choice["value"], user="UOTHER", channel="UADMIN")
    await h.fake.wait_for("response_url")
    assert await XeroConnection.filter(tenant_id=tenant.id).count() == 0

    await h.click(choice["action_id"], choice["value"], user="UADMIN", channel="UADMIN")
    await until(lambda: XeroConnection.filter(tenant_id=tenant.id).count(), timeout=10.0)
    [row] = await XeroConnection.filter(tenant_id=tenant.id)
    assert (row.organisation_name, row.xero_tenant_id) == ("Acme Holdings", second.tenant_id)
    assert choice["action_id"] == f"ib:{CHOOSE}"
    state = await XeroAuthState.get(tenant_id=tenant.id)
    assert state.pending_tokens == "" and state.chosen_at is not None


async def test_disconnect_revokes_at_xero_and_marks_the_connection_revoked(world):
    service, xero, h, clock = world
    tenant, app = await _tenant_with_app(xero)
    xero.authorize_as("dana", [xero.add_organisation("Acme Ltd")])
    await _follow(h, await _authorize_link(h))
    assert len(xero.connections_of("dana", app.client_id)) == 1

    prompt = await h.reply("xero disconnect")
    [button] = [e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == f"ib:{DISCONNECT}" and "confirm" in button
    await h.click(button["action_id"], button["value"])
    row = await until(lambda: XeroConnection.get_or_none(tenant_id=tenant.id, status=XeroConnectionStatus.REVOKED),
                    timeout=10.0)
    assert row.access_token == "" and row.refresh_token == ""
    assert xero.connections_of("dana", app.client_id) == []
    assert await AuditEntry.filter(tenant_id=tenant.id, action="xero.disconnect").count() == 1


async def test_another_tenant_neither_sees_nor_disconnects_the_connection(world):
    service, xero, h, clock = world
    tenant, _ = await _tenant_with_app(xero)
    xero.authorize_as("dana", [xero.add_organisation("Acme Ltd")])
    await _follow(h, await _authorize_link(h))
    [row] = await XeroConnection.filter(tenant_id=tenant.id)

    await f.tenant("other", team="T2")
    h.fake.admins.add("UB")
    shown = text_of(await h.reply("xero status", team="T2", user="UB"))
    assert "Acme Ltd" not in shown and "No Xero app" in shown
    await h.click(f"ib:{DISCONNECT}", str(row.id), team="T2", user="UB")
    await h.fake.wait_for("response_url")
    assert (await XeroConnection.get(id=row.id)).status == XeroConnectionStatus.CONNECTED


async def test_setup_form_stores_the_sealed_secret_and_only_admins_get_it(world):
    service, xero, h, clock = world
    tenant = await f.tenant(team="T1")
    await h.command("xero setup", user="UNOBODY")
    [refusal] = await h.fake.wait_for("response_url")
    assert "Only workspace admins" in text_of(refusal.params)

    await h.command("xero setup")
    [opened] = await h.fake.wait_for("views.open")
    view = opened.params["view"]
    status, ack = await h.submit_view(view, {"client_id": "ABCDEF0123456789", "client_secret": "x",
                                             "legacy_scopes": "no"})
    assert status == 200 and ack["response_action"] == "errors" and "client_secret" in ack["errors"]
    status, ack = await h.submit_view(view, {"client_id": "ABCDEF0123456789",
                                             "client_secret": "super-secret-value-123", "legacy_scopes": "yes"})
    assert status == 200 and ack == {}
    from models import XeroApp

    app = await XeroApp.get(tenant_id=tenant.id)
    assert app.client_id == "ABCDEF0123456789" and app.legacy_scopes
    assert "super-secret" not in app.client_secret
    [entry] = await AuditEntry.filter(tenant_id=tenant.id, action="xero.setup")
    assert "super-secret" not in str(entry.new) and "super-secret" not in str(entry.old)
    assert "super-secret" not in str([c.params for c in h.fake.calls])
    # an app of before 2 March 2026 asks for accounting.transactions
    query = parse_qs(urlsplit(await _authorize_link(h)).query)
    assert "accounting.transactions" in query["scope"][0].split()


async def test_a_lost_connection_is_announced_in_the_channel_it_was_made_in(world):
    service, xero, h, clock = world
    tenant, _ = await _tenant_with_app(xero)
    xero.authorize_as("dana", [xero.add_organisation("Acme Ltd")])
    await _follow(h, await _authorize_link(h, channel="CXERO"))
    [row] = await XeroConnection.filter(tenant_id=tenant.id)
    clock.advance(61 * 24 * 3600)  # its refresh token expired unused
    from invoicing.integrations.xero.errors import XeroConnectionBroken
    from invoicing.integrations.xero.tokens import access_token

    assert service.xero is not None
    with pytest.raises(XeroConnectionBroken):
        await access_token(row.id, box=service.xero.box, http=service.xero.http, clock=clock)
    await service.kick_outbox()
    posts = await h.fake.wait_for("chat.postMessage")
    [notice] = [p for p in posts if p.params.get("channel") == "CXERO"]
    shown = text_of(notice.params)
    assert "Acme Ltd" in shown and "/invoicing xero connect" in shown
    assert "broken" in text_of(await h.reply("xero status"))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
async def test_a_real_browser_follows_the_link_and_reads_the_callback_page(world, tmp_path):
    service, xero, h, clock = world
    await _tenant_with_app(xero)
    xero.authorize_as("dana", [xero.add_organisation("Acme & Sons <Ltd>")])
    url = await _authorize_link(h)
    browser = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        dom, _ = await asyncio.wait_for(browser.communicate(), timeout=90)
    finally:
        if browser.returncode is None:
            browser.kill()
    text = dom.decode()
    assert "Connected to Acme &amp; Sons &lt;Ltd&gt;" in text  # the name is shown as text, not markup
    assert "<ltd>" not in text.lower()
