"""Socket Mode, end to end: the real ``Service`` with ``SLACK_APP_TOKEN`` against local fakes.

The fake Web API answers ``apps.connections.open`` with the URL of a local websocket server
(``tests/fakes/socket_mode.py``); it says ``hello`` and pushes envelopes the way Slack does.
Each envelope must be acknowledged with its ``envelope_id`` (a modal's errors ride on the
ack), the command's effect must happen, a retried envelope acts once and dependent commands
apply in order — the same guarantees as over HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Service
from bot.settings import Settings
from commands.click_handlers import CLICKS
from commands.clicks import Click, ClickResult, action_id
from commands.companies import MODAL_CALLBACK
from commands.replies import message, section
from models import AuditEntry, Company, Price
from tests import factories as f
from tests.bot.slack_harness import SIGNING_SECRET
from tests.fakes.slack_api import FakeSlack, text_of
from tests.fakes.smtp import free_port
from tests.fakes.socket_mode import FakeSocketMode

_TRIGGERS = itertools.count(1)


@pytest.fixture
async def socket_world(db_url, tmp_path) -> AsyncIterator[tuple[Service, FakeSlack, FakeSocketMode]]:
    socket = await FakeSocketMode().start()
    fake = await FakeSlack(admins={"UADMIN"}, socket_url=socket.url).start()
    settings = Settings(
        invoicebot_data_dir=tmp_path, database_url=db_url.url, host="127.0.0.1", port=free_port(),
        slack_bot_token="xoxb-socket", slack_signing_secret=SIGNING_SECRET, slack_app_token="xapp-1-test",
        slack_api_url=fake.api_url, mail_from="invoices@inkwell.example",
    )
    service = Service(settings, scheduler_enabled=False)
    await service.start()
    if service.poster is not None:
        service.poster.min_interval = 0.0
    await socket.wait_connected()
    await f.tenant(team="T1")
    yield service, fake, socket
    await service.stop()
    await socket.stop()
    await fake.stop()


def slash(fake: FakeSlack, text: str, name: str, *, trigger: str | None = None) -> dict[str, Any]:
    return {"token": "legacy", "team_id": "T1", "channel_id": "CBILLING", "channel_name": "billing",
            "user_id": "UADMIN", "command": "/invoicing", "text": text, "response_url": fake.response_url(name),
            "trigger_id": trigger or f"9.{next(_TRIGGERS)}.sock"}


async def answer(fake: FakeSlack, name: str) -> str:
    for _ in range(200):
        found = [c for c in fake.received("response_url") if c.path == name]
        if found:
            return text_of(found[0].params)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer at response_url {name}")


def modal(values: dict[str, str]) -> dict[str, Any]:
    state = {k: {k: {"type": "plain_text_input", "value": v}} for k, v in values.items()}
    return {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "UADMIN"}, "api_app_id": "A1",
            "trigger_id": f"9.{next(_TRIGGERS)}.view",
            "view": {"id": "VSOCK", "hash": "1.h", "type": "modal", "callback_id": MODAL_CALLBACK,
                     "private_metadata": "zeta", "team_id": "T1",
                     "state": {"values": state}}}


async def test_the_service_connects_and_acks_a_command_a_click_and_a_modal(socket_world, monkeypatch):
    service, fake, socket = socket_world
    assert [c.params.get("token", "") for c in fake.received("apps.connections.open")] != []

    envelope = await socket.send("slash_commands", slash(
        fake, 'company add zeta name="Zeta Gifts" country=GB currency=GBP timezone=Europe/London', "add"))
    assert await socket.ack(envelope) == {"envelope_id": envelope}
    assert "Added *zeta*" in await answer(fake, "add")
    assert await Company.filter(short_name="zeta").exists()

    presses: list[str] = []

    async def press(click: Click) -> ClickResult:
        presses.append(f"{click.name}:{click.value}:{click.ctx.tenant.name}")
        return ClickResult(reply=message("pressed", section("pressed")))

    monkeypatch.setitem(CLICKS, "socket_test", press)
    envelope = await socket.send("interactive", {
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "UADMIN"}, "api_app_id": "A1",
        "trigger_id": f"9.{next(_TRIGGERS)}.click", "response_url": fake.response_url("click"),
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": "CBILLING"},
        "channel": {"id": "CBILLING"}, "message": {"ts": "1.000001", "text": "", "blocks": []},
        "actions": [{"type": "button", "action_id": action_id("socket_test"), "block_id": "b1", "value": "v1",
                     "action_ts": "1700000000.000100"}]})
    assert await socket.ack(envelope) == {"envelope_id": envelope}
    assert "pressed" in await answer(fake, "click")
    assert presses == ["socket_test:v1:inkwell"]

    envelope = await socket.send("interactive", modal({"email": "not-an-address"}), accepts_response_payload=True)
    ack = await socket.ack(envelope)
    assert ack["envelope_id"] == envelope
    assert ack["payload"]["response_action"] == "errors" and set(ack["payload"]["errors"]) == {"email"}
    assert not await AuditEntry.filter(action="accounting.set").exists()

    envelope = await socket.send("interactive", modal({"city": "Truro"}), accepts_response_payload=True)
    assert await socket.ack(envelope) == {"envelope_id": envelope}
    assert (await Company.get(short_name="zeta")).city == "Truro"
    assert await AuditEntry.filter(action="accounting.set").count() == 1


async def test_a_retried_envelope_acts_once(socket_world):
    service, fake, socket = socket_world
    seen: list[str] = []

    @service.bolt.event("app_mention")
    async def mentioned(event: dict[str, Any]) -> None:
        seen.append(str(event.get("text")))

    command = slash(fake, "admins add <@UDANA>", "admins", trigger="9.777.retry")
    assert await socket.ack(await socket.send("slash_commands", command))
    assert "UDANA" in await answer(fake, "admins")
    retried = await socket.send("slash_commands", command, retry_attempt=1, retry_reason="timeout")
    assert await socket.ack(retried) == {"envelope_id": retried}

    event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvSock1",
             "event": {"type": "app_mention", "user": "UADMIN", "text": "hi", "channel": "CBILLING"}}
    for attempt in (0, 1, 2):
        envelope = await socket.send("events_api", event, retry_attempt=attempt,
                                     retry_reason="timeout" if attempt else "")
        assert await socket.ack(envelope) == {"envelope_id": envelope}
    await asyncio.sleep(0.3)
    assert seen == ["hi"]
    assert len([c for c in fake.received("response_url") if c.path == "admins"]) == 1
    assert await AuditEntry.filter(action="admins.add").count() == 1


async def test_dependent_commands_over_the_socket_apply_in_order(socket_world):
    service, fake, socket = socket_world
    script = [
        'company add yeta name="Yeta" country=GB currency=GBP timezone=Europe/London',
        'accounting yeta set legal_name="Yeta Ltd"',
        'price yeta CUP-1 cost=2.00 shipping=0.50 tax=20 name="Cup"',
        "price yeta CUP-1 cost=2.50 shipping=0.50 tax=20",
        "emailer yeta set schedule=weekly",
        "emailer yeta enable",
    ]
    for i, text in enumerate(script):  # each sent as soon as the previous one is acknowledged
        assert await socket.ack(await socket.send("slash_commands", slash(fake, text, f"dep-{i}")))
    answers = [await answer(fake, f"dep-{i}") for i in range(len(script))]
    assert not [a for a in answers if "Usage: `/invoicing" in a or "lists the commands" in a], answers
    yeta = await Company.get(short_name="yeta")
    assert yeta.legal_name == "Yeta Ltd"
    assert str((await Price.get(product__sku="CUP-1", retailer=yeta)).cost_price) in {"2.5", "2.50", "2.5000"}
