"""One run of a company's PDF Emailer: issue an invoice for its eligible orders and queue the e-mail.

The whole run is **one database transaction**:

    lock this integration row → plan the lines → create the invoice + lines → mark the
    orders invoiced → take the next number → record the run → queue the e-mail (an
    outbox ``Delivery``) → commit

The run's Slack notice (``invoicing.delivery.notices``, for a company with a channel)
is queued in the same transaction. The e-mail, the PDF and the Slack message are
produced after commit, from the outboxes (``invoicing.delivery.outbox``,
``invoicing.delivery.slack_notices``). A refused run (plan, incomplete details) is
recorded as ``refused``; a run that fails rolls back and is recorded as ``failed``;
for scheduled runs either record is written together with its Slack notice (a manual
run's refusal or failure is the answer to whoever ran it).

**Approval mode** (``integration.approval``): a *scheduled* run does not issue; it plans
the same lines for the same cutoff and stores them as a pending ``RunApproval`` with its
preview notice (``preview.prepare``; no number taken, orders untouched) and reports
``RunOutcome.PREPARED``. ``approvals.approve`` issues it later through ``issue_planned``.
A manual run (``/invoicing run``) still issues at once — the admin typing it is the
approval — and supersedes a pending approval of the company (its orders are invoiced).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from invoicing.billing import runs
from invoicing.billing.fx import required_rate
from invoicing.billing.numbering import peek_next_number
from invoicing.billing.runs import InvoicePlan, RunContext, RunReport
from invoicing.clock import Clock, utc_now
from invoicing.delivery import notices, xero_queue
from invoicing.delivery.bcc import bcc_of
from invoicing.delivery.einvoice import choice as einvoice_choice
from invoicing.delivery.mail import message_id_for
from invoicing.errors import NotEligible
from invoicing.integrations.pdf_emailer import preview
from invoicing.parties.companies import find_company
from invoicing.retrying import transaction_attempts
from invoicing.scheduling.claims import LeaseLost
from models import (
    Company,
    Delivery,
    Integration,
    IntegrationKind,
    InvoiceRun,
    RunOutcome,
    RunTrigger,
    Tenant,
)

log = logging.getLogger(__name__)

KIND = IntegrationKind.PDF_EMAILER

#: ``checkpoint(step)`` is called at each step inside the transaction (trials crash there).
Checkpoint = Callable[[str], None]


#: ``lease_check()`` is awaited inside the transaction, under the row lock; it raises
#: ``LeaseLost`` when the scheduler's lease was lost (the run then rolls back, unrecorded).
LeaseCheck = Callable[[], Awaitable[None]]


def _no_checkpoint(_: str) -> None:
    return None


async def _no_lease() -> None:
    return None


async def run_company(
    tenant: Tenant,
    company: Company,
    *,
    trigger: RunTrigger = RunTrigger.MANUAL,
    actor: str = "",
    dry_run: bool = False,
    cutoff: datetime | None = None,
    clock: Clock = utc_now,
    mail_domain: str = "invoicebot.local",
    checkpoint: Checkpoint = _no_checkpoint,
    lease_check: LeaseCheck = _no_lease,
) -> RunReport:
    """Invoice ``company`` of ``tenant`` now (manual) or for a scheduled ``cutoff``.

    ``tenant`` must be freshly read by the caller (its seller details and plan are
    used as given; the scheduler and every command read it once per run). Raises
    ``NotEligible`` (incl. ``IncompleteDetails``) when invoicing is refused; a refused
    non-dry run is recorded with outcome ``refused``. ``checkpoint(name)`` is called
    at ``claimed``, ``invoice_created``, ``orders_marked``, ``numbered``, ``recorded``.
    """
    now = clock()
    cutoff = cutoff or now
    integration = await Integration.get(company_id=company.id, kind=KIND)
    ctx = RunContext(tenant, company, integration, trigger, actor, now, cutoff)
    try:
        runs.check_can_invoice(tenant, company)
        await required_rate(tenant, company.currency, now)  # refused, naming pair and day, when none is on record
    except NotEligible as refusal:
        if not dry_run:
            async with in_transaction():
                run = await runs.record_run(ctx, RunOutcome.REFUSED, finished_at=now, message=refusal.message)
                if trigger != RunTrigger.MANUAL:  # a manual run's refusal is the reply to whoever ran it
                    await notices.queue_run_problem(company, run.id, refusal.message, failed=False, now=now)
        raise
    if dry_run:
        planned = await runs.plan_invoice(company, integration, cutoff, lock=False)
        number = await peek_next_number(tenant.id) if planned.lines else None
        return runs.report(ctx, planned, dry_run=True, number=number)
    try:
        async for attempt in transaction_attempts():  # the whole transaction again after a deadlock
            async with attempt:
                # Claim: an UPDATE takes the row lock (PostgreSQL) / write lock (SQLite) at once,
                # so two runs of one company's emailer queue here instead of racing; then read
                # the row again under the lock (``ctx`` holds the same object).
                await Integration.filter(id=integration.id).update(updated_at=now)
                await integration.refresh_from_db()
                await lease_check()
                checkpoint("claimed")
                prepare = integration.approval and trigger != RunTrigger.MANUAL  # typing `run` is the approval
                planned = await runs.plan_invoice(company, integration, cutoff, lock=not prepare)
                if not planned.lines:
                    await preview.supersede_pending(integration.id, now=now, actor=actor)  # nothing left to approve
                    run = await runs.record_run(ctx, RunOutcome.NO_ORDERS, finished_at=clock(), planned=planned,
                                                message=NO_ORDERS_MESSAGE)
                    return runs.report(ctx, planned, dry_run=False, run_id=run.id)
                if prepare:
                    approval = await preview.prepare(ctx, planned, slot=cutoff, now=now)
                    return dataclasses.replace(
                        runs.report(ctx, planned, dry_run=False), outcome=RunOutcome.PREPARED,
                        message=f"Invoice prepared for approval #{approval.id}; no number used yet.")
                result = await issue_planned(ctx, planned, mail_domain=mail_domain, checkpoint=checkpoint,
                                             clock=clock)
    except LeaseLost:
        raise  # another replica runs this slot: nothing to record here
    except Exception as exc:
        log.warning("run failed tenant=%s company=%s error=%s", tenant.name, company.short_name, type(exc).__name__)
        await runs.record_failure(ctx, exc, notify=None if trigger == RunTrigger.MANUAL else functools.partial(
            _queue_failure, company, now=now))
        raise
    log.info("invoice issued tenant=%s company=%s invoice=%s orders=%d", tenant.name, company.short_name,
             result.invoice_number, len(planned.order_ids))
    return result


async def issue_planned(ctx: RunContext, planned: InvoicePlan, *, mail_domain: str, checkpoint: Checkpoint,
                        clock: Clock, keep_approval: int | None = None) -> RunReport:
    """Issue ``planned`` (non-empty, planned with ``lock=True``) inside the caller's run transaction.

    Writes the invoice, supersedes the integration's pending approvals (their orders are in
    this invoice) except ``keep_approval``, then takes the next number (``runs.take_number``:
    last, it serialises the tenant's runs to commit) and writes what carries it: the run record,
    the e-mail (``Delivery``), the run's notice and the Xero pushes. Calls ``checkpoint`` at
    ``invoice_created``, ``orders_marked``, ``numbered``, ``recorded``.
    """
    company, integration, now = ctx.company, ctx.integration, ctx.started_at
    drafted = await runs.draft(ctx, planned, on_step=checkpoint)
    # What needs no number comes before it: from the number to commit every run of the tenant waits.
    xero = await xero_queue.xero_integration(company.id)
    await preview.supersede_pending(integration.id, now=now, actor=ctx.actor, keep=keep_approval)
    issued = await runs.take_number(ctx, drafted, on_step=checkpoint)
    einvoice_note = einvoice_choice.run_note(integration.settings, company.country, issued.invoice.currency)
    run = await runs.record_run(
        ctx, RunOutcome.INVOICED, finished_at=clock(), planned=planned, invoice_id=issued.invoice.id,
        message=issued_message(issued.display, len(planned.order_ids), einvoice_note))
    await delivery_row(ctx, issued, mail_domain=mail_domain).save(force_create=True)
    result = dataclasses.replace(runs.report(ctx, planned, dry_run=False, run_id=run.id, issued=issued),
                                 message=einvoice_note)
    await notices.queue_run_issued(company, result, now=now, actor=ctx.actor)
    await xero_queue.write_pushes(xero, now=now, invoice=issued.invoice)
    checkpoint("recorded")
    return result


#: The run record's message when nothing was eligible (single and batched runs).
NO_ORDERS_MESSAGE = "No eligible orders: no invoice, no number used."


def issued_message(display: str, orders: int, einvoice_note: str) -> str:
    """The run record's message of an issued invoice (single and batched runs)."""
    return " ".join(filter(None, (f"Invoice {display} issued for {orders} order(s).", einvoice_note)))


def delivery_row(ctx: RunContext, issued: runs.Issued, *, mail_domain: str) -> Delivery:
    """The e-mail of a numbered invoice to the company's address, not yet written (single and batched runs)."""
    return Delivery(tenant_id=ctx.tenant.id, invoice_id=issued.invoice.id,
                    message_id=message_id_for(ctx.tenant.id, issued.number, mail_domain),
                    to_addr=ctx.company.email, bcc=bcc_of(ctx.integration), next_attempt_at=ctx.started_at)


async def _queue_failure(company: Company, run: InvoiceRun, *, now: datetime) -> None:
    await notices.queue_run_problem(company, run.id, run.message, failed=True, now=now)


async def run_by_name(tenant: Tenant, short_name: str, **options: Any) -> RunReport:
    """``run_company`` for adapters that hold a name (CLI, Slack ``run <co>``, the demo).

    Finds the tenant's company (``NotFound`` for an unknown one) and reads the tenant
    once, fresh, so seller details changed a moment ago are the ones invoiced.
    """
    company = await find_company(tenant, short_name)
    return await run_company(await Tenant.get(id=tenant.id), company, **options)
