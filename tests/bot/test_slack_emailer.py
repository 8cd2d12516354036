"""``/invoicing emailer`` and ``schedule`` through the real Slack app."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commands.context import Services
from invoicing.delivery.bcc import bcc_of
from models import AuditEntry, Company, Integration, IntegrationKind
from tests import factories as f
from tests.bot.slack_harness import start_harness, stop_harness
from tests.fakes.slack_api import text_of

NOW = datetime(2026, 11, 25, 10, 20, tzinfo=UTC)  # a Wednesday


@pytest.fixture
async def woken():
    return []


@pytest.fixture
async def slack(db, woken):
    harness = await start_harness(services=Services(wake_scheduler=lambda: woken.append(1)), clock=lambda: NOW)
    yield harness
    await stop_harness(harness)


@pytest.fixture
async def acme(db):
    t = await f.tenant(team="T1")
    return await f.company(t, "acme")


async def test_enable_without_next_runs_at_the_next_hour_then_weekly(slack, acme, woken):
    reply = await slack.reply("emailer acme enable")
    shown = text_of(reply)
    assert "First invoice run: Wed 25 Nov 2026 11:00 GMT" in shown
    assert "weekly (Europe/London)" in shown
    row = await Integration.get(company_id=acme.id, kind=IntegrationKind.PDF_EMAILER)
    assert row.enabled and row.next_run_at == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    assert woken == [1]
    assert await AuditEntry.filter(action="emailer.enable").count() == 1


async def test_set_bcc_schedule_next_and_channel_in_one_change(slack, acme):
    await slack.reply("emailer acme enable")
    reply = await slack.reply('emailer acme set bcc=<mailto:a@x.com|a@x.com>, b@y.com schedule=daily '
                              'next=“2026-12-01 09:00” channel=<#C0BILL|billing> include_errors=yes')
    shown = text_of(reply)
    assert "a@x.com, b@y.com" in shown and "Tue 01 Dec 2026 09:00 GMT" in shown
    row = await Integration.get(company_id=acme.id, kind=IntegrationKind.PDF_EMAILER)
    assert (bcc_of(row), row.schedule, row.include_errors) == (["a@x.com", "b@y.com"], "daily", True)
    assert (await Company.get(id=acme.id)).slack_channel == "C0BILL"


async def test_a_bad_bcc_entry_is_named_and_nothing_changes(slack, acme):
    reply = await slack.reply("emailer acme set bcc=a@x.com,not-an-address schedule=daily")
    assert "not-an-address" in text_of(reply)
    row = await Integration.get(company_id=acme.id, kind=IntegrationKind.PDF_EMAILER)
    assert (bcc_of(row), row.schedule) == ([], "weekly")


async def test_a_bad_cron_is_refused_with_the_expected_format(slack, acme):
    reply = await slack.reply('emailer acme set schedule="61 * * * *"')
    assert "schedule" in text_of(reply) and "cron" in text_of(reply)
    assert (await Integration.get(company_id=acme.id, kind=IntegrationKind.PDF_EMAILER)).schedule == "weekly"


async def test_a_next_time_in_the_past_or_a_bad_date_is_refused(slack, acme):
    reply = await slack.reply('emailer acme set next="2026-11-01 09:00"')
    assert "in the past" in text_of(reply)
    reply = await slack.reply('emailer acme set next="tomorrow"')
    assert "next" in text_of(reply) and "YYYY-MM-DD HH:MM" in text_of(reply)


async def test_enabling_on_oms_lite_is_refused(slack, db):
    t = await f.tenant("lite", plan="oms_lite", team="T1")
    await f.company(t, "acme")
    reply = await slack.reply("emailer acme enable")
    assert "is on OMS Lite: invoicing needs an active OMS licence" in text_of(reply)
    assert not (await Integration.get(kind=IntegrationKind.PDF_EMAILER)).enabled


async def test_a_member_can_read_but_not_change_the_emailer(slack, acme):
    reply = await slack.reply("emailer acme", user="UMEMBER")
    assert "PDF Emailer: acme" in text_of(reply)
    reply = await slack.reply("emailer acme enable", user="UMEMBER")
    assert "can change the PDF Emailer" in text_of(reply)


async def test_schedule_lists_upcoming_runs_across_companies(slack, acme):
    await f.company(await acme.tenant, "zeta", timezone="America/New_York")
    await slack.reply("emailer acme enable")
    await slack.reply("emailer zeta enable")
    reply = await slack.reply("schedule")
    shown = text_of(reply)
    assert shown.index("*acme*") < shown.index("*zeta*")
    assert "Wed 25 Nov 2026 06:00 EST" in shown
