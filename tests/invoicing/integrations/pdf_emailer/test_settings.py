"""PDF Emailer settings: enable, configure, disable — validated all-or-nothing and audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invoicing.errors import InvalidInput, NotEligible
from invoicing.integrations.pdf_emailer.settings import (
    configure,
    disable,
    enable,
    settings,
)
from models import AuditEntry, Integration, IntegrationKind
from tests import factories as f
from tests.factories import T0  # Monday 2026-11-02 09:00 UTC (GMT in London)

SUNDAY = datetime(2026, 11, 8, tzinfo=UTC)  # the next Sunday midnight in London


async def audit(action: str | None = None) -> list[AuditEntry]:
    query = AuditEntry.filter(action__startswith="emailer.")
    if action:
        query = query.filter(action=action)
    return list(await query.order_by("id"))


async def snapshot(company) -> dict:
    row = await Integration.get(company_id=company.id, kind=IntegrationKind.PDF_EMAILER)
    keys = ("enabled", "include_errors", "starting_from", "settings", "schedule", "next_run_at")
    return {k: getattr(row, k) for k in keys}


async def test_enabling_runs_first_at_the_next_hour_and_is_audited(db):
    t = await f.tenant()
    c = await f.company(t)
    result = await enable(c, now=T0 + timedelta(minutes=20), actor="slack:U1")
    assert result.enabled and result.schedule == "weekly"
    assert result.next_run_at == T0 + timedelta(hours=1)
    [entry] = await audit()
    assert (entry.action, entry.actor, entry.target) == ("emailer.enable", "slack:U1", "company:acme")
    assert entry.old == {"enabled": "off", "next_run_at": "none"}
    assert entry.new == {"enabled": "on", "next_run_at": "2026-11-02T10:00:00+00:00"}


async def test_enabling_is_refused_on_oms_lite_and_changes_nothing(db):
    t = await f.tenant(plan="oms_lite")
    c = await f.company(t)
    before = await snapshot(c)
    with pytest.raises(NotEligible) as refused:
        await enable(c, now=T0, actor="slack:U1")
    assert refused.value.message.startswith("inkwell is on OMS Lite: invoicing needs an active OMS licence")
    assert await snapshot(c) == before
    assert await audit() == []


async def test_enabling_needs_only_the_plan_not_complete_accounting_details(db):
    t = await f.tenant(complete=False)
    c = await f.company(t, complete=False)
    assert (await enable(c, now=T0, actor="cli")).enabled


async def test_enabling_twice_changes_nothing_the_second_time(db):
    c = await f.company(await f.tenant())
    await enable(c, now=T0, actor="cli")
    again = await enable(c, now=T0 + timedelta(minutes=30), actor="cli")
    assert again.next_run_at == T0 + timedelta(hours=1)
    assert len(await audit()) == 1


async def test_a_next_time_set_while_disabled_is_the_first_run(db):
    c = await f.company(await f.tenant())
    await configure(c, now=T0, actor="cli", next="2026-11-04 15:30")
    result = await enable(c, now=T0, actor="cli")
    assert result.next_run_at == datetime(2026, 11, 4, 15, 30, tzinfo=UTC)


async def test_configure_changes_several_settings_with_one_audit_entry(db):
    c = await f.company(await f.tenant(), timezone="America/New_York")
    await enable(c, now=T0, actor="cli")
    result = await configure(c, now=T0, actor="slack:U2", include_errors="on", schedule="daily",
                             next="2026-11-03 06:00", starting_from="2026-10-01")
    assert result.include_errors and result.schedule == "daily"
    assert result.next_run_at == datetime(2026, 11, 3, 11, 0, tzinfo=UTC)  # 06:00 EST
    assert result.starting_from == datetime(2026, 10, 1, 4, 0, tzinfo=UTC)  # local midnight, EDT
    entry = (await audit("emailer.set"))[0]
    assert entry.actor == "slack:U2"
    assert entry.old == {"include_errors": "off", "schedule": "weekly", "starting_from": "none",
                         "next_run_at": "2026-11-02T10:00:00+00:00"}
    assert entry.new == {"include_errors": "on", "schedule": "daily", "starting_from": "2026-10-01T04:00:00+00:00",
                         "next_run_at": "2026-11-03T11:00:00+00:00"}


@pytest.mark.parametrize(("values", "field"), [
    ({"include_errors": "on", "schedule": "every day"}, "schedule"),
    ({"schedule": "daily", "include_errors": "maybe"}, "include_errors"),
    ({"schedule": "daily", "next": "2026-11-01 10:00"}, "next"),
    ({"schedule": "daily", "starting_from": "1st of May"}, "starting_from"),
    ({"include_errors": "on", "starting_from": "2026-12-01", "next": "2026-11-20 10:00"}, "next"),
])
async def test_bad_input_changes_nothing(db, values, field):
    c = await f.company(await f.tenant())
    await enable(c, now=T0, actor="cli")
    before = await snapshot(c)
    with pytest.raises(InvalidInput) as refused:
        await configure(c, now=T0, actor="cli", **values)
    assert refused.value.field == field
    assert await snapshot(c) == before
    assert await audit("emailer.set") == []


async def test_a_next_time_before_starting_from_is_refused_with_both_times(db):
    c = await f.company(await f.tenant())
    with pytest.raises(InvalidInput) as refused:
        await configure(c, now=T0, actor="cli", starting_from="2026-12-01", next="2026-11-20 10:00")
    assert refused.value.message == (
        "next: 2026-11-20 10:00 is before starting_from 2026-12-01 00:00; no run happens before it")


async def test_changing_the_schedule_moves_the_next_run_to_its_next_slot(db):
    c = await f.company(await f.tenant())
    await enable(c, now=T0, actor="cli")
    monthly = await configure(c, now=T0, actor="cli", schedule="monthly")
    assert monthly.next_run_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert (await configure(c, now=T0, actor="cli", schedule="30 6 * * 1-5")).next_run_at == \
        datetime(2026, 11, 3, 6, 30, tzinfo=UTC)


async def test_next_none_returns_to_the_schedule(db):
    c = await f.company(await f.tenant())
    await enable(c, now=T0, actor="cli")
    assert (await configure(c, now=T0, actor="cli", next="none")).next_run_at == SUNDAY


async def test_starting_from_keeps_an_earlier_allowed_run_and_moves_a_forbidden_one(db):
    c = await f.company(await f.tenant())
    await enable(c, now=T0, actor="cli")
    kept = await configure(c, now=T0, actor="cli", starting_from="2026-10-01")
    assert kept.next_run_at == T0 + timedelta(hours=1)
    moved = await configure(c, now=T0, actor="cli", starting_from="2026-12-01")
    assert moved.next_run_at == datetime(2026, 12, 6, tzinfo=UTC)  # first Sunday midnight on/after it
    back = await configure(c, now=T0, actor="cli", starting_from="none")
    assert back.starting_from is None and back.next_run_at == SUNDAY


async def test_disabling_clears_the_pending_run_and_is_audited(db):
    c = await f.company(await f.tenant())
    await enable(c, now=T0, actor="cli")
    result = await disable(c, now=T0, actor="slack:U3")
    assert not result.enabled and result.next_run_at is None
    entry = (await audit("emailer.disable"))[0]
    assert entry.old == {"enabled": "on", "next_run_at": "2026-11-02T10:00:00+00:00"}
    assert entry.new == {"enabled": "off", "next_run_at": "none"}
    await disable(c, now=T0, actor="slack:U3")
    assert len(await audit("emailer.disable")) == 1
    assert (await settings(c)) == result


async def test_a_change_that_changes_nothing_writes_no_audit_entry(db):
    c = await f.company(await f.tenant())
    await configure(c, now=T0, actor="cli", include_errors="off", schedule="weekly")
    assert await audit() == []


async def test_bcc_addresses_are_stored_as_a_list(db):
    c = await f.company(await f.tenant())
    result = await configure(c, now=T0, actor="cli", bcc="a@x.com, b@y.com")
    assert result.bcc == ("a@x.com", "b@y.com")
    assert (await audit("emailer.set"))[0].new == {"bcc": "a@x.com,b@y.com"}
    assert (await configure(c, now=T0, actor="cli", bcc="none")).bcc == ()


async def test_an_invalid_bcc_address_changes_nothing(db):
    c = await f.company(await f.tenant())
    before = await snapshot(c)
    with pytest.raises(InvalidInput) as refused:
        await configure(c, now=T0, actor="cli", schedule="daily", bcc="a@x.com, not-an-address")
    assert refused.value.field == "bcc"
    assert await snapshot(c) == before
