"""The notice worker claims and records in chunks, and keeps every guarantee of one-at-a-time posting.

A chunk is claimed in one statement and its results written in one, so these check
from outside (what the fake Slack Web API received, what the rows say) that a chunk
is one worker's alone, that a worker killed (SIGKILL) after its claim posts nothing
twice once its lease runs out, that a 429 in the middle of a chunk holds the rest of
that channel without using attempts, and that a slow chunk keeps its lease.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.notifier import SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from invoicing.delivery.notices import queue_run_problem
from invoicing.delivery.slack_notices import NoticeOutbox
from models import Company, NoticeStatus, SlackNotice
from tests import factories as f
from tests.conftest import Db
from tests.factories import T0
from tests.fakes.slack_api import FakeSlack
from tests.invoicing.delivery.test_delivery import Clock

ROOT = Path(__file__).resolve().parents[2]
OK = {"ok": True, "channel": "CBILLING", "ts": "1.000001"}


@dataclass
class Queue:
    company: Company
    fake: FakeSlack
    clock: Clock
    db: Db

    def outbox(self, **options: float) -> NoticeOutbox:
        """A worker as a (new) process builds it; a 1-second client timeout, no pacing."""
        channel = SlackNoticeChannel(notice_client("xoxb-test", self.fake.api_url, timeout=1),
                                     ChannelPoster(web_client("xoxb-test", self.fake.api_url), min_interval=0))
        return NoticeOutbox(channel, self.clock, **options)

    async def queue(self, count: int, channel: str = "CBILLING", first: int = 1) -> list[str]:
        """``count`` notices to ``channel``, oldest first; their dedupe keys."""
        self.company.slack_channel = channel
        for run_id in range(first, first + count):
            await queue_run_problem(self.company, run_id, f"reason {run_id}", failed=False, now=self.clock.now)
        return [f"run:{run_id}" for run_id in range(first, first + count)]

    def keys_posted(self, channel: str = "CBILLING") -> list[str]:
        return [m["metadata"]["event_payload"]["key"] for m in self.fake.posts(channel)]


@pytest.fixture
async def q(db: Db) -> AsyncIterator[Queue]:
    tenant = await f.tenant(team="T1")
    company = await f.company(tenant, "acme")
    fake = await FakeSlack().start()
    try:
        yield Queue(company, fake, Clock(T0), db)
    finally:
        await fake.stop()


async def rows() -> dict[str, SlackNotice]:
    return {n.dedupe_key: n for n in await SlackNotice.all().order_by("id")}


async def test_a_chunk_claimed_by_one_worker_is_not_posted_by_another(q: Queue):
    keys = await q.queue(5)
    q.fake.script("chat.postMessage", 200, OK, delay=0.5, posted=True)  # A's first post is slow
    a = asyncio.ensure_future(q.outbox(chunk=3).deliver_due())
    await q.fake.wait_for("chat.postMessage")
    # A holds its chunk (the three oldest) while it posts: B takes only the two A did not claim.
    by_b = await q.outbox(chunk=3).deliver_due()
    assert sorted(o.notice_id for o in by_b) == sorted(n.id for n in (await rows()).values())[3:]
    by_a = await a
    assert sorted(o.notice_id for o in by_a) == sorted(n.id for n in (await rows()).values())[:3]
    assert sorted(q.keys_posted()) == sorted(keys)  # each once
    assert len(q.fake.received("chat.postMessage")) == 5
    assert {n.status for n in (await rows()).values()} == {NoticeStatus.SENT}


# A worker process: real clock, one pass, 120 s lease (the test kills it mid-chunk).
WORKER = """
import asyncio, sys
from bot.db import database
from bot.notifier import SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from invoicing.delivery.slack_notices import NoticeOutbox

