"""Retries processed once: Slack re-sending a request it thinks was not acknowledged acts once.

A retry is a new request: a new timestamp, hence a new signature, with ``X-Slack-Retry-Num``
and ``X-Slack-Retry-Reason``. The replay guard recognises it by the id every delivery of the
request shares (``bot.replays.request_key``): it is acknowledged with 200 and not run again.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.replay_store import RETRY_RETENTION_SECONDS, ReplayStore
from bot.replays import request_key
from commands.click_handlers import CLICKS
from commands.clicks import Click, ClickResult, action_id
from commands.companies import MODAL_CALLBACK
from commands.replies import message, section
from models import AuditEntry, Company, SeenRequest, Tenant
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, sign, start_harness, stop_harness

FORM = "application/x-www-form-urlencoded"
RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


@pytest.fixture
async def slack(db):
    await f.tenant(team="T1")
    harness = await start_harness()
    yield harness
    await stop_harness(harness)


async def send(slack: SlackHarness, body: str, content_type: str, *, ts: int, extra: dict[str, str] | None = None
               ) -> tuple[int, str]:
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts),
               "X-Slack-Signature": sign(body, ts), **(extra or {})}
    async with slack.session.post(slack.url, data=body.encode(), headers=headers) as response:
        return response.status, await response.text()


def command(slack: SlackHarness, text: str, trigger: str) -> str:
    return urlencode({"team_id": "T1", "user_id": "UADMIN", "command": "/invoicing", "text": text,
                      "channel_id": "CBILLING", "response_url": slack.fake.response_url(), "trigger_id": trigger})


def interaction(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


async def settle() -> None:
    await asyncio.sleep(0.3)  # a retry that got through would be running its listener now


async def test_a_retried_command_is_acknowledged_and_runs_once(slack: SlackHarness):
    body = command(slack, 'company add zeta name="Zeta" country=GB currency=GBP', "111.222.aaa")
    now = int(time.time())
    assert (await send(slack, body, FORM, ts=now))[0] == 200
    await slack.fake.wait_for("response_url")
    # Slack's retries: new timestamps and signatures, the same body; marked or not.
    assert (await send(slack, body, FORM, ts=now + 1, extra=RETRY))[0] == 200
    assert (await send(slack, body, FORM, ts=now + 2, extra={**RETRY, "X-Slack-Retry-Num": "2"}))[0] == 200
    assert (await send(slack, body, FORM, ts=now + 3))[0] == 200
    await settle()
    assert len(slack.fake.received("response_url")) == 1  # a second run would answer "already exists"
    assert await Company.filter(short_name="zeta").count() == 1
    assert await AuditEntry.filter(action="company.add").count() == 1
    # A new command (a new trigger_id) with the same text is a new request and runs.
    assert (await send(slack, command(slack, "companies", "111.333.bbb"), FORM, ts=now + 4, extra=RETRY))[0] == 200
    await slack.fake.wait_for("response_url", 2)


async def test_a_retried_button_click_acts_once(slack: SlackHarness, monkeypatch: pytest.MonkeyPatch):
    presses: list[str] = []

    async def press(click: Click) -> ClickResult:
        presses.append(click.value)
        return ClickResult(reply=message("pressed", section("pressed")))

    monkeypatch.setitem(CLICKS, "test_press", press)
    payload: dict[str, Any] = {
               "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "UADMIN"}, "api_app_id": "A1",
               "trigger_id": "222.333.ccc", "response_url": slack.fake.response_url("click"),
               "container": {"type": "message", "message_ts": "1.000001", "channel_id": "CBILLING"},
               "channel": {"id": "CBILLING"}, "message": {"ts": "1.000001", "text": "", "blocks": []},
               "actions": [{"type": "button", "action_id": action_id("test_press"), "block_id": "b1",
                            "value": "000001", "action_ts": "1700000000.000100"}]}
    now = int(time.time())
    assert (await send(slack, interaction(payload), FORM, ts=now))[0] == 200
    await slack.fake.wait_for("response_url")
    assert (await send(slack, interaction(payload), FORM, ts=now + 1, extra=RETRY))[0] == 200
    # Without a trigger_id the click is known by team, user and action_ts.
    del payload["trigger_id"]
    payload["actions"][0]["action_ts"] = "1700000000.000200"
    assert (await send(slack, interaction(payload), FORM, ts=now + 2))[0] == 200
    assert (await send(slack, interaction(payload), FORM, ts=now + 3, extra=RETRY))[0] == 200
    await settle()
    assert presses == ["000001", "000001"]


async def test_a_retried_event_runs_its_listener_once(slack: SlackHarness):
    seen: list[str] = []
    assert slack.bolt is not None

    @slack.bolt.event("app_mention")
    async def mentioned(event: dict[str, Any]) -> None:
        seen.append(str(event.get("text")))

    def event(event_id: str, text: str) -> str:
        return json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": event_id,
                           "event_time": int(time.time()),
                           "event": {"type": "app_mention", "user": "UADMIN", "text": text, "channel": "CBILLING"}})

    now = int(time.time())
    assert (await send(slack, event("Ev1", "first"), "application/json", ts=now))[0] == 200
    for n in (1, 2, 3):
        status, _ = await send(slack, event("Ev1", "first"), "application/json", ts=now + n,
                               extra={**RETRY, "X-Slack-Retry-Num": str(n)})
        assert status == 200
    assert (await send(slack, event("Ev2", "second"), "application/json", ts=now + 4))[0] == 200
    await settle()
    assert seen == ["first", "second"]


async def test_a_retried_modal_submission_is_saved_once_and_closes_the_modal(slack: SlackHarness):
    await f.company(await Tenant.get(slack_team_id="T1"), "acme")
    payload = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "UADMIN"}, "api_app_id": "A1",
               "trigger_id": "333.444.ddd",
               "view": {"id": "VMODAL", "hash": "1.abc", "type": "modal", "callback_id": MODAL_CALLBACK,
                        "private_metadata": "acme",
                        "state": {"values": {"city": {"city": {"type": "plain_text_input", "value": "Truro"}}}}}}
    now = int(time.time())
    status, text = await send(slack, interaction(payload), FORM, ts=now)
    assert status == 200 and "errors" not in text
    status, text = await send(slack, interaction(payload), FORM, ts=now + 1, extra=RETRY)
    assert (status, text) == (200, "")
    await settle()
    assert await AuditEntry.filter(action="accounting.set").count() == 1
    assert len(slack.fake.posts("UADMIN")) == 1  # the "saved" DM; a second run would send another


async def test_request_ids_are_kept_past_slacks_retry_schedule_and_then_purged(db):
    now = 1_800_000_000.0
    clock = [now]
    store = ReplayStore(clock=lambda: clock[0])
    key = request_key({"type": "event_callback", "event_id": "Ev9"})
    assert key == "id:event:Ev9"
    assert await store.first_delivery(key, int(now)) is True
    clock[0] = now + 6 * 60  # Slack's last retry comes about 5 minutes after the first try
    await store.purge()
    assert await store.first_delivery(key, int(now)) is False
    clock[0] = now + RETRY_RETENTION_SECONDS + 1
    assert await store.purge() == 1
    assert await SeenRequest.all().count() == 0


def test_request_keys_name_what_every_delivery_of_one_request_shares():
    assert request_key({"command": "/invoicing", "trigger_id": "1.2.3"}) == "id:trigger:1.2.3"
    assert request_key({"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
                        "actions": [{"action_ts": "17.5"}]}) == "id:action:T1:U1:17.5"
    view: dict[str, Any] = {"id": "V1", "hash": "h", "state": {"values": {"city": {"city": {"value": "Leeds"}}}}}
    first = request_key({"type": "view_submission", "view": view})
    view["state"]["values"]["city"]["city"]["value"] = "York"  # corrected after errors: a new request
    assert first != request_key({"type": "view_submission", "view": view})
    assert request_key({"type": "url_verification"}) is None
    long_key = request_key({"trigger_id": "x" * 500})
    assert long_key is not None and len(long_key) <= 128
