"""Deciding a prepared invoice (approval mode): approve, skip, and the timeout sweep.

A decision is **one transaction** that first locks the integration row (as a run
does: the integration is the mutex of its runs and of its approvals, docs/architecture.md
"Lock order"), then reads the approval again under that lock and acts only if it is
still pending. So two admins clicking Approve at the same instant, or a click racing
the timeout on another replica, give exactly one decision; the loser is told what the
winner did (``Decision.acted`` is False).

* **approve** — re-plans with the approval's cutoff under the run's order locks and
  compares the fingerprint (``preview.fingerprint``). Equal → issues exactly that
  invoice with the next number (``run.issue_planned``: invoice, run record, e-mail,
  run notice). Different → not issued: the approval is superseded and a fresh preview
  (a new approval, same cutoff, a new timeout) is queued — or, if nothing is left to
  invoice, it is only superseded.
* **skip** — records a ``skipped`` run; the orders stay uninvoiced for the next run.
* **sweep** (the scheduler's tick) — the one reminder at ``remind_at`` (a conditional
  UPDATE of ``reminded_at``: one replica wins), and at ``expires_at`` the approval's
  ``on_timeout``: ``issue`` is an approve by ``scheduler:timeout`` (same fingerprint
  rule: a changed plan is never issued unseen, it gets a fresh preview), ``skip`` a
  skip that leaves the approval ``expired``. Each is announced by a notice.

Every decision writes its audit entry (``approval.approve|skip|timeout|superseded``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tortoise.transactions import in_transaction

from invoicing import audit
from invoicing.billing import runs
from invoicing.billing.runs import RunContext, RunReport
from invoicing.clock import Clock, utc_now
from invoicing.delivery import notices
from invoicing.errors import NotEligible, NotFound
from invoicing.integrations.pdf_emailer import preview
from invoicing.integrations.pdf_emailer.run import issue_planned
from invoicing.retrying import transaction_attempts
from models import ApprovalState, Company, Integration, Invoice, OnTimeout, RunApproval, RunOutcome, Tenant

log = logging.getLogger(__name__)

#: The actor of decisions the timeout policy takes.
TIMEOUT_ACTOR = "scheduler:timeout"


@dataclass(frozen=True)
class Decision:
    """What became of an approval. ``acted``: this call decided it (else it was decided before)."""

    approval_id: int
    company: str
    state: ApprovalState
    acted: bool
    decided_by: str = ""
    decided_at: datetime | None = None
    invoice_number: str | None = None
    #: The run's report when this call issued the invoice (deliver its e-mail after commit).
    report: RunReport | None = None
    #: The fresh preview queued because what was previewed changed.
    fresh_id: int | None = None
    message: str = ""
    #: The company's time zone, for showing ``decided_at``.
    timezone: str = "UTC"


@dataclass(frozen=True)
class Sweep:
    """What one sweep did: the approvals reminded, and the timeout decisions taken."""

    reminded: tuple[int, ...]
    decided: tuple[Decision, ...]

    def __bool__(self) -> bool:
        return bool(self.reminded or self.decided)


@dataclass(frozen=True)
class PendingApproval:
    """A pending approval as the App Home lists it (times aware UTC; show them in ``timezone``)."""

    id: int
    company_id: int
    company: str
    timezone: str
    currency: str
    cutoff: datetime
    period_start: datetime | None
    orders: int
    lines: int
    net: Decimal
    tax: Decimal
    gross: Decimal
    expires_at: datetime
    on_timeout: OnTimeout


async def pending(tenant_id: int) -> list[PendingApproval]:
    """The tenant's pending approvals, the soonest to expire first."""
    rows = await RunApproval.filter(tenant_id=tenant_id, state=ApprovalState.PENDING).order_by(
        "expires_at", "id").prefetch_related("company")
    return [PendingApproval(a.id, a.company_id, a.company.short_name, a.company.timezone, a.currency, a.cutoff,
                            a.period_start, a.orders, a.lines, a.net_total, a.tax_total, a.gross_total, a.expires_at,
                            a.on_timeout)
            for a in rows]


async def approve(tenant: Tenant, approval_id: int, *, actor: str, now: datetime, clock: Clock = utc_now,
                  mail_domain: str = "invoicebot.local", channel_id: str = "", message_ts: str = "") -> Decision:
    """Issue the previewed invoice if nothing changed (see the module docstring); ``NotFound`` for another
    tenant's or an unknown approval, ``NotEligible`` (nothing changed) when invoicing is refused."""
    approval = await _find(tenant, approval_id)
    return await _decide(approval, "approve", actor=actor, now=now, clock=clock, mail_domain=mail_domain,
                         where=(channel_id, message_ts))


