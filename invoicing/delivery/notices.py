"""Which Slack notices are queued, and with what facts — always in the caller's transaction.

A notice is a ``SlackNotice`` row written in the same transaction as what it
announces (the run record, the delivery marked failed), so the two commit or roll
back together: a run that rolls back leaves no notice, a committed run always has
one. ``invoicing.delivery.slack_notices`` posts the rows after commit.

Rules a caller may rely on:

* Only a company with a Slack channel gets a row; without one the functions here
  write nothing and return ``None``.
* The ``dedupe_key`` names the event (``run:<run id>``, ``delivery-failed:<delivery
  id>``, ``credit:<credit note id>``, ``schedule:<integration id>:<slot>``, ``approval:<id>``,
  ``approval-reminder:<id>``, ``approval-timeout:<id>``; the XML export's ``xml-export:<id>``,
  ``xml-failing:<id>``, ``xml-recovered:<id>``, ``xml-blocked:<integration id>:<since>``; Xero's
  ``xero-broken:<connection id>:<refreshed at>``, ``xero-budget:<connection id>:<day>``); queuing
  the same event twice keeps the first row (``get_or_create`` on the unique key).
* The payload holds plain JSON values (Decimals and instants as strings), not Slack
  blocks: the message is rendered when it is posted (``commands.notifications``), so
  this layer stays free of Slack types. ``report_payload`` / ``report_from_payload``
  are the one place that shape is defined.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from invoicing.billing.runs import RunReport, Skipped
from models import Company, NoticeKind, RunApproval, RunOutcome, SlackNotice

#: Skipped orders kept by reference in a run notice (the message shows at most 15).
SKIPPED_REFS = 15
#: Distinct skip reasons kept (the message shows at most 10, most frequent first).
SKIPPED_REASONS = 50


def _instant(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def report_payload(report: RunReport, *, timezone: str, actor: str = "") -> dict[str, Any]:
    """The facts of a run notice: what ``run_reply`` needs, as JSON values."""
    reasons = sorted(report.skipped_by_reason.items(), key=lambda kv: -kv[1])[:SKIPPED_REASONS]
    return {
        "tenant": report.tenant, "company": report.company, "outcome": report.outcome.value,
        "cutoff": _instant(report.cutoff), "period_start": _instant(report.period_start),
        "currency": report.currency, "invoice_number": report.invoice_number, "invoice_id": report.invoice_id,
        "run_id": report.run_id, "orders_invoiced": report.orders_invoiced, "lines": report.lines,
        "net": str(report.net), "tax": str(report.tax), "gross": str(report.gross),
        "skipped": [{"ref": s.ref, "reason": s.reason} for s in report.skipped[:SKIPPED_REFS]],
        "skipped_by_reason": dict(reasons), "timezone": timezone, "actor": actor, "message": report.message,
    }


def report_from_payload(payload: dict[str, Any]) -> RunReport:
    """The ``RunReport`` a run notice was queued with (``report_payload`` read back)."""
    period = payload.get("period_start")
    return RunReport(
        tenant=payload["tenant"], company=payload["company"], outcome=RunOutcome(payload["outcome"]), dry_run=False,
        cutoff=datetime.fromisoformat(payload["cutoff"]),
        period_start=datetime.fromisoformat(period) if period else None,
        currency=payload["currency"], invoice_number=payload.get("invoice_number"),
        invoice_id=payload.get("invoice_id"), run_id=payload.get("run_id"),
        orders_invoiced=int(payload.get("orders_invoiced", 0)), lines=int(payload.get("lines", 0)),
        net=Decimal(payload["net"]), tax=Decimal(payload["tax"]), gross=Decimal(payload["gross"]),
        skipped=tuple(Skipped(s["ref"], s["reason"]) for s in payload.get("skipped", [])),
        skipped_by_reason={str(k): int(v) for k, v in (payload.get("skipped_by_reason") or {}).items()},
        message=str(payload.get("message") or ""),
    )


def run_notice_key(run_id: int | None) -> str:
    """The dedupe key of a run's notice (adapters use it to find the notice of a run they started)."""
    return f"run:{run_id}"


def _row(company: Company, kind: NoticeKind, key: str, payload: dict[str, Any], now: datetime) -> SlackNotice | None:
    """The notice row, not yet written; None for a company without a channel."""
    if not company.slack_channel:
        return None
    return SlackNotice(tenant_id=company.tenant_id, company_id=company.id, channel=company.slack_channel, kind=kind,
                       payload=payload, next_attempt_at=now, dedupe_key=key)


async def _queue(company: Company, kind: NoticeKind, key: str, payload: dict[str, Any],
                 now: datetime, *, fresh: bool = False) -> SlackNotice | None:
    """``fresh``: the key names a row written in this same transaction (a new run's id), so no notice
    can have it yet — one INSERT instead of ``get_or_create``'s savepoint, read and insert."""
    row = _row(company, kind, key, payload, now)
    if row is None:
        return None
    if fresh:
        await row.save(force_create=True)
        return row
    fields = {name: getattr(row, name) for name in ("tenant_id", "company_id", "channel", "kind", "payload",
                                                   "next_attempt_at")}
    notice, _ = await SlackNotice.get_or_create(dedupe_key=key, defaults=fields)
    return notice


async def queue_integration_notice(company: Company, kind: NoticeKind, key: str, payload: dict[str, Any], *,
                                   now: datetime) -> SlackNotice | None:
    """Queue a notice of an integration's own kind (the XML export's ``xml-…`` keys; rendered by
    ``commands.notifications``); the same key twice keeps the first row."""
    return await _queue(company, kind, key, payload, now)


