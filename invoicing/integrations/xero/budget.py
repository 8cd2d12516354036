"""The daily budget of an organisation's calls, counted on its connection row (shared by every replica).

``count_call`` is one conditional UPDATE: it adds the call to today's count (UTC day; a new day
starts at 1) only while the count is below ``daily_limit``, so replicas counting at once never go
past it. A call that does not fit raises ``XeroDailyBudgetExhausted``: the push waits for the next
day and says so. The call that reaches 80 % queues one ``xero_budget`` notice for that day.
"""

from __future__ import annotations

import math
from datetime import datetime

from invoicing.delivery.notices import queue_xero_notice
from invoicing.integrations.xero.errors import XeroDailyBudgetExhausted
from invoicing.sql import Statement
from models import Company, NoticeKind, XeroConnection

#: The share of the daily limit at which ops are warned (once a day).
WARN_AT = 0.8


async def count_call(connection: XeroConnection, *, now: datetime) -> int:
    """Count one call of ``connection`` today; returns today's count, or raises when the budget is spent."""
    day = now.date()
    q = Statement()
    day_value: object = day if q.postgres else day.isoformat()
    d1, d2, ident, d3 = q(day_value), q(day_value), q(connection.id), q(day_value)  # in text order (SQLite: ?)
    rows = await q.rows(
        f"UPDATE xero_connection SET calls_today = CASE WHEN calls_day = {d1} THEN calls_today + 1 ELSE 1 END, "
        f"calls_day = {d2} WHERE id = {ident} AND (calls_day IS NULL OR calls_day <> {d3} "
        f"OR calls_today < daily_limit) RETURNING calls_today, daily_limit")
    if not rows:
        raise XeroDailyBudgetExhausted(
            f"Today's Xero budget for {connection.organisation_name} ({connection.daily_limit} calls) is used up; "
            "what is waiting goes to Xero tomorrow (UTC).")
    count, limit = int(rows[0][0]), int(rows[0][1])
    if count == max(1, math.ceil(limit * WARN_AT)):
        company = await Company.get_or_none(id=connection.company_id) if connection.company_id else None
        await queue_xero_notice(
            tenant_id=connection.tenant_id, company_id=connection.company_id,
            channel=(company.slack_channel if company else "") or connection.notice_channel,
            kind=NoticeKind.XERO_BUDGET, key=f"xero-budget:{connection.id}:{day.isoformat()}", now=now,
            payload={"organisation": connection.organisation_name, "calls": count, "limit": limit,
                     "day": day.isoformat()})
    return count