async def skip(tenant: Tenant, approval_id: int, *, actor: str, now: datetime, clock: Clock = utc_now,
               channel_id: str = "", message_ts: str = "") -> Decision:
    """Record a skipped run for the approval's slot; its orders stay for the next run."""
    approval = await _find(tenant, approval_id)
    return await _decide(approval, "skip", actor=actor, now=now, clock=clock, where=(channel_id, message_ts))


async def sweep(*, now: datetime, clock: Clock = utc_now, mail_domain: str = "invoicebot.local",
                limit: int = 50) -> Sweep:
    """Send due reminders and apply the timeout policy of expired approvals (every tenant).

    Safe on several replicas at once (see the module docstring); one approval's failure
    is logged and never stops the others (the next sweep tries it again).
    """
    reminded: list[int] = []
    for row in await RunApproval.filter(state=ApprovalState.PENDING, reminded_at=None, remind_at__lte=now,
                                        expires_at__gt=now).order_by("remind_at", "id").limit(limit):
        try:
            if await _remind(row, now):
                reminded.append(row.id)
        except Exception:  # the next sweep tries again
            log.exception("approval reminder failed approval=%d", row.id)
    decisions: list[Decision] = []
    for row in await RunApproval.filter(state=ApprovalState.PENDING, expires_at__lte=now).order_by(
            "expires_at", "id").limit(limit):
        try:
            decisions.append(await _timeout(row, now=now, clock=clock, mail_domain=mail_domain))
        except Exception:  # the next sweep tries again
            log.exception("approval timeout failed approval=%d", row.id)
    return Sweep(tuple(reminded), tuple(decisions))


async def _find(tenant: Tenant, approval_id: int) -> RunApproval:
    approval = await RunApproval.get_or_none(id=approval_id, tenant_id=tenant.id)
    if approval is None:
        raise NotFound(f"No approval #{approval_id} in {tenant.name}.")
    return approval


async def _remind(row: RunApproval, now: datetime) -> bool:
    async with in_transaction():
        won = await RunApproval.filter(id=row.id, state=ApprovalState.PENDING, reminded_at=None).update(
            reminded_at=now)
        if won:
            await notices.queue_approval_reminder(await Company.get(id=row.company_id), row, now=now)
    return bool(won)


async def _timeout(row: RunApproval, *, now: datetime, clock: Clock, mail_domain: str) -> Decision:
    action = "timeout-issue" if row.on_timeout == OnTimeout.ISSUE else "timeout-skip"
    try:
        return await _decide(row, action, actor=TIMEOUT_ACTOR, now=now, clock=clock, mail_domain=mail_domain)
    except NotEligible as refusal:  # the seller or buyer details are incomplete: do not retry every tick
        return await _decide(row, "timeout-skip", actor=TIMEOUT_ACTOR, now=now, clock=clock, refusal=refusal.message)


async def _decide(approval: RunApproval, action: str, *, actor: str, now: datetime, clock: Clock,
                  mail_domain: str = "invoicebot.local", where: tuple[str, str] = ("", ""),
                  refusal: str = "") -> Decision:
    tenant = await Tenant.get(id=approval.tenant_id)  # fresh: seller details and plan as of now
    company = await Company.get(id=approval.company_id)
    async for attempt in transaction_attempts():  # the whole decision again after a deadlock
        async with attempt:
            # The run's claim: an UPDATE takes the integration row lock at once, then read under it.
            await Integration.filter(id=approval.integration_id).update(updated_at=now)
            integration = await Integration.get(id=approval.integration_id)
            row = await RunApproval.get(id=approval.id)
            if row.state != ApprovalState.PENDING:
                return await _already(row, company)
            row.channel_id, row.message_ts = where[0] or row.channel_id, where[1] or row.message_ts
            ctx = RunContext(tenant, company, integration, row.trigger, actor, now, row.cutoff)
            if action in {"skip", "timeout-skip"}:
                return await _skip(ctx, row, timeout=action == "timeout-skip", refusal=refusal)
            return await _issue(ctx, row, timeout=action == "timeout-issue", clock=clock, mail_domain=mail_domain)
    raise AssertionError("transaction_attempts ends with a commit or an exception")


