"""Buttons on an issued invoice's notice (issue 13, item 5): PDF, Orders, Resend.

Clicks are signed ``block_actions`` requests to the real bolt app; what Slack received
(uploads, ``chat.update``, ephemeral answers) is read from the fake Web API, and the
e-mails queued from the database. Both backends.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from bot.notifier import SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from commands.context import Services
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.slack_notices import NoticeOutbox
from invoicing.delivery.transport import FileTransport
from invoicing.errors import Conflict
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Company, Delivery, DeliveryKind
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.factories import T0
from tests.fakes.slack_api import text_of

CHANNEL = "CBILLING"


def outbox() -> Outbox:
    return Outbox(FileTransport(Path(tempfile.mkdtemp())), lambda doc: b"%PDF", "invoices@inkwell.example",
                  lambda: T0)


@pytest.fixture
async def slack(db):
    harness = await start_harness(services=Services(resend_invoice=outbox().resend), admins={"UADMIN", "UDANA"},
                                  clock=lambda: T0)
    yield harness
    await stop_harness(harness)


@pytest.fixture
async def acme(db):
    t = await f.tenant(team="T1")
    c = await f.company(t, "acme")
    c.slack_channel = CHANNEL
    await c.save()
    await f.price(t, "MUG", "5.00")
    return c


async def issued(slack: SlackHarness, acme: Company, orders: int = 2) -> dict:
    """Run acme from its channel; the run's message as the channel has it."""
    for _ in range(orders):
        await f.order(acme)
    before = len(slack.fake.received("chat.postMessage"))
    await slack.command("run acme", channel=CHANNEL)
    await slack.fake.wait_for("chat.postMessage", before + 1)
    return slack.fake.posts(CHANNEL)[-1]


def buttons(message: dict) -> dict[str, dict]:
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


async def press(slack: SlackHarness, message: dict, action: str, **kwargs):
    element = buttons(message)[action]
    kwargs.setdefault("channel", CHANNEL)
    response = await slack.click(action, element["value"], message_ts=message["ts"],
                                 message_blocks=message["blocks"], **kwargs)
    assert response.status == 200
    return response


async def answer(slack: SlackHarness, count: int = 1) -> dict:
    """The ``count``-th ephemeral answer to a click (via its response_url)."""
    calls = await slack.fake.wait_for("response_url", count)
    return calls[count - 1].params


