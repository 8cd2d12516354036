"""Replays: a validly signed Slack request is executed once, on whichever replica it reaches.

A captured request is re-sent byte for byte (same timestamp, same signature) inside the
5-minute window bolt accepts: the first is executed, every replay is refused with 401 (an
Events API retry, marked ``X-Slack-Retry-Num``, gets 200 and no effect). The memory is the
database (``slack_request_seen``), so two app instances on one database refuse the same
replay; only verified requests are remembered, and expired rows are purged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from tortoise import connections

from bot.replay_store import CLOCK_SKEW_SECONDS, PURGE_BATCH, WINDOW_SECONDS, ReplayStore
from commands.context import Services
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.transport import SmtpTransport
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Delivery, SeenRequest, Tenant
from tests.bot.slack_harness import SlackHarness, sign, start_harness, stop_harness
from tests.factories import T0
from tests.fakes.smtp import RecordingHandler, free_port, start_server
from tests.invoicing.delivery.test_delivery import tiny_pdf
from tests.reliability.conftest import snapshot

FORM = "application/x-www-form-urlencoded"


def signed(body: str, *, timestamp: int | None = None, content_type: str = FORM) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, ts)}


def command_body(slack: SlackHarness, text: str, trigger: str = "1.2.3") -> str:
    return urlencode({"team_id": "T1", "user_id": "UADMIN", "command": "/invoicing", "text": text,
                      "channel_id": "CBILLING", "response_url": slack.fake.response_url(), "trigger_id": trigger})


async def post(slack: SlackHarness, body: str, headers: dict[str, str]) -> int:
    async with slack.session.post(slack.url, data=body.encode(), headers=headers) as response:
        await response.read()
        return response.status


@pytest.fixture
async def smtp() -> AsyncIterator[RecordingHandler]:
    port = free_port()
    controller, handler = start_server(port)
    handler.port = port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
async def mail(tenants, smtp: RecordingHandler) -> AsyncIterator[Outbox]:
    """An outbox on the aiosmtpd server; invoice 000001 of inkwell issued and its first e-mail sent."""
    inkwell, _ = tenants
    await run_by_name(inkwell, "acme", clock=lambda: T0)
    transport = SmtpTransport("127.0.0.1", smtp.port, security="none", timeout=5, local_hostname="localhost")
    outbox = Outbox(transport, tiny_pdf, "invoices@inkwell.example")
    await outbox.deliver_due()
    smtp.received.clear()
    yield outbox
    await transport.close()


@pytest.fixture
async def replicas(tenants, mail: Outbox) -> AsyncIterator[list[SlackHarness]]:
    """Two app instances (bolt app, HTTP server, replay store each) on the one test database."""
    harnesses = [await start_harness(services=Services(resend_invoice=mail.resend)) for _ in range(2)]
    yield harnesses
    for harness in harnesses:
        await stop_harness(harness)


async def resend_copies(outbox: Outbox, smtp: RecordingHandler) -> int:
    await outbox.deliver_due()
    return sum("(copy)" in str(r.message["Subject"]) for r in smtp.received)


async def test_a_signed_resend_replayed_three_times_sends_one_email_and_each_replay_is_401(
        replicas: list[SlackHarness], mail: Outbox, smtp: RecordingHandler):
    slack = replicas[0]
    body = command_body(slack, "invoice 000001 resend")
    headers = signed(body)
    assert await post(slack, body, headers) == 200
    await slack.fake.wait_for("chat.postMessage")
    assert [await post(slack, body, headers) for _ in range(3)] == [401, 401, 401]
    await asyncio.sleep(0.2)  # a replay that got through would be queueing its resend now
    assert await Delivery.filter(kind="resend").count() == 1
    assert await resend_copies(mail, smtp) == 1
    assert len(slack.fake.received("chat.postMessage")) == 1


async def test_a_replay_sent_to_another_replica_is_refused_there_too(
        replicas: list[SlackHarness], mail: Outbox, smtp: RecordingHandler):
    first, second = replicas
    body = command_body(first, "invoice 000001 resend")
    headers = signed(body)
    assert await post(first, body, headers) == 200
    assert await post(second, body, headers) == 401
    # The same request reaching both replicas at once (a retrying proxy): exactly one runs it.
    body = command_body(first, "invoice 000001 resend", trigger="4.5.6")
    headers = signed(body)
    statuses = await asyncio.gather(*(post(h, body, headers) for h in (first, second) for _ in range(5)))
    assert sorted(statuses) == [200] + [401] * 9
    for _ in range(100):  # the winner answers in its channel after the ack
        if sum(len(h.fake.received("chat.postMessage")) for h in replicas) == 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert sum(len(h.fake.received("chat.postMessage")) for h in replicas) == 2
    assert await Delivery.filter(kind="resend").count() == 2
    assert await resend_copies(mail, smtp) == 2


async def test_an_events_api_retry_of_a_handled_event_is_acknowledged_with_200_and_not_run_again(
        replicas: list[SlackHarness]):
    slack = replicas[0]
    body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": "Ev1",
                       "event": {"type": "app_mention", "user": "UADMIN", "text": "hi", "channel": "CBILLING"}})
    headers = signed(body, content_type="application/json")
    first = await post(slack, body, headers)
    assert first in (200, 404)  # no listener for app_mention: bolt says unhandled
    assert await post(slack, body, {**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}) == 200
    assert await post(slack, body, headers) == 401  # the same bytes without the retry mark: a replay
    assert await SeenRequest.filter(signature__startswith="v0=").count() == 1  # (and one row for its event_id)


async def test_only_validly_signed_requests_are_remembered(replicas: list[SlackHarness]):
    slack = replicas[0]
    before = await snapshot()
    body = command_body(slack, "companies")
    ts = int(time.time())
    for headers in [{**signed(body), "X-Slack-Signature": "v0=" + "0" * 64},
                    signed(body, timestamp=ts - WINDOW_SECONDS - 10),
                    {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(ts)}]:
        assert await post(slack, body, headers) == 401
    assert await SeenRequest.all().count() == 0
    assert await snapshot() == before
    assert slack.fake.calls == []


async def test_rows_outside_the_window_are_purged_in_bounded_batches_and_recent_ones_kept(db):
    now = 1_800_000_000.0
    expired = int(now) - WINDOW_SECONDS - CLOCK_SKEW_SECONDS - 1
    seen_at = datetime.fromtimestamp(now, UTC)
    await SeenRequest.bulk_create([SeenRequest(signature=f"v0=old{i}", timestamp=expired, seen_at=seen_at)
                                   for i in range(PURGE_BATCH + 5)])
    await SeenRequest.create(signature="v0=recent", timestamp=int(now) - WINDOW_SECONDS, seen_at=seen_at)
    store = ReplayStore(clock=lambda: now)
    assert await store.first_sighting(int(now), "v0=new") is True  # purges one batch on the way
    assert await SeenRequest.filter(timestamp=expired).count() == 5
    assert await store.purge() == 5
    assert await store.purge() == 0
    assert set(await SeenRequest.all().values_list("signature", flat=True)) == {"v0=recent", "v0=new"}
    assert await store.first_sighting(int(now), "v0=new") is False
    assert await store.first_sighting(int(now) - WINDOW_SECONDS, "v0=recent") is False


async def test_a_failure_of_the_replay_store_is_a_500_without_traceback_and_runs_nothing(
        replicas: list[SlackHarness], caplog: pytest.LogCaptureFixture):
    slack = replicas[0]
    await connections.get("default").execute_script("DROP TABLE slack_request_seen")
    body = command_body(slack, "invoice 000001 resend")
    async with slack.session.post(slack.url, data=body.encode(), headers=signed(body)) as response:
        text = await response.text()
        assert response.status == 500
    assert "Traceback" not in text and "slack_request_seen" not in text
    await asyncio.sleep(0.2)
    assert await Delivery.filter(kind="resend").count() == 0
    assert slack.fake.received("chat.postMessage") == [] and slack.fake.received("response_url") == []


async def test_tenant_fixture_is_unchanged_by_a_replayed_read(replicas: list[SlackHarness], tenants):
    """A replay of a read-only command is refused all the same (the guard does not know what a command does)."""
    slack = replicas[0]
    body = command_body(slack, "companies")
    headers = signed(body)
    assert await post(slack, body, headers) == 200
    assert await post(slack, body, headers) == 401
    assert await Tenant.all().count() == 2
