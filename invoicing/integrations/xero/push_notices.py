"""The channel notices of Xero pushes, queued in the transaction that records what they announce.

* ``xero_push_failed`` (``xero-failed:<push id>:<attempts>``): Xero refused a document (its validation
  messages), or it could not be built (a VAT category without a tax type); says how to retry;
* ``xero_mismatch`` (``xero-mismatch:<push id>``): created, but Xero's totals differ from ours;
* ``xero_waiting`` (``xero-waiting:<connection id>:<day>``): the organisation's calls for the day are
  spent; what waits goes tomorrow (once a day).
"""

from __future__ import annotations

from datetime import datetime

from invoicing.delivery.notices import queue_xero_notice
from models import Company, NoticeKind, XeroConnection, XeroPush


async def _channel(company_id: int) -> tuple[str, str]:
    company = await Company.get(id=company_id)
    return company.slack_channel or "", company.short_name


async def announce_failed(row: XeroPush, message: str, *, now: datetime) -> None:
    channel, company = await _channel(row.company_id)
    await queue_xero_notice(tenant_id=row.tenant_id, company_id=row.company_id, channel=channel,
                            kind=NoticeKind.XERO_PUSH_FAILED, key=f"xero-failed:{row.id}:{now.isoformat()}", now=now,
                            payload={"company": company, "number": row.number, "document": str(row.kind),
                                     "message": message[:1500]})


async def announce_mismatch(row: XeroPush, mismatch: str, *, now: datetime) -> None:
    channel, company = await _channel(row.company_id)
    await queue_xero_notice(tenant_id=row.tenant_id, company_id=row.company_id, channel=channel,
                            kind=NoticeKind.XERO_MISMATCH, key=f"xero-mismatch:{row.id}", now=now,
                            payload={"company": company, "number": row.number, "document": str(row.kind),
                                     "mismatch": mismatch[:500]})


async def announce_waiting(connection: XeroConnection, rows: list[XeroPush], message: str, *, now: datetime) -> None:
    channel, company = await _channel(rows[0].company_id)
    await queue_xero_notice(tenant_id=connection.tenant_id, company_id=rows[0].company_id,
                            channel=channel or connection.notice_channel, kind=NoticeKind.XERO_WAITING,
                            key=f"xero-waiting:{connection.id}:{now.date().isoformat()}", now=now,
                            payload={"organisation": connection.organisation_name, "waiting": len(rows),
                                     "message": message[:500], "company": company})
