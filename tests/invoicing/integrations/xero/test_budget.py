"""The daily budget on the connection row: never past the limit (even counted at once), 80 % warned once a day."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from invoicing.integrations.xero.budget import count_call
from invoicing.integrations.xero.errors import XeroDailyBudgetExhausted
from models import NoticeKind, SlackNotice, XeroConnection
from tests import factories

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


async def _connection(limit: int) -> XeroConnection:
    t = await factories.tenant()
    c = await factories.company(t)
    c.slack_channel = "C0BILLING"
    await c.save()
    return await XeroConnection.create(tenant_id=t.id, company_id=c.id, xero_tenant_id="org-1",
                                       xero_connection_id="conn-1", organisation_name="Acme Ltd",
                                       access_expires_at=NOW, refreshed_at=NOW, daily_limit=limit)


async def test_calls_beyond_the_daily_limit_are_refused_even_when_counted_at_once(db):
    row = await _connection(10)
    results = await asyncio.gather(*(count_call(row, now=NOW) for _ in range(14)), return_exceptions=True)
    assert sorted(r for r in results if isinstance(r, int)) == list(range(1, 11))
    assert sum(isinstance(r, XeroDailyBudgetExhausted) for r in results) == 4
    with pytest.raises(XeroDailyBudgetExhausted, match="tomorrow"):
        await count_call(row, now=NOW)
    assert await count_call(row, now=NOW + timedelta(days=1)) == 1  # a new UTC day starts again
    stored = await XeroConnection.get(id=row.id)
    assert (stored.calls_day, stored.calls_today) == ((NOW + timedelta(days=1)).date(), 1)


async def test_eighty_percent_is_announced_once_a_day(db):
    row = await _connection(10)
    for _ in range(10):
        await count_call(row, now=NOW)
    notices = await SlackNotice.filter(kind=NoticeKind.XERO_BUDGET)
    assert len(notices) == 1
    assert notices[0].channel == "C0BILLING" and notices[0].payload["calls"] == 8
    for _ in range(8):
        await count_call(row, now=NOW + timedelta(days=1))
    assert await SlackNotice.filter(kind=NoticeKind.XERO_BUDGET).count() == 2
