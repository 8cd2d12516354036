"""A running InvoiceBot Slack endpoint plus a fake Slack Web API, for tests and benchmarks."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.http import add_slack_routes
from bot.slack import create_slack_app
from bot.slack_web import ChannelPoster, web_client
from commands.context import Services
from tests.fakes.slack_api import FakeSlack

SIGNING_SECRET = "test-signing-secret"
TEAM = "T1"
#: Slack gives every interaction its own trigger_id, so no two requests have the same body
#: (and signature): the replay guard would refuse a second identical one within a second.
_TRIGGERS = itertools.count(1)


def sign(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class SlackHarness:
    fake: FakeSlack
    url: str
    runner: web.AppRunner
    session: aiohttp.ClientSession
    poster: ChannelPoster
    #: The bolt app itself: a test may add a listener of its own (an event the bot does not handle yet).
    bolt: AsyncApp | None = None
    #: The body of the last answer ``post`` got (an ack's JSON, e.g. a modal's field errors).
    last_body: bytes = b""

    async def command(self, text: str, *, user: str = "UADMIN", team: str = TEAM, channel: str = "CBILLING",
                      timestamp: int | None = None, secret: str = SIGNING_SECRET,
                      response: str = "r1") -> aiohttp.ClientResponse:
        """POST a signed ``/invoicing text``; its replies go to ``fake.response_url(response)``."""
        body = urlencode({
            "token": "legacy", "team_id": team, "team_domain": "inkwell", "channel_id": channel,
            "channel_name": "billing", "user_id": user, "user_name": user.lower(), "command": "/invoicing",
            "text": text, "response_url": self.fake.response_url(response),
            "trigger_id": f"1337.{next(_TRIGGERS)}.abcd",
        })
        return await self.post(body, "application/x-www-form-urlencoded", timestamp=timestamp, secret=secret)

    async def event(self, event: dict, *, team: str = TEAM) -> aiohttp.ClientResponse:
        """An Events API delivery (``event_callback``) carrying ``event``."""
        n = next(_TRIGGERS)
        body = json.dumps({"token": "legacy", "team_id": team, "api_app_id": "A1", "type": "event_callback",
                           "event": event, "event_id": f"Ev{n:08d}", "event_time": int(time.time()),
                           "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}]})
        return await self.post(body, "application/json")

    async def post(self, body: str, content_type: str, *, timestamp: int | None = None,
                   secret: str = SIGNING_SECRET) -> aiohttp.ClientResponse:
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": sign(body, ts, secret)}
        async with self.session.post(self.url, data=body.encode(), headers=headers) as response:
            self.last_body = await response.read()
            return response

    async def click(self, action_id: str, value: str = "", *, user: str = "UADMIN", team: str = TEAM,
                    channel: str = "CBILLING", message_ts: str = "", message_blocks: list | None = None,
                    blocks: list | None = None, on_home: bool = False, view: dict | None = None,
                    block_id: str = "b1", timestamp: int | None = None,
                    secret: str = SIGNING_SECRET) -> aiohttp.ClientResponse:
        """Press a button: a signed ``block_actions`` payload as Slack posts it.

        On a message in ``channel`` (``message_ts`` and its ``message_blocks``; ``blocks`` is the
        same); ``message_ts=""`` means an ephemeral message, which cannot be updated. A button on
        the App Home (``on_home``, or ``view`` = fields of the published view such as its
        ``private_metadata``) has no channel, message or response_url.
        """
        shown = message_blocks if message_blocks is not None else blocks or []
        payload: dict = {
            "type": "block_actions", "token": "legacy", "api_app_id": "A1", "team": {"id": team, "domain": "inkwell"},
            "user": {"id": user, "username": user.lower(), "team_id": team},
            "trigger_id": f"1337.{next(_TRIGGERS)}.abcd",
            "actions": [{"type": "button", "action_id": action_id, "block_id": block_id, "value": value,
                         "text": {"type": "plain_text", "text": "button"}, "action_ts": f"{time.time():.6f}"}],
        }
        if on_home or view is not None:
            payload["container"] = {"type": "view", "view_id": "VHOME"}
            payload["view"] = {"id": "VHOME", "team_id": team, "type": "home", "callback_id": "", "blocks": shown,
                               **(view or {})}
        else:
            payload["channel"] = {"id": channel, "name": "billing"}
            payload["container"] = {"type": "message", "channel_id": channel, "message_ts": message_ts or "1.000001",
                                    "is_ephemeral": not message_ts}
            payload["message"] = {"type": "message", "ts": message_ts or "1.000001", "text": "", "blocks": shown}
            payload["response_url"] = self.fake.response_url()
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", timestamp=timestamp, secret=secret)

    async def submit_view(self, view: dict, values: dict[str, str], *, user: str = "UADMIN",
                          team: str = TEAM) -> tuple[int, dict]:
        """Submit a modal that ``views.open`` was called with, its inputs filled with ``values``
        (block id → text). Returns the HTTP status and the ack's JSON body ({} for a plain ack)."""
        state = {b["block_id"]: {b["element"]["action_id"]: {"type": b["element"]["type"],
                                                             "value": values.get(b["block_id"])}}
                 for b in view["blocks"] if b.get("type") == "input"}
        payload = {"type": "view_submission", "team": {"id": team, "domain": "inkwell"},
                   "user": {"id": user, "team_id": team}, "api_app_id": "A1", "token": "legacy",
                   "trigger_id": f"1337.{next(_TRIGGERS)}.abcd",
                   "view": {**view, "id": "V1", "team_id": team, "state": {"values": state}}}
        response = await self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
        return response.status, json.loads(self.last_body or b"{}")

    async def reply(self, text: str, **kwargs) -> dict:
        """Send a command and return the ephemeral answer posted to response_url."""
        before = len(self.fake.received("response_url"))
        response = await self.command(text, **kwargs)
        assert response.status == 200
        calls = await self.fake.wait_for("response_url", before + 1)
        return calls[before].params


async def start_harness(services: Services | None = None, admins: set[str] | None = None, clock=None,
                        lanes=None) -> SlackHarness:
    fake = await FakeSlack(admins=admins if admins is not None else {"UADMIN"}).start()
    client = web_client("xoxb-test-token", fake.api_url)
    extra = {"clock": clock} if clock else {}
    if lanes is not None:
        extra["lanes"] = lanes
    bolt, poster = create_slack_app(signing_secret=SIGNING_SECRET, client=client, services=services, **extra)
    poster.min_interval = 0.0
    app = web.Application()
    add_slack_routes(app, bolt)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return SlackHarness(fake, f"http://127.0.0.1:{port}/slack/events", runner, aiohttp.ClientSession(), poster, bolt)


async def stop_harness(h: SlackHarness) -> None:
    await h.session.close()
    await h.runner.cleanup()
    await h.fake.stop()
