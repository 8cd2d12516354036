"""Hostile text never pings, mentions or links (issue 13, item 1).

Data from the order feed and values typed by ops carry Slack markup on purpose
(``EV-000<!channel>``, a company named ``<http://evil.example|click>``, ``<@U999>``,
``<!here>``, ``<!everyone>``, ``<#C1>``, ``<mailto:x@y|x>``, a typed ``&amp;``). Every
``/invoicing`` command (with good and bad arguments) and every notification kind
(run issued with skipped orders, refused, failed, delivery failed, dry run) is driven
through the real signed Slack endpoint and the real notice outbox; then every payload
the fake Slack received is scanned (``tests/fakes/slack_scan.py``): the only markup
left is what the bot put there (the acting user, the admin it was told to add, the
company's channel), nothing is unescaped, and every payload is within Slack's limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.notifier import SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from commands.dispatch import COMMANDS
from commands.notifications import notice_reply
from invoicing.delivery.notices import queue_delivery_failed, queue_run_problem, queue_schedule_problem
from invoicing.delivery.slack_notices import NoticeOutbox
from invoicing.parties.companies import create_company
from models import Company, Invoice, NoticeKind, SlackNotice, Tenant
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.fakes.slack_api import Call, FakeSlack, text_of
from tests.fakes.slack_scan import limit_findings, markup_findings, message_calls
from tests.invoicing.delivery.test_delivery import Clock

HOSTILE = ["EV-000<!channel>", "<http://evil.example|click>", "&amp;", "<@U999>", "<!here>", "<!everyone>",
           "<#C1>", "<mailto:x@y|x>"]
EVIL_NAME = "<http://evil.example|click> <!channel>"
CHANNEL = "CBILLING"
#: What the bot mentions on purpose: whoever typed (UADMIN), the admin it adds (UDANA), the company's channel.
ALLOWED = {"<@UADMIN>", "<@UDANA>", f"<#{CHANNEL}>"}


def typed(text: str) -> str:
    """``text`` as Slack sends it when a person types it literally (``& < >`` escaped)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture
async def world(db) -> AsyncIterator[tuple[SlackHarness, Tenant, Company]]:
    t = await f.tenant(team="T1")
    c = await create_company(t, "ev", name=EVIL_NAME, country="GB", currency="GBP", timezone="Europe/London",
                             channel=CHANNEL, accounting={
                                 **f.BUYER, "legal_name": "<http://evil.example|click> &amp; Co",
                                 "address_line1": "<!channel> 1 High St", "city": "<!here>",
                                 "region": "<@U999>"})
    await f.price(t, "MUG", "5.00", name="<!everyone> mug &amp; <@U999>")
    for i, ref in enumerate(HOSTILE):
        await f.order(c, ref=ref)  # priced: invoiced by the run
        await f.order(c, ref=f"{ref}-x", sku="NOPRICE")  # skipped: no price
        await f.order(c, ref=f"{ref}-e", error=f"feed said {ref} {i}")  # skipped: has an error
        await f.order(c, ref=f"{ref}-h", on_hold=True)
    harness = await start_harness()
    try:
        yield harness, await Tenant.get(id=t.id), c
    finally:
        await stop_harness(harness)