async def queue_run_issued(company: Company, report: RunReport, *, now: datetime,
                           actor: str = "") -> SlackNotice | None:
    """Queue the announcement of an issued invoice (``report.run_id`` must be set)."""
    row = run_issued_row(company, report, now=now, actor=actor)
    if row is not None:
        await row.save(force_create=True)
    return row


def run_issued_row(company: Company, report: RunReport, *, now: datetime, actor: str = "") -> SlackNotice | None:
    """``queue_run_issued``'s row, not yet written (batched runs insert many at once)."""
    payload = report_payload(report, timezone=company.timezone, actor=actor)
    return _row(company, NoticeKind.RUN_ISSUED, run_notice_key(report.run_id), payload, now)


async def queue_run_problem(company: Company, run_id: int, reason: str, *, failed: bool,
                            now: datetime) -> SlackNotice | None:
    """Queue the notice of a refused (ops must fix something) or failed (rolled back) run."""
    kind = NoticeKind.RUN_FAILED if failed else NoticeKind.RUN_REFUSED
    return await _queue(company, kind, run_notice_key(run_id), {"company": company.short_name, "reason": reason}, now)


async def queue_schedule_problem(company: Company, integration_id: int, slot: datetime, reason: str, *,
                                 now: datetime) -> SlackNotice | None:
    """Queue the notice of a scheduled slot that could not run at all (its schedule is invalid)."""
    key = f"schedule:{integration_id}:{slot.isoformat()}"
    return await _queue(company, NoticeKind.RUN_FAILED, key, {"company": company.short_name, "reason": reason}, now)


async def queue_delivery_failed(company: Company, delivery_id: int, *, invoice_number: str, to: str, error: str,
                                now: datetime) -> SlackNotice | None:
    """Queue the follow-up of an e-mail delivery that failed for good (with the server's reply)."""
    payload = {"company": company.short_name, "invoice_number": invoice_number, "to": to, "error": error,
               "delivery_id": delivery_id}
    return await _queue(company, NoticeKind.DELIVERY_FAILED, f"delivery-failed:{delivery_id}", payload, now)


async def queue_credit_issued(company: Company, credit_note_id: int, payload: dict[str, Any], *,
                              now: datetime) -> SlackNotice | None:
    """Queue the announcement of an issued credit note (``invoicing.billing.credit_notes.credit_payload``)."""
    return await _queue(company, NoticeKind.CREDIT_ISSUED, f"credit:{credit_note_id}", payload, now)


def approval_payload(company: Company, approval: RunApproval) -> dict[str, Any]:
    """The facts of an approval's preview (``commands.approvals`` renders them; ids are re-read on click)."""
    reasons = sorted((approval.skipped_by_reason or {}).items(), key=lambda kv: -int(kv[1]))[:SKIPPED_REASONS]
    return {
        "approval_id": approval.id, "company": company.short_name, "timezone": company.timezone,
        "currency": approval.currency, "cutoff": _instant(approval.cutoff),
        "period_start": _instant(approval.period_start), "orders": approval.orders, "lines": approval.lines,
        "net": str(approval.net_total), "tax": str(approval.tax_total), "gross": str(approval.gross_total),
        "skipped": list(approval.skipped or [])[:SKIPPED_REFS], "skipped_by_reason": dict(reasons),
        "expires_at": _instant(approval.expires_at), "on_timeout": str(approval.on_timeout),
    }


async def queue_approval_requested(company: Company, approval: RunApproval, *, now: datetime,
                                   replaces: int | None = None) -> SlackNotice | None:
    """Queue the preview with Approve / Skip (``replaces``: the approval it re-plans after a change)."""
    payload = {**approval_payload(company, approval), "replaces": replaces}
    return await _queue(company, NoticeKind.APPROVAL_REQUESTED, f"approval:{approval.id}", payload, now)


async def queue_approval_reminder(company: Company, approval: RunApproval, *, now: datetime) -> SlackNotice | None:
    """Queue the one reminder of a pending approval (the same preview, with its buttons)."""
    return await _queue(company, NoticeKind.APPROVAL_REMINDER, f"approval-reminder:{approval.id}",
                        approval_payload(company, approval), now)


async def queue_approval_timed_out(company: Company, approval: RunApproval, *, outcome: str, now: datetime,
                                   invoice_number: str | None = None) -> SlackNotice | None:
    """Queue what the timeout policy did: ``outcome`` is ``issued``, ``skipped`` or ``superseded``."""
    payload = {**approval_payload(company, approval), "outcome": outcome, "invoice_number": invoice_number}
    return await _queue(company, NoticeKind.APPROVAL_TIMED_OUT, f"approval-timeout:{approval.id}", payload, now)


async def queue_xero_notice(*, tenant_id: int, company_id: int | None, channel: str, kind: NoticeKind, key: str,
                            payload: dict[str, Any], now: datetime) -> SlackNotice | None:
    """Queue a notice about a Xero connection (``xero_broken``: connect again; ``xero_budget``: 80 % of the
    day's calls used) in ``channel`` (the company's, or where the connection was made); none without one."""
    if not channel:
        return None
    notice, _ = await SlackNotice.get_or_create(
        dedupe_key=key[:120],
        defaults={"tenant_id": tenant_id, "company_id": company_id, "channel": channel[:80], "kind": kind,
                  "payload": payload, "next_attempt_at": now},
    )
    return notice
