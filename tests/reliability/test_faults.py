"""Fault injection: each failure is handled as designed — retried, reported or rolled back.

Faults come from real local servers (aiosmtpd, the fake Slack Web API, PostgreSQL)
that misbehave on purpose; what is asserted is what a user or the database ends up
with: one e-mail accepted, a failure reason on the delivery row and in Slack, a
message posted after a rate limit, a run that left no trace of a number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import asyncpg
import pytest

from bot.notifier import SlackNoticeChannel, notice_client
from bot.slack_web import ChannelPoster, web_client
from commands.replies import Reply
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.slack_notices import NoticeOutbox
from invoicing.delivery.transport import SmtpTransport, Transport
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Company, Delivery, Invoice, InvoiceRun, Order, RunOutcome, Tenant
from tests import factories as f
from tests.conftest import POSTGRES_URL
from tests.factories import T0
from tests.fakes.slack_api import FakeSlack
from tests.fakes.smtp import RecordingHandler, free_port
from tests.invoicing.delivery.test_delivery import Clock, issue_invoice, tiny_pdf

MAIL_FROM = "invoices@inkwell.example"


class MailHold:
    """The next MAIL FROM, left unanswered for as long as the client stays connected.

    aiosmtpd serves on its own loop in a thread; the events live on the test's loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.received = asyncio.Event()  # the server has the MAIL command and is not answering
        self.over = asyncio.Event()  # the session ended: the client hung up without an answer

    async def hold(self) -> None:
        self._loop.call_soon_threadsafe(self.received.set)
        try:
            await asyncio.Event().wait()  # nothing sets it: aiosmtpd cancels this when the client hangs up
        finally:
            self._loop.call_soon_threadsafe(self.over.set)


class FaultyHandler(RecordingHandler):
    """The recording server, plus two faults: hang up in the middle of DATA, or never answer MAIL FROM."""

    def __init__(self) -> None:
        super().__init__()
        self.hang_up_in_data = 0  # how many DATA commands to answer by closing the connection
        self.mail_hold: MailHold | None = None  # holds the next MAIL FROM unanswered

    def hold_next_mail(self) -> MailHold:
        self.mail_hold = MailHold()
        return self.mail_hold

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        hold, self.mail_hold = self.mail_hold, None
        if hold is not None:
            await hold.hold()
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.hang_up_in_data:
            # The connection resets before the server answers: the message was never accepted.
            self.hang_up_in_data -= 1
            self.data_commands += 1
            server.transport.abort()
            return "451 never seen by the client"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp() -> Iterator[tuple[int, FaultyHandler]]:
    from aiosmtpd.controller import Controller

    handler = FaultyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="localhost")
    controller.start()
    yield controller.port, handler
    controller.stop()


def smtp_transport(port: int, opened: list[Transport], timeout: float = 5) -> SmtpTransport:
    transport = SmtpTransport("127.0.0.1", port, security="none", timeout=timeout, local_hostname="localhost")
    opened.append(transport)
    return transport


# --- SMTP ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", ["421 4.3.2 service not available, try later", "451 4.7.1 greylisted, try later"])
async def test_a_transient_smtp_reply_is_retried_after_backoff_and_delivered_once(db, smtp, transports, reply):
    port, server = smtp
    server.script = [reply]
    _, delivery = await issue_invoice()
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, base_backoff_seconds=30)

    (first,) = await outbox.deliver_due()
    assert (first.status, first.error, first.attempts) == ("pending", reply, 1)
    assert (await Delivery.get(id=delivery.id)).next_attempt_at == T0 + timedelta(seconds=30)
    clock.advance(seconds=29)
    assert await outbox.deliver_due() == []  # backoff respected: nothing is tried early
    clock.advance(seconds=1)
    (second,) = await outbox.deliver_due()

    assert (second.status, second.attempts) == ("sent", 2)
    assert server.data_commands == 2 and len(server.received) == 1
    assert server.received[0].message["Message-ID"] == delivery.message_id
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, reply)


async def test_a_550_fails_permanently_records_the_reason_and_tells_the_company_channel(db, smtp, transports):
    port, server = smtp
    server.script = ["550 5.1.1 mailbox unavailable"]
    _, delivery = await issue_invoice()
    company = await Company.get(short_name="acme")
    company.slack_channel = "CBILLING"
    await company.save()
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock)
    fake = await FakeSlack().start()
    try:
        outcomes = await outbox.deliver_due()
        channel = SlackNoticeChannel(notice_client("xoxb-test", fake.api_url),
                                     ChannelPoster(web_client("xoxb-test", fake.api_url), min_interval=0))
        await NoticeOutbox(channel, clock).deliver_due()
        clock.advance(days=1)
        assert await outbox.deliver_due() == []  # permanent: never retried
    finally:
        await fake.stop()

    assert [(o.status, o.error) for o in outcomes] == [("failed", "550 5.1.1 mailbox unavailable")]
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "550 5.1.1 mailbox unavailable")
    assert server.received == [] and server.data_commands == 1
    (post,) = fake.received("chat.postMessage")
    assert post.params["channel"] == "CBILLING"
    expected = "Invoice 000001 could not be e-mailed to ap@acme.example: 550 5.1.1 mailbox unavailable"
    assert expected in post.params["text"]