async def main(url, api):
    async with database(url, apply_migrations=False):
        channel = SlackNoticeChannel(notice_client("xoxb-test", api, timeout=60),
                                     ChannelPoster(web_client("xoxb-test", api), min_interval=0))
        await NoticeOutbox(channel, chunk=3, lease_seconds=120).deliver_due()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_worker_killed_after_its_claim_posts_nothing_twice(q: Queue):
    keys = await q.queue(4)  # the worker claims a chunk of three; the fourth it never claims
    q.fake.script("chat.postMessage", 200, OK, posted=True)
    q.fake.script("chat.postMessage", 200, OK, delay=30, posted=True)  # Slack keeps it, never answers
    worker = await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, q.db.url, q.fake.api_url, cwd=ROOT)
    try:
        await q.fake.wait_for("chat.postMessage", count=2, timeout=60)
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    held = await rows()
    assert [held[k].status for k in keys] == [NoticeStatus.SENDING] * 3 + [NoticeStatus.PENDING]  # nothing recorded

    restarted = q.outbox()
    q.clock.now = datetime.now(UTC) + timedelta(seconds=60)
    (first,) = await restarted.deliver_due()  # the dead worker's lease still holds its chunk…
    assert first.notice_id == held[keys[3]].id and q.keys_posted() == [*keys[:2], keys[3]]
    q.clock.advance(seconds=121)  # …until it runs out
    outcomes = await restarted.deliver_due()

    assert [o.status for o in outcomes] == [NoticeStatus.SENT] * 3
    assert sorted(q.keys_posted()) == keys  # the two posted before the kill were found, not posted again
    assert len(q.fake.received("chat.postMessage")) == 4
    # Only the claimed chunk was in doubt: each of its rows was looked up once, the fourth never.
    assert len(q.fake.received("conversations.history")) == 3
    done = await rows()
    assert [done[k].last_error for k in keys[:2]] == ["found already posted"] * 2
    assert [done[k].message_ts for k in keys[:2]] == [m["ts"] for m in q.fake.posts("CBILLING")[:2]]
    assert [done[k].attempts for k in keys] == [2, 2, 2, 1]


async def test_a_429_mid_chunk_holds_the_rest_of_that_channel_without_using_attempts(q: Queue):
    held_back = await q.queue(4, "CBILLING")
    other = await q.queue(1, "COTHER", first=5)
    q.fake.script("chat.postMessage", 200, {"ok": True, "channel": "CBILLING", "ts": "1.000001"}, posted=True)
    q.fake.script("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    outbox = q.outbox(chunk=2)  # chunks: CBILLING 1-2, CBILLING 3-4, COTHER 5
    await outbox.deliver_due()

    assert len(q.fake.received("chat.postMessage")) == 3  # 1, 2 (refused) and COTHER's; 3 and 4 never tried
    assert q.keys_posted("COTHER") == other
    after = await rows()
    assert after[held_back[0]].status == NoticeStatus.SENT
    waiting = [after[k] for k in held_back[1:]]
    assert [(n.status, n.attempts) for n in waiting] == [(NoticeStatus.PENDING, 0)] * 3
    retry_at = T0 + timedelta(seconds=30)
    assert waiting[0].next_attempt_at == retry_at  # Retry-After honoured
    assert retry_at < waiting[1].next_attempt_at < waiting[2].next_attempt_at < retry_at + timedelta(seconds=1)

    q.clock.advance(seconds=29)
    assert await outbox.deliver_due() == []  # the channel still waits
    q.clock.advance(seconds=2)
    await outbox.deliver_due()
    assert q.keys_posted() == held_back  # in their order
    assert [n.attempts for n in (await rows()).values()] == [1] * 5


async def test_a_slow_chunk_keeps_its_lease(q: Queue):
    keys = await q.queue(3)
    q.fake.script("chat.postMessage", 200, OK, delay=0.5, posted=True)
    q.fake.script("chat.postMessage", 200, OK, delay=0.8, posted=True)
    a = asyncio.ensure_future(q.outbox(chunk=3, lease_seconds=120).deliver_due())
    await q.fake.wait_for("chat.postMessage")
    q.clock.advance(seconds=50)  # a third of the lease has passed before the second post: A renews
    await q.fake.wait_for("chat.postMessage", count=2)
    q.clock.advance(seconds=80)  # past the lease A was claimed with, within the renewed one
    assert await q.outbox().deliver_due() == []  # another worker takes nothing over
    assert len(await a) == 3
    assert q.keys_posted() == keys
    assert len(q.fake.received("chat.postMessage")) == 3
    assert q.fake.received("conversations.history") == []
