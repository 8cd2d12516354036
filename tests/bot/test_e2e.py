"""End to end: the whole service (HTTP Slack endpoint, scheduler, outbox) with real peers.

Slack is a local fake Web API, e-mail a local aiosmtpd, the database real. An ops
person configures a company from Slack, enables its emailer, sets BCC and a
schedule, runs it, and the accountant receives the PDF while the channel sees the
notification; then the scheduler's own run does the same.
"""

from __future__ import annotations

import email.policy
import io
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import aiohttp
import pytest
from pypdf import PdfReader

from bot.app import Service
from bot.settings import Settings
from models import (
    Delivery,
    Integration,
    IntegrationKind,
    Invoice,
    InvoiceRun,
    RunTrigger,
)
from tests import factories as f
from tests.bot.slack_harness import SIGNING_SECRET, sign
from tests.fakes.slack_api import FakeSlack, text_of
from tests.fakes.smtp import free_port, start_server


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(db_url, tmp_path):
    fake = await FakeSlack(admins={"UOPS"}).start()
    controller, inbox = start_server(free_port())
    clock = MovableClock(datetime(2026, 11, 25, 10, 20, tzinfo=UTC))
    settings = Settings(
        invoicebot_data_dir=tmp_path, database_url=db_url.url, host="127.0.0.1", port=free_port(),
        slack_bot_token="xoxb-e2e", slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.api_url,
        smtp_host="127.0.0.1", smtp_port=controller.port, smtp_security="none",
        mail_from="invoices@inkwell.example",
    )
    service = Service(settings, clock=clock)
    service.scheduler._max_sleep = 0.05  # poll fast: the test moves the clock, not time
    await service.start()
    if service.poster is not None:
        service.poster.min_interval = 0.0
    session = aiohttp.ClientSession()
    yield service, fake, inbox, clock, session
    await session.close()
    await service.stop()
    controller.stop()
    await fake.stop()


def answered(fake: FakeSlack) -> int:
    return len(fake.received("response_url")) + len(fake.received("chat.postMessage"))


async def slash(session, service, text: str, user: str = "UOPS", fake: FakeSlack | None = None) -> int:
    """Send a signed command; with ``fake``, also wait for its answer (work continues after the ack)."""
    before = answered(fake) if fake else 0
    body = urlencode({"team_id": "T1", "channel_id": "CBILL", "user_id": user, "command": "/invoicing",
                      "text": text, "response_url": fake.response_url() if fake else "http://127.0.0.1:9/x",
                      "trigger_id": uuid.uuid4().hex})  # unique, as Slack's: a repeat would be a replay
    ts = int(time.time())
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
               "X-Slack-Signature": sign(body, ts)}
    async with session.post(f"http://127.0.0.1:{service.port}/slack/events", data=body, headers=headers) as r:
        status = r.status
    if fake is not None:
        await until(lambda: _more(fake, before))
    return status


async def _more(fake: FakeSlack, before: int) -> bool:
    return answered(fake) > before


async def until(predicate, timeout: float = 15.0):
    """Poll the database until ``predicate()`` is truthy (work continues after the ack)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_configure_enable_run_and_receive_the_invoice(world):
    service, fake, inbox, clock, session = world
    tenant = await f.tenant(team="T1")
    for text in [
        'company add acme name="Acme Gifts" country=GB currency=GBP timezone=Europe/London channel=<#CBILL|billing>',
        'accounting acme set legal_name="Acme Gifts Ltd" address_line1="1 High St" city=Bristol postcode="BS1 4DJ" '
        'email=<mailto:ap@acme.example|ap@acme.example>',
        'price default MUG cost=4.20 shipping=1.10 tax=20 name="Ceramic mug"',
        "emailer acme enable",
        "emailer acme set bcc=ops@inkwell.example,ap@acme.example schedule=daily",
    ]:
        assert await slash(session, service, text, fake=fake) == 200
        errors = [c.params["text"] for c in fake.received("response_url") if ":warning:" in str(c.params)]
        assert not errors, errors
    company = await until(lambda: _company("acme"))
    await f.order(company, quantity=3, dispatched_at=clock.now - timedelta(hours=5))
    assert await slash(session, service, "run acme") == 200

    delivery = await until(lambda: Delivery.filter(status="sent").first())
    [mail] = inbox.received
    assert sorted(mail.rcpt_tos) == ["ap@acme.example", "ops@inkwell.example"]  # one copy for the address in both
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert message["To"] == "ap@acme.example" and message["Bcc"] is None
    assert message["Message-ID"] == delivery.message_id == f"<invoice.{tenant.id}.1@inkwell.example>"
    [pdf] = [part for part in message.iter_attachments() if part.get_filename() == "000001.pdf"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.get_content())).pages)
    assert "Acme Gifts Ltd" in text and "19.08" in text  # 3 × 5.30 = 15.90 + 20 % VAT 3.18

    posts = await fake.wait_for("chat.postMessage")
    shown = "\n".join(text_of(p.params) for p in posts)
    assert "acme — invoice 000001 issued" in shown and "£19.08" in shown


async def test_the_scheduler_runs_the_emailer_at_its_slot_and_notifies(world):
    service, fake, inbox, clock, session = world
    tenant = await f.tenant(team="T1")
    company = await f.company(tenant, "acme")
    company.slack_channel = "CBILL"
    await company.save()
    await f.price(tenant, "MUG", "5.00")
    await f.order(company, dispatched_at=clock.now - timedelta(hours=2))
    await f.emailer(company, bcc=["ops@inkwell.example"])
    assert await slash(session, service, "emailer acme enable", fake=fake) == 200
    integration = await until(lambda: Integration.filter(
        company_id=company.id, kind=IntegrationKind.PDF_EMAILER, enabled=True).first())
    slot = integration.next_run_at
    assert slot == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # the next top of the hour

    clock.now = slot + timedelta(seconds=1)
    service.scheduler.wake()
    run = await until(lambda: InvoiceRun.filter(trigger=RunTrigger.SCHEDULE).first())
    assert run.cutoff == slot
    await until(lambda: Delivery.filter(status="sent").exists())
    assert inbox.received[0].rcpt_tos == ["ap@acme.example", "ops@inkwell.example"]
    posts = await fake.wait_for("chat.postMessage")
    assert any("invoice 000001 issued" in text_of(p.params) for p in posts)
    following = await Integration.get(company_id=company.id, kind=IntegrationKind.PDF_EMAILER)
    assert following.next_run_at == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # then Sunday 00:00 London
    assert await Invoice.all().count() == 1


async def _company(short: str):
    from models import Company

    return await Company.get_or_none(short_name=short)


async def test_a_refused_scheduled_run_tells_the_channel_what_to_fix(world):
    service, fake, inbox, clock, session = world
    tenant = await f.tenant(team="T1")
    company = await f.company(tenant, "acme", complete=False)
    company.slack_channel = "CBILL"
    await company.save()
    await f.price(tenant, "MUG", "5.00")
    await f.order(company, dispatched_at=clock.now - timedelta(hours=2))
    assert await slash(session, service, "emailer acme enable", fake=fake) == 200
    integration = await until(lambda: Integration.filter(
        company_id=company.id, kind=IntegrationKind.PDF_EMAILER, enabled=True).first())
    clock.now = integration.next_run_at + timedelta(seconds=1)
    service.scheduler.wake()
    posts = await fake.wait_for("chat.postMessage")
    shown = text_of(posts[-1].params)
    assert "Invoice run for acme refused." in shown
    assert "company 'acme' is missing legal_name, address_line1, city, postcode, email" in shown
    assert inbox.received == [] and await Invoice.all().count() == 0
