"""Command replies through ``response_url`` share one keep-alive connection while the app serves HTTP.

Seen from a real local server standing in for Slack's ``response_url`` endpoint, which notes the
client port of every reply: a new session per reply (what Socket Mode still does, nobody being
there to close a shared one) shows as a new port each time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from aiohttp import web

from bot.slack_web import ReplySession, respond_reliably
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness


@dataclass
class ReplyServer:
    """Answers 200 to every POST and records (client port, JSON body)."""

    url: str = ""
    received: list[tuple[int, dict]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def ports(self) -> set[int]:
        return {port for port, _ in self.received}


@pytest.fixture
async def reply_server() -> AsyncIterator[ReplyServer]:
    server = ReplyServer()

    async def reply(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        server.received.append((peer[1] if peer else 0, await request.json()))
        server.arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/reply", reply)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/reply"
    yield server
    await runner.cleanup()


@pytest.fixture
async def slack(db) -> AsyncIterator[SlackHarness]:
    await f.tenant(team="T1")
    harness = await start_harness()
    yield harness
    await stop_harness(harness)


async def command(slack: SlackHarness, text: str, response_url: str, n: int) -> None:
    body = urlencode(
        {
            "team_id": "T1",
            "channel_id": "CBILLING",
            "channel_name": "billing",
            "user_id": "UADMIN",
            "command": "/invoicing",
            "text": text,
            "response_url": response_url,
            "trigger_id": f"7.{n}.{time.time_ns()}",
        }
    )
    assert (await slack.post(body, "application/x-www-form-urlencoded")).status == 200


async def test_replies_to_commands_served_over_http_share_one_connection(
    slack: SlackHarness, reply_server: ReplyServer
):
    for n, text in enumerate(["help run", "help schedule", "nonsense"]):
        await command(slack, text, reply_server.url, n)
        await reply_server.wait_for(n + 1)
    assert len(reply_server.ports()) == 1
    assert (
        "/invoicing run" in str(reply_server.received[0][1])
        and "Unknown command" in reply_server.received[2][1]["text"]
    )


async def test_the_shared_session_is_closed_when_the_web_app_is_cleaned_up(db, reply_server: ReplyServer):
    harness = await start_harness()
    assert harness.bolt is not None
    replies = harness.bolt.replies  # type: ignore[attr-defined]
    shared = replies.session()
    assert shared is not None and not shared.closed
    await stop_harness(harness)
    assert shared.closed
    assert replies.session() is None  # a late reply opens a session of its own
    assert await respond_reliably(reply_server.url, {"text": "late"}, session=replies.session())


async def test_a_session_nobody_will_close_is_not_kept_open(reply_server: ReplyServer):
    replies = ReplySession()
    assert replies.session() is None
    for n in range(2):
        assert await respond_reliably(reply_server.url, {"text": f"reply {n}"}, session=replies.session())
    assert len(reply_server.ports()) == 2
    replies.keep_open()
    for n in range(2):
        assert await respond_reliably(reply_server.url, {"text": f"shared {n}"}, session=replies.session())
    assert len(reply_server.ports()) == 3
    await replies.close()