async def test_a_connection_reset_during_data_is_transient_and_the_retry_delivers_exactly_once(db, smtp, transports):
    port, server = smtp
    server.hang_up_in_data = 1
    _, delivery = await issue_invoice()
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, base_backoff_seconds=30)

    (first,) = await outbox.deliver_due()
    assert first.status == "pending" and "closed the connection" in first.error
    assert server.received == []
    clock.advance(seconds=30)
    (second,) = await outbox.deliver_due()

    assert (second.status, second.attempts) == ("sent", 2)
    assert server.data_commands == 2
    assert [r.message["Message-ID"] for r in server.received] == [delivery.message_id]  # no duplicate accepted


async def test_a_server_slower_than_the_smtp_timeout_is_transient_and_retried(db, smtp, transports):
    port, server = smtp
    hold = server.hold_next_mail()
    _, delivery = await issue_invoice()
    clock = Clock(T0)
    # Long enough for the server to answer the greeting and EHLO on a loaded machine:
    # the test waits it out once, at MAIL FROM.
    transport = smtp_transport(port, transports, timeout=1.0)
    outbox = Outbox(transport, tiny_pdf, MAIL_FROM, clock, base_backoff_seconds=30)

    # A guard, not a measurement: were the 1 s timeout not applied, the hold would last
    # until the transport's 60 s default.
    async with asyncio.timeout(30):
        (first,) = await outbox.deliver_due()
        # The server has MAIL FROM and never answers it: the client gave up at its timeout.
        assert hold.received.is_set()
        assert first.status == "pending" and "timed out" in first.error
        await hold.over.wait()  # the slow session is over (the client hung up) before the next connection
        clock.advance(seconds=30)
        (second,) = await outbox.deliver_due()

    assert (second.status, second.attempts) == ("sent", 2)
    assert transport.connections_opened == 2
    assert [r.message["Message-ID"] for r in server.received] == [delivery.message_id]


# --- Slack Web API ---------------------------------------------------------------------------------


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


async def test_a_429_with_retry_after_is_waited_out_and_the_message_is_posted_not_dropped(fake_slack):
    fake_slack.script("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
    poster = ChannelPoster(web_client("xoxb-test", fake_slack.api_url), min_interval=0)

    started = time.monotonic()
    await poster.post("CBILLING", Reply(text="Invoice INK-000001 issued", ephemeral=False))

    assert time.monotonic() - started >= 1.0  # Retry-After honoured
    calls = fake_slack.received("chat.postMessage")
    assert [c.params["text"] for c in calls] == ["Invoice INK-000001 issued"] * 2  # refused once, then posted


@pytest.mark.parametrize("status", [500, 503])
async def test_a_slack_5xx_is_retried_and_the_message_is_posted(fake_slack, status):
    fake_slack.script("chat.postMessage", status, {"ok": False, "error": "internal_error"})
    poster = ChannelPoster(web_client("xoxb-test", fake_slack.api_url), min_interval=0)

    await poster.post("CBILLING", Reply(text="Invoice INK-000001 issued", ephemeral=False))

    assert len(fake_slack.received("chat.postMessage")) == 2


# --- the database connection drops in the middle of a run (PostgreSQL) -----------------------------


def _terminate_idle_in_transaction(database: str) -> int:
    """From a second connection, kill the backend holding an open transaction on ``database``.

    Runs on its own loop in a worker thread because ``checkpoint`` is synchronous: the
    run is frozen inside its transaction, exactly between two statements, while we do it.
    """

    async def kill() -> int:
        conn = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1))
        try:
            return len(await conn.fetch(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = $1 AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()", database))
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, kill()).result()


@pytest.mark.parametrize("step", ["numbered", "orders_marked", "recorded"])
async def test_a_dropped_database_connection_mid_run_rolls_everything_back(db, step):
    if db.backend != "postgres":
        pytest.skip("terminates a PostgreSQL backend")
    database = db.url.rsplit("/", 1)[1].split("?")[0]
    t = await f.tenant()
    c = await f.company(t)
    await f.price(t, "MUG", "5.00")
    orders = [await f.order(c) for _ in range(3)]
    killed: list[int] = []

    def checkpoint(name: str) -> None:
        if name == step:
            killed.append(_terminate_idle_in_transaction(database))

    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a dead connection
        await run_by_name(t, "acme", clock=lambda: T0, checkpoint=checkpoint)

    assert killed == [1]
    assert await Invoice.all().count() == 0
    assert (await Tenant.get(id=t.id)).last_invoice_number == 0  # the number went back
    assert await Order.filter(invoice_id__isnull=False).count() == 0
    assert await Delivery.all().count() == 0
    assert await InvoiceRun.filter(outcome=RunOutcome.INVOICED).count() == 0

    report = await run_by_name(t, "acme", clock=lambda: T0 + timedelta(minutes=1))

    assert (report.invoice_number, report.orders_invoiced) == ("000001", len(orders))
    assert await Order.filter(invoice_id=report.invoice_id).count() == len(orders)
