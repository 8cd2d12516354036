"""Delivery problems visible (issue 13, item 8): a failed e-mail's notice has Retry and Edit address.

The e-mail fails for real: a local aiosmtpd server answers 550 to DATA. The notice is
posted by the real notice outbox into the fake Slack Web API; clicks and the address
form's submission are signed requests to the real bolt app. Both backends.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.notifier import SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from commands.context import Services
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.slack_notices import NoticeOutbox
from invoicing.delivery.transport import SmtpTransport
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import AuditEntry, Company, Delivery, DeliveryKind, DeliveryStatus, NoticeStatus, SlackNotice
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.factories import T0
from tests.fakes.slack_api import text_of
from tests.fakes.smtp import RecordingHandler, free_port, start_server
from tests.invoicing.delivery.test_delivery import tiny_pdf

CHANNEL = "CBILLING"
REFUSED = "550 5.1.1 <ap@acme.example>: Recipient address rejected: User unknown"


@dataclass
class World:
    slack: SlackHarness
    smtp: RecordingHandler
    outbox: Outbox
    notices: NoticeOutbox
    company: Company

    async def failed_notice(self) -> dict:
        """Run acme, let its e-mail fail with a 5xx, post the notices; the failure's message."""
        await f.order(self.company)
        await run_by_name(await self.company.tenant, "acme", clock=lambda: T0)
        self.smtp.always = REFUSED
        await self.outbox.deliver_due()
        await self.notices.deliver_due()
        [message] = [m for m in self.slack.fake.posts(CHANNEL) if "could not be e-mailed" in m["text"]]
        return message

    async def send_mail(self) -> None:
        self.smtp.always = None
        await self.outbox.deliver_due()


@pytest.fixture
async def world(db, transports) -> AsyncIterator[World]:
    controller, handler = start_server(free_port())
    transport = SmtpTransport("127.0.0.1", controller.port, security="none", timeout=5, local_hostname="localhost")
    transports.append(transport)
    outbox = Outbox(transport, tiny_pdf, "invoices@inkwell.example", lambda: T0)
    slack = await start_harness(services=Services(resend_invoice=outbox.resend), clock=lambda: T0)
    t = await f.tenant(team="T1")
    c = await f.company(t, "acme")
    c.slack_channel = CHANNEL
    await c.save()
    await f.price(t, "MUG", "5.00")
    channel = SlackNoticeChannel(notice_client("xoxb-test", slack.fake.api_url),
                                 ChannelPoster(web_client("xoxb-test", slack.fake.api_url), min_interval=0))
    try:
        yield World(slack, handler, outbox, NoticeOutbox(channel, lambda: T0), c)
    finally:
        await stop_harness(slack)
        controller.stop()


def buttons(message: dict) -> dict[str, dict]:
    return {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}


async def press(w: World, message: dict, action: str, **kwargs) -> None:
    response = await w.slack.click(action, buttons(message)[action]["value"], channel=CHANNEL,
                                   message_ts=message["ts"], message_blocks=message["blocks"], **kwargs)
    assert response.status == 200


async def answer(w: World, count: int = 1) -> str:
    calls = await w.slack.fake.wait_for("response_url", count)
    return text_of(calls[count - 1].params)


async def test_a_permanently_failed_email_is_posted_with_the_reply_and_retry_and_edit_address(world: World):
    message = await world.failed_notice()
    assert REFUSED in text_of(message)
    failed = await Delivery.get(status=DeliveryStatus.FAILED)
    shown = buttons(message)
    assert list(shown) == ["ib:delivery_retry", "ib:delivery_address"]
    assert {e["value"] for e in shown.values()} == {str(failed.id)}
    assert shown["ib:delivery_retry"]["confirm"]["confirm"]["text"] == "Retry"


async def test_retry_sends_the_invoice_again_once_and_marks_the_notice(world: World):
    message = await world.failed_notice()
    failed = await Delivery.get(status=DeliveryStatus.FAILED)
    before = copy.deepcopy(message)  # the fake updates its stored message in place
    await press(world, message, "ib:delivery_retry")
    await world.slack.fake.wait_for("chat.update")
    now = world.slack.fake.message(CHANNEL, message["ts"])
    assert "Retried by <@UADMIN> at 09:00 GMT (a new e-mail to ap@acme.example)" in text_of(now)
    assert buttons(now) == {} and REFUSED in text_of(now)
    [resend] = await Delivery.filter(kind=DeliveryKind.RESEND)
    assert resend.dedupe_key == f"retry:{failed.id}" and resend.to_addr == "ap@acme.example"

    await press(world, before, "ib:delivery_retry")  # the old message, clicked again (a stale client)
    assert "was already retried" in await answer(world)
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 1
    await world.send_mail()
    [mail] = world.smtp.received
    assert mail.rcpt_tos == ["ap@acme.example"]


