"""The whole service with a misbehaving Slack: run notices and command replies still arrive, once.

Issue 12, item 6: a ``chat.postMessage`` 500 lost scheduled run notices, the 6th
consecutive 429 dropped them, a ``response_url`` 500 lost the reply silently.
"""

from __future__ import annotations

from datetime import timedelta

from models import Integration, IntegrationKind, NoticeStatus, SlackNotice
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.bot.test_e2e import slash, until, world  # noqa: F401  (the service fixture)
from tests.fakes.slack_api import FakeSlack, text_of


def issued(fake: FakeSlack, channel: str = "CBILL") -> list[dict]:
    return [m for m in fake.posts(channel) if "invoice 000001 issued" in m["text"]]


async def _scheduled_run(service, fake, clock, session) -> None:
    tenant = await f.tenant(team="T1")
    company = await f.company(tenant, "acme")
    company.slack_channel = "CBILL"
    await company.save()
    await f.price(tenant, "MUG", "5.00")
    await f.order(company, dispatched_at=clock.now - timedelta(hours=2))
    assert await slash(session, service, "emailer acme enable", fake=fake) == 200
    integration = await until(lambda: Integration.filter(
        company_id=company.id, kind=IntegrationKind.PDF_EMAILER, enabled=True).first())
    clock.now = integration.next_run_at + timedelta(seconds=1)
    service.scheduler.wake()


async def _moving_clock_until_posted(service, fake, clock, count: int = 1) -> None:
    """Let the notice worker's backoff pass: move the injected clock, kick the loop, wait."""
    async def posted() -> bool:
        if len(issued(fake)) >= count:
            return True
        clock.now += timedelta(seconds=30)
        service._notice_kick.set()
        return False

    await until(posted, timeout=30)


async def test_a_scheduled_run_notice_survives_three_500s_and_is_posted_once(world):  # noqa: F811
    service, fake, inbox, clock, session = world
    fake.script("chat.postMessage", 500, {"ok": False, "error": "internal_error"}, times=3)
    await _scheduled_run(service, fake, clock, session)
    await _moving_clock_until_posted(service, fake, clock)
    assert len(issued(fake)) == 1
    await until(lambda: SlackNotice.filter(status=NoticeStatus.SENT).exists())


async def test_a_scheduled_run_notice_survives_ten_429s(world):  # noqa: F811
    service, fake, inbox, clock, session = world
    fake.script("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}, times=10)
    await _scheduled_run(service, fake, clock, session)
    await _moving_clock_until_posted(service, fake, clock)
    assert len(issued(fake)) == 1


async def test_a_manual_run_typed_in_the_company_channel_is_announced_there_once(world):  # noqa: F811
    service, fake, inbox, clock, session = world
    tenant = await f.tenant(team="T1")
    company = await f.company(tenant, "acme")
    company.slack_channel = "CBILL"  # the channel ``slash`` types in
    await company.save()
    await f.price(tenant, "MUG", "5.00")
    await f.order(company, dispatched_at=clock.now - timedelta(hours=2))
    assert await slash(session, service, "run acme", fake=fake) == 200
    notice = await until(lambda: SlackNotice.filter(status=NoticeStatus.SENT).first())
    (post,) = issued(fake)
    assert post["ts"] == notice.message_ts and "triggered by <@UOPS>" in text_of(post)
    assert fake.received("response_url") == []


async def test_a_manual_run_typed_elsewhere_answers_there_and_announces_in_the_company_channel(world):  # noqa: F811
    service, fake, inbox, clock, session = world
    tenant = await f.tenant(team="T1")
    company = await f.company(tenant, "acme")
    company.slack_channel = "CACME"
    await company.save()
    await f.price(tenant, "MUG", "5.00")
    await f.order(company, dispatched_at=clock.now - timedelta(hours=2))
    assert await slash(session, service, "run acme", fake=fake) == 200
    await until(lambda: SlackNotice.filter(status=NoticeStatus.SENT).exists())
    assert len(issued(fake, "CACME")) == 1 and len(issued(fake, "CBILL")) == 1


async def test_a_response_url_500_is_retried_and_the_reply_arrives(db):
    harness: SlackHarness = await start_harness()
    try:
        await f.tenant(team="T1")
        harness.fake.script("response_url", 500, {"error": "oops"})
        response = await harness.command("help")
        assert response.status == 200
        calls = await harness.fake.wait_for("response_url", 2)
        assert [c.params["text"] for c in calls][0] == calls[1].params["text"]
        assert "/invoicing commands" in text_of(calls[1].params)
    finally:
        await stop_harness(harness)