async def _issue(ctx: RunContext, row: RunApproval, *, timeout: bool, clock: Clock, mail_domain: str) -> Decision:
    runs.check_can_invoice(ctx.tenant, ctx.company)  # NotEligible: rolled back, the approval stays pending
    planned = await runs.plan_invoice(ctx.company, ctx.integration, row.cutoff, lock=True)
    current = await preview.fingerprint(planned) if planned.lines else ""
    if current != row.fingerprint:
        return await _superseded(ctx, row, planned, timeout=timeout)
    report = await issue_planned(ctx, planned, mail_domain=mail_domain, checkpoint=lambda _: None, clock=clock,
                                 keep_approval=row.id)
    _decided(row, ApprovalState.APPROVED, ctx)
    row.run_id, row.invoice_id = report.run_id, report.invoice_id
    await row.save()
    await _audit(ctx, row, "approval.timeout" if timeout else "approval.approve",
                 invoice=report.invoice_number, orders=report.orders_invoiced, gross=str(report.gross))
    if timeout:
        await notices.queue_approval_timed_out(ctx.company, row, outcome="issued", now=ctx.started_at,
                                               invoice_number=report.invoice_number)
    log.info("approval issued tenant=%s company=%s approval=%d invoice=%s actor=%s", ctx.tenant.name,
             ctx.company.short_name, row.id, report.invoice_number, ctx.actor)
    return _decision(row, ctx.company, acted=True, invoice_number=report.invoice_number, report=report,
                     message=f"Invoice {report.invoice_number} issued for {report.orders_invoiced} order(s).")


async def _superseded(ctx: RunContext, row: RunApproval, planned: runs.InvoicePlan, *, timeout: bool) -> Decision:
    """What was previewed changed: never issue it; queue a fresh preview of the current plan (if any)."""
    await row.save(update_fields=["channel_id", "message_ts"])  # where it was clicked; the state is set below
    fresh = await preview.prepare(ctx, planned, slot=row.slot, now=ctx.started_at, replaces=row) \
        if planned.lines else None
    if fresh is None:
        await preview.supersede_pending(ctx.integration.id, now=ctx.started_at, actor=ctx.actor)
    await row.refresh_from_db()  # superseded by the statement above
    await _audit(ctx, row, "approval.superseded", fresh=fresh.id if fresh else None)
    if timeout:
        await notices.queue_approval_timed_out(ctx.company, row, outcome="superseded", now=ctx.started_at)
    text = (f"The orders changed since this preview, so nothing was issued; a fresh preview (#{fresh.id}) was "
            "posted.") if fresh else "The orders changed since this preview and nothing is left to invoice."
    return _decision(row, ctx.company, acted=True, fresh_id=fresh.id if fresh else None, message=text)


async def _skip(ctx: RunContext, row: RunApproval, *, timeout: bool, refusal: str) -> Decision:
    who = "the timeout policy" if timeout else ctx.actor
    text = refusal or f"Skipped by {who}; its {row.orders} order(s) stay for the next run."
    outcome = RunOutcome.REFUSED if refusal else RunOutcome.SKIPPED
    run = await runs.record_run(ctx, outcome, finished_at=ctx.started_at, message=text)
    _decided(row, ApprovalState.EXPIRED if timeout else ApprovalState.SKIPPED, ctx)
    row.run_id = run.id
    await row.save()
    await _audit(ctx, row, "approval.timeout" if timeout else "approval.skip", run=run.id)
    if timeout:
        await notices.queue_approval_timed_out(ctx.company, row, outcome="refused" if refusal else "skipped",
                                               now=ctx.started_at)
    return _decision(row, ctx.company, acted=True, message=text)


def _decided(row: RunApproval, state: ApprovalState, ctx: RunContext) -> None:
    row.state, row.decided_by, row.decided_at = state, ctx.actor[:100], ctx.started_at


async def _audit(ctx: RunContext, row: RunApproval, action: str, **new: object) -> None:
    await audit.record(ctx.tenant.id, actor=ctx.actor, action=action, target=f"company:{ctx.company.short_name}",
                       old={"approval": row.id, "state": ApprovalState.PENDING.value},
                       new={"approval": row.id, "state": row.state.value, **new})


async def _already(row: RunApproval, company: Company) -> Decision:
    invoice = await Invoice.get_or_none(id=row.invoice_id) if row.invoice_id else None
    number = invoice.display_number if invoice else None
    return _decision(row, company, acted=False, invoice_number=number, fresh_id=row.superseded_by,
                     message=f"This approval was already {row.state.value}.")


def _decision(row: RunApproval, company: Company, *, acted: bool, invoice_number: str | None = None,
              report: RunReport | None = None, fresh_id: int | None = None, message: str = "") -> Decision:
    return Decision(row.id, company.short_name, row.state, acted, row.decided_by, row.decided_at, invoice_number,
                    report, fresh_id, message, company.timezone)
