"""Security checks: request signatures, tenant isolation, admin-only changes, secrets kept out of logs.

Two tenants share one database: inkwell (Slack team T1, company acme) and rival (team
T2, company beta, invoice RIV-000001). Every refusal is checked from outside — the HTTP
status or the Slack reply — and against a snapshot of every table: nothing changed.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from urllib.parse import urlencode

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from bot.settings import Settings
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.transport import SmtpTransport
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Company, Tenant
from tests import factories as f
from tests.bot.slack_harness import SIGNING_SECRET, SlackHarness, sign
from tests.factories import T0
from tests.fakes.smtp import free_port, start_server
from tests.invoicing.delivery.test_delivery import tiny_pdf
from tests.reliability.conftest import Feed, snapshot, text_of

ADMIN_REFUSAL = "Only workspace admins or InvoiceBot admins of inkwell can"

# --- request signatures ----------------------------------------------------------------------------


async def test_a_replayed_request_with_an_old_timestamp_is_401_and_changes_nothing(slack: SlackHarness):
    before = await snapshot()
    # A correctly signed request captured 6 minutes ago and sent again: the signature is valid
    # for that timestamp, but the 5-minute window has passed.
    response = await slack.command("company add evil name=Evil country=GB currency=GBP",
                                   timestamp=int(time.time()) - 6 * 60)
    assert response.status == 401
    response = await slack.command("admins add <@UEVIL>", timestamp=int(time.time()) + 6 * 60)  # from the future
    assert response.status == 401
    assert await snapshot() == before
    assert slack.fake.calls == []  # not even users.info: refused before any listener ran


async def test_a_body_re_signed_with_the_wrong_secret_is_401_and_changes_nothing(slack: SlackHarness):
    before = await snapshot()
    for secret in ["wrong-secret", SIGNING_SECRET + " ", ""]:
        response = await slack.command("seller set legal_name=Evil", secret=secret)
        assert response.status == 401, secret
    # A validly signed body altered afterwards (one character) is a wrong signature too.
    body = urlencode({"team_id": "T1", "user_id": "UADMIN", "command": "/invoicing", "text": "seller",
                      "response_url": slack.fake.response_url(), "channel_id": "CBILLING"})
    ts = int(time.time())
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
               "X-Slack-Signature": sign(body, ts)}
    tampered = body.replace("text=seller", "text=admins+add+UEVIL")
    async with slack.session.post(slack.url, data=tampered.encode(), headers=headers) as response:
        assert response.status == 401
    assert await snapshot() == before
    assert slack.fake.calls == []


async def test_a_team_id_of_another_tenant_reaches_only_what_that_team_is_linked_to(slack: SlackHarness, tenants):
    """The team id cannot be forged: it sits in the body, and the signature (HMAC of timestamp and
    body with the app's signing secret, which only Slack and we hold) covers the body. A request
    saying ``team_id=T2`` is therefore Slack telling us the user is in workspace T2 — so it gets
    exactly rival's view, never inkwell's data and never inkwell's admin rights."""
    inkwell, _ = tenants
    inkwell.admin_user_ids = ["UINK"]  # an InvoiceBot admin of inkwell only
    await inkwell.save()
    before = await snapshot()

    # Without the secret, a forged team id does not get in at all.
    assert (await slack.command("companies", team="T2", user="UINK", secret="guessed")).status == 401
    # Signed, with team T2: rival's companies only.
    shown = text_of(await slack.reply("companies", team="T2", user="UINK"))
    assert "beta" in shown and "acme" not in shown
    for text in ["accounting acme", "orders acme", "invoices acme", "run acme dry-run", "audit acme"]:
        assert "No company 'acme' in rival" in text_of(await slack.reply(text, team="T2", user="UINK")), text
    # inkwell's admin list gives no rights in rival.
    for text in ["seller set legal_name=Evil", "company add evil name=Evil country=GB currency=GBP",
                 "emailer beta enable", "admins add <@UINK>"]:
        assert "Only workspace admins or InvoiceBot admins of rival can" in text_of(
            await slack.reply(text, team="T2", user="UINK")), text
    # The accounting form: team T2 submitting inkwell's company short name.
    payload = {"type": "view_submission", "team": {"id": "T2"}, "user": {"id": "UADMIN"},
               "view": {"id": "V1", "type": "modal", "callback_id": "accounting_edit", "private_metadata": "acme",
                        "state": {"values": {"legal_name": {"legal_name": {"type": "plain_text_input",
                                                                           "value": "Evil Ltd"}}}}}}
    body = urlencode({"payload": json.dumps(payload)})
    ts = int(time.time())
    async with slack.session.post(slack.url, data=body.encode(), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(body, ts)}) as response:
        answer = await response.json()
    assert answer["response_action"] == "errors" and "No company 'acme' in rival" in json.dumps(answer)
    assert await snapshot() == before