async def test_an_issued_invoice_is_announced_with_pdf_orders_and_resend(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    shown = buttons(message)
    assert list(shown) == ["ib:invoice_pdf", "ib:invoice_orders", "ib:invoice_resend", "ib:credit_open"]
    assert {e["value"] for e in shown.values()} == {"000001"}
    confirm = shown["ib:invoice_resend"]["confirm"]
    assert confirm["title"]["text"] == "Resend this invoice?" and confirm["confirm"]["text"] == "Resend"


async def test_a_dry_run_and_a_run_with_nothing_to_invoice_have_no_buttons(slack: SlackHarness, acme):
    await f.order(acme)
    preview = await slack.reply("run acme dry-run", channel=CHANNEL)
    assert not [b for b in preview["blocks"] if b["type"] == "actions"]
    await issued(slack, acme, orders=0)  # invoices the order above
    await slack.command("run acme", channel=CHANNEL)
    [_, nothing] = await slack.fake.wait_for("chat.postMessage", 2)
    assert "no eligible orders" in text_of(nothing.params)
    assert not [b for b in nothing.params["blocks"] if b["type"] == "actions"]


async def test_the_notice_posted_by_the_notice_outbox_has_the_buttons_too(slack: SlackHarness, acme):
    await f.order(acme)
    await run_by_name(await acme.tenant, "acme", clock=lambda: T0)
    channel = SlackNoticeChannel(notice_client("xoxb-test", slack.fake.api_url),
                                 ChannelPoster(web_client("xoxb-test", slack.fake.api_url), min_interval=0))
    await NoticeOutbox(channel, lambda: T0).deliver_due()
    [posted] = slack.fake.posts(CHANNEL)
    assert "ib:invoice_resend" in buttons(posted)


async def test_pdf_uploads_the_stored_invoice_into_the_channel(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    await press(slack, message, "ib:invoice_pdf", user="UMEMBER")
    [done] = await slack.fake.wait_for("files.completeUploadExternal")
    assert done.params["channel_id"] == CHANNEL
    assert "Invoice 000001 (PDF), asked for by <@UMEMBER>" in done.params["initial_comment"]
    [upload] = slack.fake.received("upload")
    assert upload.body.startswith(b"%PDF")
    assert len(slack.fake.received("chat.postMessage")) == 1  # the file alone, no second message


async def test_pdf_is_sent_as_a_dm_when_the_channel_refuses_it(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    slack.fake.script("files.completeUploadExternal", 200, {"ok": False, "error": "not_in_channel"})
    await press(slack, message, "ib:invoice_pdf", user="UMEMBER")
    calls = await slack.fake.wait_for("files.completeUploadExternal", 2)
    assert calls[1].params["channel_id"] == "DUMEMBER"
    assert "could not post it in <#CBILLING>: not_in_channel" in calls[1].params["initial_comment"]
    [opened] = slack.fake.received("conversations.open")
    assert opened.params["users"] == "UMEMBER"


async def test_pdf_from_the_app_home_is_sent_as_a_dm(slack: SlackHarness, acme):
    await issued(slack, acme)
    await slack.click("ib:invoice_pdf", "000001", user="UMEMBER", on_home=True)
    [done] = await slack.fake.wait_for("files.completeUploadExternal")
    assert done.params["channel_id"] == "DUMEMBER"


async def test_orders_lists_the_invoices_orders_to_the_clicker_only(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    await f.order(acme, ref="NOT-ON-IT")
    await press(slack, message, "ib:invoice_orders", user="UMEMBER")
    reply = await answer(slack)
    shown = text_of(reply)
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert "Orders on invoice 000001 (acme)" in shown and "1–2 of 2 · page 1 of 1" in shown
    assert shown.count("on *000001*") == 2 and "NOT-ON-IT" not in shown
    assert slack.fake.received("chat.update") == []


async def test_a_long_invoice_says_how_many_orders_and_which_command_shows_the_rest(slack: SlackHarness, acme):
    message = await issued(slack, acme, orders=30)
    await press(slack, message, "ib:invoice_orders")
    shown = text_of(await answer(slack))
    assert "1–25 of 30 · page 1 of 2 · next: `/invoicing orders acme invoice=000001 page=2`" in shown
    assert shown.count("on *000001*") == 25
    rest = text_of(await slack.reply("orders acme invoice=000001 page=2", channel=CHANNEL))
    assert rest.count("on *000001*") == 5


async def test_resend_by_an_admin_queues_one_email_and_marks_the_message(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    await press(slack, message, "ib:invoice_resend", user="UDANA")
    [update] = await slack.fake.wait_for("chat.update")
    assert update.params["ts"] == message["ts"]
    now = slack.fake.message(CHANNEL, message["ts"])
    assert "Resent to ap@acme.example by <@UDANA> at 09:00 GMT" in text_of(now)
    assert list(buttons(now)) == ["ib:invoice_pdf", "ib:invoice_orders", "ib:credit_open"]  # Resend gone
    assert "invoice 000001 issued" in text_of(now)  # the announcement itself is kept
    [resend] = await Delivery.filter(kind=DeliveryKind.RESEND)
    assert resend.to_addr == "ap@acme.example" and resend.dedupe_key == f"resend-click:{CHANNEL}:{message['ts']}"


async def test_resend_by_a_non_admin_is_refused_and_changes_nothing(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    await press(slack, message, "ib:invoice_resend", user="UMEMBER")
    shown = text_of(await answer(slack))
    assert "Only workspace admins or InvoiceBot admins of inkwell can re-send invoices." in shown
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 0
    assert slack.fake.received("chat.update") == []
    assert "ib:invoice_resend" in buttons(slack.fake.message(CHANNEL, message["ts"]))


async def test_two_admins_clicking_resend_at_once_queue_exactly_one_email(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    await asyncio.gather(press(slack, message, "ib:invoice_resend", user="UADMIN"),
                         press(slack, message, "ib:invoice_resend", user="UDANA"))
    await slack.fake.wait_for("chat.update")
    loser = text_of(await answer(slack))
    assert "Invoice 000001 was already queued for sending again from this message" in loser
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 1
    assert len(slack.fake.received("chat.update")) == 1


async def test_the_resend_key_holds_for_many_concurrent_callers(db, acme):
    await f.order(acme)
    await run_by_name(await acme.tenant, "acme", clock=lambda: T0)
    mail = outbox()
    results = await asyncio.gather(*(mail.resend("000001", acme.tenant_id, dedupe_key="resend-click:C1:1.2")
                                     for _ in range(6)), return_exceptions=True)
    assert sum(isinstance(r, Delivery) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 5
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 1


async def test_another_workspace_cannot_see_or_resend_this_tenants_invoice(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    await f.tenant("other", team="T2")
    for count, action in enumerate(["ib:invoice_pdf", "ib:invoice_orders", "ib:invoice_resend"], start=1):
        await press(slack, message, action, team="T2", user="UADMIN")
        assert "No invoice '000001' in other." in text_of(await answer(slack, count))
    assert slack.fake.received("files.completeUploadExternal") == []
    assert slack.fake.received("chat.update") == []
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 0


async def test_a_click_with_a_hostile_value_is_a_clear_refusal(slack: SlackHarness, acme):
    message = await issued(slack, acme)
    await slack.click("ib:invoice_orders", "<!channel>" + "x" * 3000, message_ts=message["ts"],
                      message_blocks=message["blocks"])
    shown = text_of(await answer(slack))
    assert "No invoice" in shown and "<!channel>" not in str((await answer(slack))["blocks"])