async def _settle(fake: FakeSlack, before: int, timeout: float = 20.0) -> None:
    """Wait until a command produced a message and nothing more arrives for a moment."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(message_calls(fake.calls)) <= before and loop.time() < end:
        await asyncio.sleep(0.02)
    assert len(message_calls(fake.calls)) > before, "the command was never answered"
    seen = -1
    while seen != len(fake.calls) and loop.time() < end:
        seen = len(fake.calls)
        await asyncio.sleep(0.15)


def _commands(number: str) -> list[str]:
    evil = typed("<!here>")
    return [
        "", "help", *(f"help {name}" for name in COMMANDS), f"help {evil}",
        f"seller set legal_name=\"{typed('&amp;')} Co <http://evil.example|click>\" city=\"{typed('<!channel>')}\"",
        "seller", f"seller set bogus={evil}", f"seller {evil}",
        "companies", "companies page=2", f"companies page={evil}",
        f"company add ev2 name=\"{typed(EVIL_NAME)}\" country=GB currency=GBP channel=<#{CHANNEL}|billing>",
        "company add <!channel> name=x country=GB currency=GBP", f"company add ev3 name=\"{evil}\" country={evil}",
        "accounting ev", f"accounting ev set city=\"{typed('<@U999> & <!everyone>')}\"", "accounting ev edit",
        f"accounting ev set vat_number={evil}", f"accounting {evil}", "accounting ev2",
        "emailer ev", f"emailer ev set bcc={evil}", f"emailer ev set channel=<#{CHANNEL}|billing>",
        f"emailer ev set schedule=\"{evil}\"", "emailer ev enable", f"emailer ev {evil}",
        "orders ev", "orders ev invoiced", "orders ev uninvoiced", "orders ev held", "orders ev errors",
        f"orders ev {evil}", f"orders ev from={evil}", "orders ev page=2", "orders <!channel>",
        "run ev dry-run", f"run ev {evil}", "run <@U999>",
        "invoices ev", f"invoices ev to={evil}", "invoices ev page=9",
        f"invoice {number}", f"invoice {number} resend", f"invoice {typed('EV-000<!channel>')}",
        f"invoice {number} {evil}",
        f"price default MUG cost=1 name=\"{typed('<!here> & <@U999>')}\"", "price ev MUG cost=2",
        f"price default {evil} cost=1", f"price default MUG cost={evil}",
        "schedule", "audit", "audit ev", f"audit {evil}", "deliveries", "deliveries ev", f"deliveries {evil}",
        "admins", "admins add <@UDANA|dana>", "admins", f"admins add {evil}", "admins add <!here>",
        f"{typed('<!channel>')}", "<!channel>", "<@U999>",
    ]


async def test_no_command_or_notification_pings_mentions_or_links_what_the_bot_did_not_mean(world):
    slack, tenant, company = world
    fake = slack.fake
    # a run typed in the channel (in-channel reply, and its durable notice), with skipped orders
    before = len(message_calls(fake.calls))
    await slack.command("run ev")
    await _settle(fake, before)
    invoice = await Invoice.get(company_id=company.id)
    for text in _commands(invoice.display_number):
        before = len(message_calls(fake.calls))
        response = await slack.command(text)
        assert response.status == 200, text
        await _settle(fake, before)
    # every notification kind, through the real notice outbox
    now = f.T0
    await queue_run_problem(company, 990, "missing <!channel> legal_name of <http://evil.example|click>", failed=False,
                            now=now)
    await queue_run_problem(company, 991, "crashed: <@U999> &amp; <!everyone>", failed=True, now=now)
    await queue_schedule_problem(company, 1, now, "bad schedule <!here>", now=now)
    await queue_delivery_failed(company, 992, invoice_number=invoice.display_number, to="x&y<!here>@example.com",
                                error="550 <mailto:x@y|x> rejected <!channel> " + "&<>" * 2000, now=now)
    clock = Clock(max(now, datetime.now(UTC)) + timedelta(days=1))  # every queued notice is due
    outbox = NoticeOutbox(SlackNoticeChannel(notice_client("xoxb-test", fake.api_url, timeout=5),
                                             ChannelPoster(web_client("xoxb-test", fake.api_url), min_interval=0)),
                          clock)
    await outbox.deliver_due()
    kinds = {n.kind for n in await SlackNotice.all()}
    assert kinds == {NoticeKind.RUN_ISSUED, NoticeKind.RUN_REFUSED, NoticeKind.RUN_FAILED, NoticeKind.DELIVERY_FAILED}
    for notice in await SlackNotice.all():
        assert notice.status == "sent", (notice.kind, notice.last_error)
        assert not notice_reply(notice.kind, notice.payload).continuations  # a notice is one message

    calls = message_calls(fake.calls)
    methods = {c.method for c in calls}
    assert {"chat.postMessage", "response_url", "views.open"} <= methods
    findings = markup_findings(calls, allowed=ALLOWED)
    assert not findings, "\n".join(map(str, findings[:20]))
    problems = limit_findings(calls)
    assert not problems, "\n".join(map(str, problems[:20]))

    shown = "\n".join(text_of(c.params) for c in calls)
    raw = "\n".join(str(c.params) for c in calls)
    for value in HOSTILE:
        assert value in shown, value  # every hostile value is displayed as typed, not dropped
    assert "&amp; Co" in shown and "&amp;amp; Co" in raw  # typed "&amp;" comes back as "&amp;"
    assert "<@UDANA>" in raw and "<@UADMIN>" in raw  # the mentions the bot means still work


async def test_the_scanner_catches_a_raw_value_in_every_place_slack_parses():
    ping = "EV-000<!channel>"
    calls = [
        Call("chat.postMessage", {"text": ping}),
        Call("response_url", {"text": "ok", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": ping}}]}),
        Call("chat.update", {"text": "ok", "blocks": [{"type": "section", "fields": [
            {"type": "mrkdwn", "text": "<http://evil.example|click>"}]}]}),
        Call("chat.postEphemeral", {"text": "ok", "blocks": [{"type": "context", "elements": [
            {"type": "mrkdwn", "text": "<@U999>"}]}]}),
        Call("views.publish", {"view": {"type": "home", "blocks": [{"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "<!here> is fine in plain text"},
             "action_id": "a", "confirm": {"title": {"type": "plain_text", "text": "t"},
                                          "text": {"type": "mrkdwn", "text": "<!everyone>"},
                                          "confirm": {"type": "plain_text", "text": "y"},
                                          "deny": {"type": "plain_text", "text": "n"}}}]}]}}),
        Call("chat.postMessage", {"text": "a & b"}),
    ]
    problems = [f.problem for f in markup_findings(calls, allowed={"<@UADMIN>"})]
    assert problems == ["ping <!channel>", "ping <!channel>", "markup the bot did not mean <http://evil.example|click>",
                        "markup the bot did not mean <@U999>", "ping <!everyone>", "unescaped '&'"]
    assert not markup_findings([Call("chat.postMessage", {"text": "&lt;!channel&gt; &amp; <@UADMIN>"})],
                               allowed={"<@UADMIN>"})