# --- admin-only changes ----------------------------------------------------------------------------

MUTATING = [
    "seller set legal_name=Evil", "seller set invoice_prefix=EVIL-",
    "company add evil name=Evil country=GB currency=GBP timezone=UTC",
    "accounting acme set legal_name=Evil", "accounting acme edit",
    "emailer acme enable", "emailer acme disable", "emailer acme set bcc=evil@x.example schedule=hourly",
    "price default MUG cost=0.01", "price acme MUG cost=0.01 name=Cheap",
    "run acme", "invoice 000001 resend", "admins add <@UNOBODY>", "admins remove <@UINK>",
]


async def test_a_non_admin_is_refused_every_mutating_command_and_nothing_changes(slack: SlackHarness, tenants):
    inkwell, _ = tenants
    await run_by_name(inkwell, "acme", clock=lambda: T0)  # invoice 000001 exists (for resend)
    await f.order(await Company.get(tenant_id=inkwell.id, short_name="acme"))  # and run would have work to do
    inkwell = await Tenant.get(id=inkwell.id)
    inkwell.admin_user_ids = ["UINK"]
    await inkwell.save()
    await f.emailer(await Company.get(tenant_id=inkwell.id, short_name="acme"), enabled=True)  # so disable would act
    before = await snapshot()

    for text in MUTATING:
        shown = text_of(await slack.reply(text, user="UNOBODY"))
        assert ADMIN_REFUSAL in shown, (text, shown)

    assert await snapshot() == before
    assert slack.fake.received("views.open") == [] and slack.fake.received("chat.postMessage") == []
    assert {c.params["user"] for c in slack.fake.received("users.info")} == {"UNOBODY"}  # asked Slack, was told no


# --- cross-tenant ids ------------------------------------------------------------------------------

ORDER = {"items": [{"sku": "MUG", "quantity": 1}], "status": "dispatched", "dispatched_at": "2026-11-01T10:00:00Z",
         "on_hold": False, "error": None,
         "ship_to": {"name": "J", "line1": "1 St", "city": "Leeds", "postcode": "LS1 1AA", "country": "GB"}}


async def test_every_feed_endpoint_answers_404_for_another_tenants_ids(feed: Feed):
    before = await snapshot()
    calls = [
        ("PUT", "/orders/beta/RIV-ORD-1", ORDER),
        ("PUT", "/orders/acme/RIV-ORD-1", {**ORDER, "previous_company": "beta"}),
        ("POST", "/orders:batch", {"orders": [{**ORDER, "company": "beta", "ref": "RIV-ORD-1"}]}),
        ("GET", "/orders?company=beta", None),
        ("GET", "/invoices/RIV-000001", None),
        ("GET", "/invoices/RIV-000001.pdf", None),
    ]
    for method, path, body in calls:
        reply = await feed.call(method, path, body)
        assert reply.status == 404, (method, path, reply.body)
        assert "RIV-ORD-1" not in json.dumps(reply.body) and "Beta Ltd" not in json.dumps(reply.body)
    reply = await feed.call("PUT", "/products/MUG", {"name": "Mug", "prices": [
        {"retailer": "beta", "cost_price": "0.01", "shipping": "0", "tax_rate": "0"}]})
    assert reply.status == 422 and "no company 'beta' in inkwell" in json.dumps(reply.body)
    # The rival's own token sees its data (the 404s above are about tenancy, not existence).
    assert (await feed.call("GET", "/invoices/RIV-000001", token=feed.rival_token)).status == 200
    assert await snapshot() == before

    # PUT /companies/beta creates inkwell's *own* beta; rival's beta is untouched.
    rival_beta = await Company.get(tenant_id=feed.rival.id, short_name="beta").values()
    reply = await feed.call("PUT", "/companies/beta", {"name": "Other Beta", "country": "GB", "currency": "GBP",
                                                       "timezone": "UTC"})
    assert reply.status == 201
    assert await Company.get(tenant_id=feed.rival.id, short_name="beta").values() == rival_beta
    assert (await Company.get(tenant_id=feed.tenant.id, short_name="beta")).name == "Other Beta"


