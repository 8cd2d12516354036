"""``/invoicing schedule``: the tenant's enabled PDF Emailers, soonest first, each in its company's time zone.

Read by a hand-written statement (``commands/paging.page_rows``); these tests pin which rows
count, their order (a run not scheduled sorts where the database puts NULL), the lines and the
page spans, on both backends.
"""

from __future__ import annotations

from datetime import timedelta

from commands import paging
from commands.context import CommandContext
from commands.dispatch import dispatch
from commands.replies import Reply
from invoicing.parties.companies import create_company
from models import Integration, IntegrationKind, Tenant
from tests import factories as f
from tests.factories import T0


async def ask(tenant: Tenant, text: str) -> Reply:
    return await dispatch(text, CommandContext(tenant=tenant, user_id="UOPS"))


def lines(reply: Reply) -> list[str]:
    return [line for block in reply.blocks if block["type"] == "section" for line in block["text"]["text"].splitlines()]


async def test_only_the_tenants_enabled_emailers_are_listed_soonest_first_in_each_companys_zone(db):
    tenant = await f.tenant()
    rival = await f.tenant("rival")
    zones = {
        "acme": "Europe/London",
        "beta": "America/New_York",
        "gamma": "Asia/Tokyo",
        "delta": "UTC",
        "off": "UTC",
        "never": "Europe/Berlin",
    }
    for short, zone in zones.items():
        await f.company(tenant, short, timezone=zone)
    theirs = await f.company(rival, "acme")
    await f.emailer(await f.company(tenant, "xmlonly"), enabled=False)
    runs = {
        "acme": (T0 + timedelta(hours=5), "weekly"),
        "beta": (T0 + timedelta(hours=1), "daily"),
        "gamma": (T0 + timedelta(hours=5), "0 6 * * 1"),
        "delta": (T0 + timedelta(hours=2), "monthly"),
        "off": (T0, "weekly"),
        "never": (None, "weekly"),
    }
    for short, (when, schedule) in runs.items():
        await Integration.filter(
            company__tenant_id=tenant.id, company__short_name=short, kind=IntegrationKind.PDF_EMAILER
        ).update(enabled=short != "off", next_run_at=when, schedule=schedule)
    await Integration.filter(company_id=theirs.id, kind=IntegrationKind.PDF_EMAILER).update(
        enabled=True, next_run_at=T0
    )
    await Integration.filter(company__short_name="xmlonly", kind=IntegrationKind.XML_EXPORT).update(
        enabled=True, next_run_at=T0
    )

    reply = await ask(tenant, "schedule")
    assert reply.text == "Upcoming invoice runs (1–5 of 5)"
    unscheduled = "`—` *never* (weekly)"
    listed = [
        "`Mon 02 Nov 2026 05:00 EST` *beta* (daily)",
        "`Mon 02 Nov 2026 11:00 UTC` *delta* (monthly)",
        "`Mon 02 Nov 2026 14:00 GMT` *acme* (weekly)",  # acme and gamma share a time: by id
        "`Mon 02 Nov 2026 23:00 JST` *gamma* (0 6 * * 1)",
    ]
    # NULL sorts last on PostgreSQL and first on SQLite, as each database orders it.
    expected = [*listed, unscheduled] if db.backend == "postgres" else [unscheduled, *listed]
    assert lines(reply) == expected
    assert lines(await ask(rival, "schedule")) == ["`Mon 02 Nov 2026 09:00 GMT` *acme* (weekly)"]


async def test_pages_say_where_they_are_and_a_page_past_the_end_says_how_many_there_are(db):
    tenant = await f.tenant()
    for n in range(42):
        company = await create_company(tenant, f"shop{n:02d}", name=f"Shop {n}", country="GB", currency="GBP")
        await Integration.filter(company_id=company.id, kind=IntegrationKind.PDF_EMAILER).update(
            enabled=True, next_run_at=T0 + timedelta(minutes=41 - n)
        )
    first = await ask(tenant, "schedule")
    assert first.text == "Upcoming invoice runs (1–40 of 42)"
    assert lines(first)[0] == "`Mon 02 Nov 2026 09:00 UTC` *shop41* (weekly)"
    second = await ask(tenant, "schedule page=2")
    assert second.text == "Upcoming invoice runs (41–42 of 42)"
    assert lines(second) == [
        "`Mon 02 Nov 2026 09:40 UTC` *shop01* (weekly)",
        "`Mon 02 Nov 2026 09:41 UTC` *shop00* (weekly)",
    ]
    beyond = await ask(tenant, "schedule page=3")
    assert beyond.text == "No runs on that page."
    assert lines(beyond) == ["No runs on page 3: there are 42 (2 page(s)). Start at `/invoicing schedule`."]


async def test_a_long_list_is_counted_only_so_far_past_the_page_and_says_so(db, monkeypatch):
    """``paging.COUNT_AHEAD`` (1,000) made small: 45 emailers, counted 2 past page 1, exactly from page 2 on."""
    monkeypatch.setattr(paging, "COUNT_AHEAD", 2)
    tenant = await f.tenant()
    for n in range(45):
        company = await create_company(tenant, f"shop{n:02d}", name=f"Shop {n}", country="GB", currency="GBP")
        await Integration.filter(company_id=company.id, kind=IntegrationKind.PDF_EMAILER).update(
            enabled=True, next_run_at=T0 + timedelta(minutes=n))
    first = await ask(tenant, "schedule")
    assert first.text == "Upcoming invoice runs (1–40 of 42+)"
    assert len(lines(first)) == 40
    assert first.blocks[-2]["elements"][0]["text"].startswith("1–40 of 42+ · page 1 of 2+ · next:")
    second = await ask(tenant, "schedule page=2")
    assert second.text == "Upcoming invoice runs (41–45 of 45)"
    assert len(lines(second)) == 5
    # A page past the end counts from its own start, past every row: exact.
    assert lines(await ask(tenant, "schedule page=5")) == [
        "No runs on page 5: there are 45 (2 page(s)). Start at `/invoicing schedule`."]


async def test_without_an_enabled_emailer_the_reply_says_how_to_enable_one(db):
    tenant = await f.tenant()
    await f.company(tenant)
    for text in ("schedule", "schedule page=2"):
        reply = await ask(tenant, text)
        assert reply.text == "No emailer is enabled."
