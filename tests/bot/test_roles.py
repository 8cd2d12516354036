"""``serve --role``: a web replica answers Slack and runs nothing in the background; a worker runs the
scheduler and the outboxes and serves only ``/healthz``; on PostgreSQL the web replica's commands wake
the workers at once (``bot.wakeups``), not at their next 30 s poll."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.app import Service
from bot.cli import main as cli_main
from bot.settings import Settings
from bot.wakeups import CHANNEL, Wakeups
from models import Delivery, DeliveryStatus, Invoice
from tests import factories as f
from tests.bot.slack_harness import SIGNING_SECRET
from tests.bot.test_e2e import slash, until
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


def _settings(db_url: str, tmp_path: Path, fake: FakeSlack, smtp_port: int) -> Settings:
    return Settings(
        invoicebot_data_dir=tmp_path, database_url=db_url, host="127.0.0.1", port=free_port(),
        slack_bot_token="xoxb-roles", slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url,
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none", mail_from="invoices@inkwell.example",
    )


async def _acme(*, due: datetime | None = None) -> None:
    tenant = await f.tenant(team="T1")
    await f.price(tenant, "MUG", "5.00")
    company = await f.company(tenant, "acme")
    await f.emailer(company, enabled=True, **({"next_run_at": due} if due else {}))
    await f.order(company)


@pytest.fixture
async def peers():
    fake = await FakeSlack(admins={"UOPS"}).start()
    controller, inbox = start_server(free_port())
    yield fake, controller, inbox
    controller.stop()
    await fake.stop()


async def test_an_unknown_role_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="all, web, worker"):
        Service(Settings(), role="everything")
    with pytest.raises(SystemExit):
        cli_main(["serve", "--role", "everything"])


async def test_the_web_role_answers_slack_but_runs_no_schedule_and_sends_nothing(db_url, tmp_path, peers):
    fake, controller, inbox = peers
    service = Service(_settings(db_url.url, tmp_path, fake, controller.port), role="web")
    await service.start()
    try:
        await _acme(due=datetime.now(UTC) - timedelta(minutes=1))
        async with aiohttp.ClientSession() as session:
            assert await slash(session, service, "run acme", fake=fake) == 200
        invoice = await until(lambda: Invoice.filter().first())
        await asyncio.sleep(0.5)
        assert await Invoice.all().count() == 1  # the manual run only: the due slot waits for a worker
        assert (await Delivery.get(invoice_id=invoice.id)).status == DeliveryStatus.PENDING
        assert inbox.received == []
        assert service.scheduler_enabled is False
    finally:
        await service.stop()


async def test_the_worker_role_serves_health_only_and_runs_what_is_due(db_url, tmp_path, peers):
    fake, controller, inbox = peers
    service = Service(_settings(db_url.url, tmp_path, fake, controller.port), role="worker")
    service.scheduler._max_sleep = 0.05
    await service.start()
    try:
        base = f"http://127.0.0.1:{service.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as r:
                assert r.status == 200
            for path in ("/slack/events", "/api/v1/orders"):
                async with session.post(f"{base}{path}", data=b"x") as r:
                    assert r.status == 404, path
        await _acme(due=datetime.now(UTC) - timedelta(seconds=1))
        service.scheduler.wake()
        await until(lambda: _sent(inbox))
        assert await Invoice.all().count() == 1
    finally:
        await service.stop()


async def _sent(inbox) -> bool:
    return bool(inbox.received)


async def _recorded_sent() -> bool:
    return await Delivery.filter(status=DeliveryStatus.SENT).exists()


async def _listening(url: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        count = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query = $1",
                                    f'LISTEN "{CHANNEL}"')
    finally:
        await conn.close()
    return bool(count)


async def test_a_command_on_the_web_replica_wakes_the_worker_at_once(db_url, tmp_path, peers):
    if db_url.backend != "postgres":
        pytest.skip("wake-ups are PostgreSQL NOTIFY; on SQLite the worker finds the work at its next poll")
    fake, controller, inbox = peers
    web = Service(_settings(db_url.url, tmp_path / "web", fake, controller.port), role="web")
    await web.start()
    worker_env = {**os.environ, "DATABASE_URL": db_url.url, "HOST": "127.0.0.1", "PORT": str(free_port()),
                  "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(controller.port), "SMTP_SECURITY": "none",
                  "MAIL_FROM": "invoices@inkwell.example", "INVOICEBOT_DATA_DIR": str(tmp_path / "worker")}
    worker = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--role", "worker"], cwd=ROOT, env=worker_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await _acme()
        deadline = time.monotonic() + 30
        while not await _listening(db_url.url):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never listened"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # its first passes are over: from now on it polls every 30 s
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            assert await slash(session, web, "run acme", fake=fake) == 200
        await until(lambda: _sent(inbox), timeout=10)
        # The outbox records `sent` after the server's 250 (its own commit, a moment later): wait for it too.
        await until(_recorded_sent, timeout=10)
        assert time.monotonic() - started < 10  # woken, not polled
        assert (await Delivery.get()).status == DeliveryStatus.SENT
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        await web.stop()


async def test_a_wake_up_reaches_every_listener_and_a_foreign_payload_is_ignored(db_url, db):
    if db_url.backend != "postgres":
        assert not Wakeups(db_url.url).enabled
        await Wakeups(db_url.url).publish("outbox")  # nothing to send to: a no-op, never an error
        return
    heard: list[str] = []
    listener = Wakeups(db_url.url)
    listener.listen(heard.append)
    await asyncio.wait_for(listener.connected.wait(), timeout=10)
    heard.clear()  # the catch-up wake-ups of a (re)connected listener
    publisher = Wakeups(db_url.url)
    await publisher.publish("scheduler")
    await publisher.publish("drop table")  # not a topic: never sent
    from tortoise import connections

    await connections.get("default").execute_query("SELECT pg_notify($1, $2)", [CHANNEL, "bogus"])
    await publisher.publish("outbox")
    deadline = time.monotonic() + 5
    while len(heard) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await listener.close()
    assert heard == ["scheduler", "outbox"]


async def test_a_worker_sends_on_its_smtp_connections_each_its_share_of_the_deliveries(db_url, tmp_path, peers):
    fake, controller, inbox = peers
    settings = _settings(db_url.url, tmp_path, fake, controller.port).model_copy(update={"smtp_connections": 3})
    service = Service(settings, role="worker")
    assert [outbox._shard for outbox in service.outboxes] == [(0, 3), (1, 3), (2, 3)]
    assert len({id(t) for t in service.transports}) == 3  # a connection of its own each
    service.scheduler._max_sleep = 0.05
    await service.start()
    try:
        tenant = await f.tenant(team="T1")
        await f.price(tenant, "MUG", "5.00")
        for k in range(6):
            company = await f.company(tenant, f"shop{k}")
            await f.emailer(company, enabled=True, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
            await f.order(company)
        service.scheduler.wake()
        await until(lambda: _all_sent(6), timeout=30)
        assert len({r.message["Message-ID"] for r in inbox.received}) == len(inbox.received) == 6
        assert sum(t.connections_opened for t in service.transports) == 3  # every connection sent its share
    finally:
        await service.stop()
    without_smtp = Service(settings.model_copy(update={"smtp_host": ""}), role="worker")
    assert len(without_smtp.outboxes) == 1  # one writer per outbox folder


async def _all_sent(count: int) -> bool:
    return await Delivery.filter(status=DeliveryStatus.SENT).count() == count
