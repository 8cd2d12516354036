"""The real bolt app over HTTP, with signed requests and a fake Slack Web API."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from models import AuditEntry, Company, Invoice, Tenant
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.fakes.slack_api import text_of


@pytest.fixture
async def slack(db):
    harness = await start_harness()
    yield harness
    await stop_harness(harness)


@pytest.fixture
async def tenant(db):
    return await f.tenant(team="T1")


async def test_a_signed_request_is_handled(slack: SlackHarness, tenant):
    reply = await slack.reply("help")
    assert "/invoicing commands" in text_of(reply)
    assert reply["response_type"] == "ephemeral"


async def test_a_wrong_signature_is_rejected_with_401_and_changes_nothing(slack: SlackHarness, tenant):
    response = await slack.command("company add evil name=Evil country=GB currency=GBP", secret="wrong")
    assert response.status == 401
    assert await Company.all().count() == 0
    assert slack.fake.calls == []


async def test_a_timestamp_older_than_five_minutes_is_rejected(slack: SlackHarness, tenant):
    response = await slack.command("company add evil name=Evil country=GB currency=GBP",
                                   timestamp=int(time.time()) - 6 * 60)
    assert response.status == 401
    assert await Company.all().count() == 0


async def test_an_unknown_workspace_gets_a_setup_hint(slack: SlackHarness, tenant):
    reply = await slack.reply("companies", team="T999")
    assert "invoicebot tenant create NAME --slack-team T999" in reply["text"]


async def test_unknown_command_answers_with_help(slack: SlackHarness, tenant):
    reply = await slack.reply("frobnicate")
    assert "Unknown command 'frobnicate'." in text_of(reply)
    assert "/invoicing help" in text_of(reply)


async def test_company_add_by_an_admin_creates_it_and_audits(slack: SlackHarness, tenant):
    reply = await slack.reply('company add acme name=“Acme Gifts Ltd” country=GB currency=GBP '
                              'timezone=Europe/London channel=<#C0BILL|billing>')
    assert "Added *acme* — Acme Gifts Ltd (GB, GBP, Europe/London)" in text_of(reply)
    company = await Company.get(short_name="acme")
    assert company.slack_channel == "C0BILL"
    entry = await AuditEntry.get(action="company.add")
    assert entry.actor == "slack:UADMIN" and entry.new["name"] == "Acme Gifts Ltd"


async def test_a_non_admin_cannot_change_configuration(slack: SlackHarness, tenant):
    reply = await slack.reply("company add acme name=Acme country=GB currency=GBP", user="UMEMBER")
    assert ("Only workspace admins or InvoiceBot admins of inkwell can add companies."
            in text_of(reply))
    assert await Company.all().count() == 0
    assert [c.params["user"] for c in slack.fake.received("users.info")] == ["UMEMBER"]


async def test_a_tenant_admin_list_member_may_change_configuration(slack: SlackHarness, tenant):
    await slack.reply("admins add <@UDANA>")
    reply = await slack.reply("company add acme name=Acme country=GB currency=GBP", user="UDANA")
    assert "Added *acme*" in text_of(reply)


async def test_company_add_with_bad_input_says_what_is_wrong_and_changes_nothing(slack: SlackHarness, tenant):
    reply = await slack.reply("company add acme name=Acme country=GB currency=GBX")
    assert "currency: 'GBX' is not an ISO 4217 currency code; use e.g. GBP, EUR or USD" in text_of(reply)
    assert "Usage: `/invoicing company add <co>" in text_of(reply)
    reply = await slack.reply("company add acme name=Acme country=GB currency=GBP timezone=Mars/Base")
    assert "'Mars/Base' is not an IANA time zone" in text_of(reply)
    assert await Company.all().count() == 0


async def test_another_workspace_never_sees_our_companies(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    await f.tenant("other", team="T2")
    reply = await slack.reply("accounting acme", team="T2")
    assert "No company 'acme' in other." in text_of(reply)
    reply = await slack.reply("companies", team="T2")
    assert "acme" not in text_of(reply)


async def test_seller_set_validates_everything_before_writing(slack: SlackHarness, tenant):
    reply = await slack.reply('seller set legal_name="New Name Ltd" vat_number=GB123')
    assert "vat_number: 'GB123' is not a valid GB VAT number" in text_of(reply)
    assert (await Tenant.get(id=tenant.id)).legal_name == "Inkwell Print & Ship Ltd"
    reply = await slack.reply('seller set legal_name="New Name Ltd" invoice_prefix=INK-')
    assert "legal_name: Inkwell Print & Ship Ltd → New Name Ltd" in text_of(reply)
    t = await Tenant.get(id=tenant.id)
    assert (t.legal_name, t.invoice_prefix) == ("New Name Ltd", "INK-")


async def test_seller_set_with_unquoted_spaces_explains_quoting(slack: SlackHarness, tenant):
    reply = await slack.reply("seller set legal_name=New Name Ltd")
    assert "put values with spaces in quotes" in text_of(reply)


async def test_accounting_show_and_set(slack: SlackHarness, tenant):
    await f.company(tenant, "acme", complete=False)
    reply = await slack.reply("accounting acme")
    assert "Missing for invoicing: *legal_name, address_line1, city, postcode, email*" in text_of(reply)
    reply = await slack.reply("accounting acme set email=<mailto:ap@acme.example|ap@acme.example> "
                              "legal_name=\"Acme Gifts Ltd\"")
    assert "email: ∅ → ap@acme.example" in text_of(reply)
    assert (await Company.get(short_name="acme")).email == "ap@acme.example"


async def test_accounting_edit_opens_a_prefilled_modal_and_submission_saves(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    response = await slack.command("accounting acme edit")
    assert response.status == 200
    [call] = await slack.fake.wait_for("views.open")
    view = call.params["view"]
    assert view["callback_id"] == "accounting_edit" and view["private_metadata"] == "acme"
    by_id = {b["block_id"]: b for b in view["blocks"]}
    assert by_id["legal_name"]["element"]["initial_value"] == "Acme Ltd"

    values = {b["block_id"]: {b["block_id"]: {"type": "plain_text_input", "value": b["element"].get("initial_value")}}
              for b in view["blocks"]}
    values["vat_number"]["vat_number"]["value"] = "GB123"
    payload = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "UADMIN"},
               "view": {**view, "id": "V1", "state": {"values": values}}}
    import json

    response = await slack.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert response.status == 200
    values["vat_number"]["vat_number"]["value"] = "GB980780684"
    values["city"]["city"]["value"] = "Bath"
    payload["view"]["state"]["values"] = values
    response = await slack.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert response.status == 200
    company = await Company.get(short_name="acme")
    assert (company.city, company.vat_number) == ("Bath", "GB980780684")


async def test_price_sets_a_retailer_price(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    reply = await slack.reply('price acme MUG cost=4.20 shipping=1.10 tax=20 name="Ceramic mug"')
    assert "MUG (Ceramic mug) — price for *acme*: cost £4.20 + shipping £1.10 per unit, VAT 20 %" in text_of(reply)
    reply = await slack.reply("price acme MUG cost=-1")
    assert "cost: must not be negative" in text_of(reply)


async def test_run_posts_the_result_in_the_channel(slack: SlackHarness, tenant):
    c = await f.company(tenant, "acme")
    await f.price(tenant, "MUG", "5.00", shipping="1.50")
    await f.order(c, quantity=2)
    await f.order(c, on_hold=True)
    response = await slack.command("run acme")
    assert response.status == 200
    [post] = await slack.fake.wait_for("chat.postMessage")
    assert post.params["channel"] == "CBILLING"
    shown = text_of(post.params)
    assert "acme — invoice 000001 issued" in shown
    assert "£13.00" in shown and "£2.60" in shown and "£15.60" in shown
    assert "1 × on hold" in shown
    assert await Invoice.all().count() == 1


async def test_run_dry_run_previews_without_issuing(slack: SlackHarness, tenant):
    c = await f.company(tenant, "acme")
    await f.price(tenant, "MUG", "5.00")
    await f.order(c)
    reply = await slack.reply("run acme dry-run")
    assert "Dry run: acme — invoice 000001 would issue" in text_of(reply)
    assert await Invoice.all().count() == 0


async def test_run_refused_names_the_missing_details(slack: SlackHarness, tenant):
    await f.company(tenant, "acme", complete=False)
    reply = await slack.reply("run acme")
    assert "company 'acme' is missing legal_name, address_line1, city, postcode, email" in text_of(reply)


async def test_audit_lists_changes_with_old_and_new_values(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    await slack.reply("accounting acme set city=Bath")
    reply = await slack.reply("audit acme")
    assert "accounting.set" in text_of(reply) and "city: Bristol → Bath" in text_of(reply)


async def test_long_lists_stay_within_slack_block_limits(slack: SlackHarness, tenant):
    for i in range(120):
        await f.company(tenant, f"shop{i:03d}")
    reply = await slack.reply("companies")
    assert len(reply["blocks"]) <= 50
    assert sum(len(str(b)) for b in reply["blocks"]) < 13000
    assert "1–40 of 120" in text_of(reply) and "shop039" in text_of(reply)
    assert "shop119" in text_of(await slack.reply("companies page=3"))  # tests/bot/test_pagination.py: the rest


async def test_orders_lists_which_invoice_each_order_is_on_and_filters(slack: SlackHarness, tenant):
    from invoicing.integrations.pdf_emailer.run import run_by_name

    c = await f.company(tenant, "acme")
    await f.price(tenant, "MUG", "5.00")
    billed = await f.order(c, ref="SO-1")
    await f.order(c, ref="SO-2", on_hold=True)
    await f.order(c, ref="SO-3", error="artwork missing")
    await run_by_name(tenant, "acme", clock=lambda: f.T0)
    shown = text_of(await slack.reply("orders acme invoiced"))
    assert "`SO-1`" in shown and "on *000001*" in shown and "SO-2" not in shown
    assert billed.external_ref == "SO-1"
    shown = text_of(await slack.reply("orders acme held"))
    assert "`SO-2`" in shown and "SO-1" not in shown and "on hold" in shown
    shown = text_of(await slack.reply("orders acme errors"))
    assert "`SO-3`" in shown and "artwork missing" in shown
    shown = text_of(await slack.reply("orders acme uninvoiced from=2026-11-01 to=2026-11-30"))
    assert "`SO-2`" in shown and "`SO-3`" in shown and "SO-1" not in shown


async def test_orders_paginates_within_slack_limits(slack: SlackHarness, tenant):
    c = await f.company(tenant, "acme")
    for n in range(60):
        await f.order(c, ref=f"SO-{n:03d}")
    first = await slack.reply("orders acme")
    assert "`SO-000`" in text_of(first) and "page=2" in text_of(first)
    third = await slack.reply("orders acme page=3")
    assert "`SO-050`" in text_of(third) and "page=4" not in text_of(third)
    assert len(first["blocks"]) <= 50


async def test_orders_with_a_bad_date_or_filter_says_how_to_fix_it(slack: SlackHarness, tenant):
    await f.company(tenant, "acme")
    assert "'2026-13-01' is not a date" in text_of(await slack.reply("orders acme from=2026-13-01"))
    assert "'paid' is not a filter" in text_of(await slack.reply("orders acme paid"))
    assert "'0' is not a page number" in text_of(await slack.reply("orders acme page=0"))


async def test_invoice_shows_the_summary_and_uploads_the_pdf(slack: SlackHarness, tenant):
    from invoicing.integrations.pdf_emailer.run import run_by_name

    c = await f.company(tenant, "acme")
    await f.price(tenant, "MUG", "5.00")
    await f.order(c, quantity=2)
    await run_by_name(tenant, "acme", clock=lambda: f.T0)
    response = await slack.command("invoice 000001")
    assert response.status == 200
    [upload] = await slack.fake.wait_for("upload")
    assert upload.body.startswith(b"%PDF")
    [complete] = await slack.fake.wait_for("files.completeUploadExternal")
    assert complete.params["channel_id"] == "CBILLING"
    [post] = slack.fake.received("chat.postMessage")
    assert "Invoice 000001 — acme" in text_of(post.params) and "£12.00" in text_of(post.params)
    shown = text_of(await slack.reply("invoices acme"))
    assert "*000001*" in shown and "£12.00" in shown
    assert "*000001*" in text_of(await slack.reply("invoices acme from=2026-11-01 to=2026-11-02"))
    assert "No invoices" in text_of(await slack.reply("invoices acme from=2026-11-03"))
    assert "'2026-13-01' is not a date" in text_of(await slack.reply("invoices acme to=2026-13-01"))
    shown = text_of(await slack.reply("invoice 999999"))
    assert "No invoice '999999' in inkwell" in shown


async def test_invoice_resend_is_for_admins_and_queues_a_new_email(db):
    import tempfile
    from pathlib import Path

    from commands.context import Services
    from invoicing.delivery.outbox import Outbox
    from invoicing.delivery.transport import FileTransport
    from invoicing.integrations.pdf_emailer.run import run_by_name
    from models import Delivery

    outbox = Outbox(FileTransport(Path(tempfile.mkdtemp())), lambda doc: b"%PDF", "invoices@inkwell.example")
    harness = await start_harness(services=Services(resend_invoice=outbox.resend))
    try:
        t = await f.tenant(team="T1")
        c = await f.company(t, "acme")
        await f.price(t, "MUG", "5.00")
        await f.order(c)
        await run_by_name(t, "acme", clock=lambda: f.T0)
        denied = text_of(await harness.reply("invoice 000001 resend", user="UMEMBER"))
        assert "can re-send invoices" in denied
        assert await Delivery.filter(kind="resend").count() == 0
        await harness.command("invoice 000001 resend")
        [post] = await harness.fake.wait_for("chat.postMessage")
        assert "will be e-mailed again to ap@acme.example" in text_of(post.params)
        resend = await Delivery.get(kind="resend")
        assert resend.message_id.endswith(".r1@inkwell.example>")
    finally:
        await stop_harness(harness)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("schedule now", "did not expect 'now'"),
        ("audit nope", "No company 'nope' in inkwell."),
        ("admins add dana", "'dana' is not a Slack user; mention them"),
        ("admins promote <@U1>", "unknown action 'promote'"),
        ("help frobnicate", "There is no command 'frobnicate'."),
        ('seller set legal_name="unclosed', "quote is not closed"),
        ("accounting acme set colour=red", "No company 'acme' in inkwell."),
        ("run", "company: is missing; give the company"),
        ("invoice", "invoice number: is missing"),
    ],
)
async def test_bad_input_to_every_command_gets_a_precise_message(slack: SlackHarness, tenant, text, expected):
    reply = await slack.reply(text)
    assert expected in text_of(reply)
    assert "Traceback" not in text_of(reply)


async def test_help_for_one_command_shows_its_usage_and_keys(slack: SlackHarness, tenant):
    shown = text_of(await slack.reply("help emailer"))
    assert "`/invoicing emailer <co> [enable | disable | set include_errors=" in shown
    assert "5-field cron" in shown