CROSS_TENANT_COMMANDS = [
    "accounting beta", "accounting beta set legal_name=Evil", "accounting beta edit", "emailer beta",
    "emailer beta enable", "emailer beta set bcc=evil@x.example", "orders beta", "run beta", "run beta dry-run",
    "invoices beta", "audit beta", "price beta MUG cost=0.01",
]


async def test_every_slack_command_refuses_another_tenants_companies_and_invoices(slack: SlackHarness):
    before = await snapshot()
    for text in CROSS_TENANT_COMMANDS:  # UADMIN: a workspace admin of T1 (inkwell)
        shown = text_of(await slack.reply(text))
        assert "no company 'beta' in inkwell" in shown.lower(), (text, shown)
    for text in ["invoice RIV-000001", "invoice RIV-000001 resend"]:
        shown = text_of(await slack.reply(text))
        assert "No invoice 'RIV-000001' in inkwell" in shown, (text, shown)
    assert await snapshot() == before
    assert slack.fake.received("views.open") == [] and slack.fake.received("chat.postMessage") == []


# --- secrets stay out of logs ----------------------------------------------------------------------

SMTP_USER, SMTP_PASSWORD = "mailer", "smtp-Pa55-w0rd-9f3e"
BOT_TOKEN = "xoxb-test-token"  # the harness's bot token


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # a local test server
async def test_tokens_and_passwords_never_reach_the_logs_or_the_settings_repr(feed: Feed, slack: SlackHarness,
                                                                               caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    logins: list[bytes] = []

    def authenticator(server, session, envelope, mechanism, auth_data: LoginPassword) -> AuthResult:
        logins.append(auth_data.password)
        return AuthResult(success=auth_data.password == SMTP_PASSWORD.encode())

    controller, _ = start_server(free_port(), authenticator=authenticator, auth_required=True,
                                      auth_require_tls=False)
    try:
        assert (await feed.call("PUT", "/orders/acme/LOG-1", ORDER)).status == 201
        assert (await feed.call("GET", "/orders?company=acme")).status == 200
        assert "Seller" in text_of(await slack.reply("seller"))
        transport = SmtpTransport("127.0.0.1", controller.port, username=SMTP_USER, password=SMTP_PASSWORD,
                                  security="none", timeout=5, local_hostname="localhost")
        outcomes = await Outbox(transport, tiny_pdf, "invoices@inkwell.example", lambda: T0).deliver_due()
        await transport.close()
    finally:
        controller.stop()
    assert [o.status for o in outcomes] == ["sent"] and logins == [SMTP_PASSWORD.encode()]

    settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD,
                        slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_app_token="xapp-1-secret")
    secrets = [feed.token, feed.rival_token, SMTP_PASSWORD, BOT_TOKEN, SIGNING_SECRET, "xapp-1-secret",
               base64.b64encode(SMTP_PASSWORD.encode()).decode(),  # AUTH LOGIN
               base64.b64encode(f"\0{SMTP_USER}\0{SMTP_PASSWORD}".encode()).decode()]  # AUTH PLAIN
    logged = "\n".join([caplog.text, *(repr(r.args) for r in caplog.records),
                        *(repr(r.__dict__) for r in caplog.records)])
    assert len(caplog.records) > 10  # the requests above did log (at DEBUG, plenty)
    for secret in secrets:
        assert secret not in logged, secret
        assert secret not in repr(settings) and secret not in str(settings) and secret not in repr(transport)
        assert secret not in settings.model_dump_json()