async def test_only_admins_may_retry_or_edit_the_address(world: World):
    message = await world.failed_notice()
    await press(world, message, "ib:delivery_retry", user="UMEMBER")
    assert "Only workspace admins or InvoiceBot admins of inkwell can retry e-mails." in await answer(world)
    await press(world, message, "ib:delivery_address", user="UMEMBER")
    assert "can change accounting details" in await answer(world, 2)
    assert world.slack.fake.received("views.open") == []
    assert world.slack.fake.received("chat.update") == []
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 0


async def test_edit_address_validates_saves_audits_and_resends_to_the_new_address(world: World):
    message = await world.failed_notice()
    await press(world, message, "ib:delivery_address")
    [opened] = await world.slack.fake.wait_for("views.open")
    view = opened.params["view"]
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["element"]["initial_value"] == "ap@acme.example"

    status, body = await world.slack.submit_view(view, {"email": "not an address"})
    assert status == 200 and body["response_action"] == "errors"
    assert "'not an address' is not a valid e-mail address" in body["errors"]["email"]
    status, body = await world.slack.submit_view(view, {"email": ""})
    assert "give the address" in body["errors"]["email"]
    assert (await Company.get(id=world.company.id)).email == "ap@acme.example"
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 0
    assert not await AuditEntry.filter(action="accounting.set").exists()

    status, body = await world.slack.submit_view(view, {"email": "Billing@Acme.example"}, user="UMEMBER")
    assert "can change accounting details" in body["errors"]["email"]
    status, body = await world.slack.submit_view(view, {"email": "billing@acme.example"})
    assert (status, body) == (200, {})
    assert (await Company.get(id=world.company.id)).email == "billing@acme.example"
    entry = await AuditEntry.get(action="accounting.set")
    assert entry.actor == "slack:UADMIN" and entry.new == {"email": "billing@acme.example"}
    await world.slack.fake.wait_for("chat.update")
    now = world.slack.fake.message(CHANNEL, message["ts"])
    assert "Address changed to billing@acme.example by <@UADMIN> at 09:00 GMT; resent" in text_of(now)
    assert buttons(now) == {}
    await world.send_mail()
    [mail] = world.smtp.received
    assert mail.rcpt_tos == ["billing@acme.example"]

    status, body = await world.slack.submit_view(view, {"email": "other@acme.example"})  # the form, again
    assert status == 200
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 1


async def test_a_tampered_form_is_a_field_error(world: World):
    message = await world.failed_notice()
    await press(world, message, "ib:delivery_address")
    [opened] = await world.slack.fake.wait_for("views.open")
    view = {**opened.params["view"], "private_metadata": "<!channel>"}
    status, body = await world.slack.submit_view(view, {"email": "billing@acme.example"})
    assert status == 200 and "this form is out of date" in body["errors"]["email"]
    assert (await Company.get(id=world.company.id)).email == "ap@acme.example"


async def test_another_workspace_cannot_retry_this_tenants_delivery(world: World):
    message = await world.failed_notice()
    await f.tenant("other", team="T2")
    await press(world, message, "ib:delivery_retry", team="T2")
    assert "No such e-mail delivery in other." in await answer(world)
    await press(world, message, "ib:delivery_address", team="T2")
    assert "No such e-mail delivery in other." in await answer(world, 2)
    assert await Delivery.filter(kind=DeliveryKind.RESEND).count() == 0
    assert world.slack.fake.received("views.open") == []


async def test_deliveries_failed_lists_only_what_failed_for_good(world: World):
    world.slack.fake.script("chat.postMessage", 200, {"ok": False, "error": "channel_not_found"})  # the run notice
    await world.failed_notice()
    assert (await SlackNotice.get(dedupe_key__startswith="run:")).status == NoticeStatus.FAILED
    await world.outbox.resend("000001", world.company.tenant_id)  # pending: waiting, not failed
    failed = text_of(await world.slack.reply("deliveries failed"))
    assert "Deliveries failed" in failed and REFUSED in failed and "channel_not_found" in failed
    assert "pending" not in failed
    assert "pending" in text_of(await world.slack.reply("deliveries acme"))
    assert REFUSED in text_of(await world.slack.reply("deliveries acme failed"))
    assert "No company 'nope'" in text_of(await world.slack.reply("deliveries nope failed"))
    assert "did not expect" in text_of(await world.slack.reply("deliveries acme failed extra"))
