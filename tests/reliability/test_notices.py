"""Slack notices are durable (issue 12, item 6): queued with the run, posted at least once, never twice.

The Slack side is the fake Web API, misbehaving on purpose (500s, 429s with
Retry-After, answers that come after the client gave up, a message posted although
the answer was an error); the worker is the real ``NoticeOutbox`` over the real
``SlackNoticeChannel``. What is asserted is what the channel ends up with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.notifier import EVENT_TYPE, SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from commands.context import CommandContext
from commands.dispatch import dispatch
from invoicing.delivery.slack_notices import NoticeOutbox
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Company, Invoice, InvoiceRun, NoticeKind, NoticeStatus, RunTrigger, SlackNotice, Tenant
from tests import factories as f
from tests.factories import T0
from tests.fakes.slack_api import FakeSlack, text_of
from tests.invoicing.delivery.test_delivery import Clock

CHANNEL = "CBILLING"


@dataclass
class World:
    tenant: Tenant
    company: Company
    fake: FakeSlack
    clock: Clock

    def outbox(self, **options: float) -> NoticeOutbox:
        """A notice worker as a (new) process builds it; a 1-second client timeout."""
        channel = SlackNoticeChannel(notice_client("xoxb-test", self.fake.api_url, timeout=1),
                                     ChannelPoster(web_client("xoxb-test", self.fake.api_url), min_interval=0))
        return NoticeOutbox(channel, self.clock, **options)

    async def run(self, trigger: RunTrigger = RunTrigger.SCHEDULE, **options):
        await f.order(self.company, quantity=2)
        return await run_by_name(self.tenant, "acme", trigger=trigger, clock=self.clock, **options)

    async def drain(self, outbox: NoticeOutbox, passes: int = 30, step: float = 1.0) -> None:
        """Run passes, moving the clock to the next due time between them, until nothing waits."""
        for _ in range(passes):
            await outbox.deliver_due()
            due = await outbox.next_due_at()
            if due is None:
                return
            if due > self.clock.now:
                self.clock.now = due
            else:
                self.clock.advance(seconds=step)


@pytest.fixture
async def world(db) -> AsyncIterator[World]:
    t = await f.tenant(team="T1")
    c = await f.company(t, "acme")
    c.slack_channel = CHANNEL
    await c.save()
    await f.price(t, "MUG", "5.00", shipping="1.50")
    fake = await FakeSlack().start()
    try:
        yield World(await Tenant.get(id=t.id), c, fake, Clock(T0))
    finally:
        await fake.stop()


def announced(fake: FakeSlack, number: str) -> list[dict]:
    return [m for m in fake.posts(CHANNEL) if f"invoice {number} issued" in m["text"]]


async def test_a_run_queues_its_announcement_in_its_own_transaction(world: World):
    report = await world.run()
    (notice,) = await SlackNotice.all()
    assert (notice.kind, notice.status, notice.dedupe_key, notice.channel) == (
        NoticeKind.RUN_ISSUED, NoticeStatus.PENDING, f"run:{report.run_id}", CHANNEL)
    await world.outbox().deliver_due()
    (post,) = world.fake.posts(CHANNEL)
    assert f"acme — invoice {report.invoice_number} issued" in text_of(post)
    assert post["metadata"] == {"event_type": EVENT_TYPE, "event_payload": {"key": f"run:{report.run_id}"}}
    row = await SlackNotice.get(id=notice.id)
    assert (row.status, row.message_ts, row.channel_id, row.attempts) == (NoticeStatus.SENT, post["ts"], CHANNEL, 1)


async def test_a_run_that_rolls_back_leaves_no_notice(world: World):
    def crash(step: str) -> None:
        if step == "recorded":  # after the notice was written, before commit
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await world.run(trigger=RunTrigger.MANUAL, checkpoint=crash)
    assert await Invoice.all().count() == 0
    assert await SlackNotice.all().count() == 0  # a manual run's failure is the reply to whoever ran it


async def test_a_scheduled_run_that_fails_queues_a_failure_notice_with_its_record(world: World):
    def crash(step: str) -> None:
        if step == "recorded":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await world.run(checkpoint=crash)
    (run,) = await InvoiceRun.all()
    (notice,) = await SlackNotice.all()
    assert (run.outcome, notice.kind, notice.dedupe_key) == ("failed", NoticeKind.RUN_FAILED, f"run:{run.id}")
    await world.outbox().deliver_due()
    assert "Invoice run for acme failed." in text_of(world.fake.posts(CHANNEL)[0])


async def test_a_company_without_a_channel_gets_no_notice(world: World):
    world.company.slack_channel = ""
    await world.company.save()
    await world.run()
    assert await SlackNotice.all().count() == 0


async def test_500_three_times_then_200_posts_the_notice_once(world: World):
    report = await world.run()
    world.fake.script("chat.postMessage", 500, {"ok": False, "error": "internal_error"}, times=3)
    await world.drain(world.outbox())
    assert len(announced(world.fake, report.invoice_number)) == 1
    row = await SlackNotice.get()
    assert (row.status, row.attempts) == (NoticeStatus.SENT, 4)
    # A 5xx leaves the outcome unknown: the channel was checked before each re-post.
    assert len(world.fake.received("conversations.history")) == 3


async def test_a_500_after_slack_posted_is_not_posted_again(world: World):
    report = await world.run()
    world.fake.script("chat.postMessage", 500, {"ok": False, "error": "internal_error"}, posted=True)
    await world.drain(world.outbox())
    assert len(announced(world.fake, report.invoice_number)) == 1
    assert len(world.fake.received("chat.postMessage")) == 1
    row = await SlackNotice.get()
    assert (row.status, row.message_ts, row.last_error) == (
        NoticeStatus.SENT, world.fake.posts(CHANNEL)[0]["ts"], "found already posted")


async def test_a_timeout_after_slack_posted_is_not_posted_again(world: World):
    report = await world.run()
    world.fake.script("chat.postMessage", 200, {"ok": True, "channel": CHANNEL, "ts": "1.1"}, delay=2.5, posted=True)
    await world.drain(world.outbox())
    assert len(announced(world.fake, report.invoice_number)) == 1
    assert (await SlackNotice.get()).status == NoticeStatus.SENT


async def test_ten_consecutive_429s_are_waited_out_and_the_notice_is_posted(world: World):
    report = await world.run()
    world.fake.script("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"}, times=10)
    outbox = world.outbox()
    await outbox.deliver_due()
    row = await SlackNotice.get()
    assert (row.status, row.attempts) == (NoticeStatus.PENDING, 0)  # a 429 does not use an attempt
    assert (row.next_attempt_at - world.clock.now).total_seconds() == 3  # Retry-After honoured
    await world.drain(outbox, passes=40)
    assert len(announced(world.fake, report.invoice_number)) == 1
    row = await SlackNotice.get()
    assert (row.status, row.attempts) == (NoticeStatus.SENT, 1)
    assert len(world.fake.received("chat.postMessage")) == 11


async def test_a_worker_killed_mid_post_is_recovered_after_its_lease_without_a_second_post(world: World):
    report = await world.run()
    # Slack takes the message, and the worker dies before it hears back (SIGKILL-equivalent:
    # the task is cancelled while the request is in flight; the row stays "sending").
    world.fake.script("chat.postMessage", 200, {"ok": True}, delay=30, posted=True)
    dying = asyncio.ensure_future(world.outbox(lease_seconds=120).deliver_due())
    await world.fake.wait_for("chat.postMessage")
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)
    assert (await SlackNotice.get()).status == NoticeStatus.SENDING

    restarted = world.outbox(lease_seconds=120)
    world.clock.advance(seconds=119)
    assert await restarted.deliver_due() == []  # the lease still holds: a live worker is never doubled
    world.clock.advance(seconds=2)
    (outcome,) = await restarted.deliver_due()

    assert outcome.status == NoticeStatus.SENT
    assert len(announced(world.fake, report.invoice_number)) == 1
    assert len(world.fake.received("chat.postMessage")) == 1  # found in the history, not re-posted
    row = await SlackNotice.get()
    assert (row.message_ts, row.attempts) == (world.fake.posts(CHANNEL)[0]["ts"], 2)


async def test_a_crash_before_slack_got_it_is_posted_after_the_lease(world: World):
    report = await world.run()
    world.fake.script("chat.postMessage", 200, {"ok": True}, delay=30)  # never answered, not posted
    dying = asyncio.ensure_future(world.outbox().deliver_due())
    await world.fake.wait_for("chat.postMessage")
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)
    world.clock.advance(seconds=121)
    await world.outbox().deliver_due()
    assert len(announced(world.fake, report.invoice_number)) == 1


async def test_a_permanent_error_fails_with_the_reason_and_shows_in_deliveries(world: World):
    report = await world.run()
    world.fake.script("chat.postMessage", 200, {"ok": False, "error": "not_in_channel"})
    (outcome,) = await world.outbox().deliver_due()
    assert (outcome.status, outcome.error) == (NoticeStatus.FAILED, "not_in_channel")
    world.clock.advance(days=1)
    assert await world.outbox().deliver_due() == []  # never retried
    assert world.fake.posts(CHANNEL) == []

    reply = await dispatch("deliveries", CommandContext(tenant=world.tenant, user_id="UOPS"))
    text = text_of({"text": reply.text, "blocks": list(reply.blocks)})
    assert "1 Slack notice(s) waiting or failed" in text
    assert f"run issued *{report.invoice_number}* (acme) → {CHANNEL} · failed · 1 attempt(s)" in text
    assert "`not_in_channel`" in text


async def test_deliveries_escape_untrusted_text_and_stay_in_their_tenant(world: World):
    await world.run()
    await SlackNotice.filter().update(status=NoticeStatus.FAILED, last_error="<!channel> & `x`")
    other = await f.tenant("rival", team="T2")
    reply = await dispatch("deliveries", CommandContext(tenant=world.tenant, user_id="UOPS"))
    raw = str(reply.blocks)
    assert "&lt;!channel&gt; &amp; 'x'" in raw and "<!channel>" not in raw
    theirs = await dispatch("deliveries", CommandContext(tenant=other, user_id="UOPS"))
    assert "has been delivered" in text_of({"text": theirs.text, "blocks": list(theirs.blocks)})


async def test_two_workers_post_a_notice_once(world: World):
    report = await world.run()
    await asyncio.gather(world.outbox().deliver_due(), world.outbox().deliver_due())
    assert len(announced(world.fake, report.invoice_number)) == 1


async def test_deliveries_lists_a_failed_email_with_the_server_reply(world: World):
    from models import Delivery, DeliveryStatus

    report = await world.run()
    await Delivery.filter().update(status=DeliveryStatus.FAILED, attempts=1, last_error="550 5.1.1 <ap@acme.example>")
    reply = await dispatch("deliveries acme", CommandContext(tenant=world.tenant, user_id="UOPS"))
    text = text_of({"text": reply.text, "blocks": list(reply.blocks)})
    assert f"*{report.invoice_number}* (acme) → ap@acme.example · failed · 1 attempt(s)" in text
    assert "`550 5.1.1 <ap@acme.example>`" in text and "&lt;ap@acme.example&gt;" in str(reply.blocks)
    assert "1 e-mail(s), 1 Slack notice(s) waiting or failed for acme" in text
