"""Many companies' scheduled PDF Emailer runs in one transaction: the Sunday-midnight burst.

Every company defaults to the same weekly slot, so a tenant's invoicing falls due in one minute.
Run one by one, each run costs about fifty statements and the tenant's number lock is held by one
run at a time; here the scheduler hands over a whole tick of one tenant's due companies and they
are issued with a fixed number of statements (each one for every company at once):

    lock the integration rows (ascending id) → hold the leases → lock the candidate orders
    (``FOR UPDATE … ORDER BY id``) and read their items → the price books → plan each company
    (``runs.plan_orders``, the very function a single run uses) → supersede pending approvals →
    insert the invoices (unnumbered) and their lines → mark the orders → last cutoffs
    → take N numbers (``numbering.take_next_numbers``) and give them → insert the run records,
    the e-mails, the notices and the Xero pushes → commit

Each company's rows are exactly what its own run would write (``tests`` compare both paths row by
row). The lock order is the single run's (docs/architecture.md, "Lock order"): integrations, orders
by id, tenant last, then inserts.

**What a batch does not do** — it leaves the company to ``run.run_company`` (the scheduler runs it
alone, as before): a refusal (plan, missing details, no exchange rate), approval mode, a lease the
batch finds lost (``None``: rolled back for it, never written). And when anything in the
transaction fails — a conflict, a bug, a database error — the whole batch rolls back and every
company runs alone, where one company's failure is recorded as that company's and never blocks
the others. So the batch is only ever a faster way to the same rows, never a new way to fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_

from tortoise.expressions import Q

from invoicing.billing import runs
from invoicing.billing.eligibility import scope_filter
from invoicing.billing.fx import Quote, required_rate
from invoicing.billing.line_rows import insert_lines
from invoicing.billing.numbering import take_next_numbers
from invoicing.billing.order_items import items_by_order
from invoicing.billing.pricing import load_price_books
from invoicing.billing.runs import InvoicePlan, RunContext, RunReport
from invoicing.clock import Clock, utc_now
from invoicing.delivery import notices, xero_queue
from invoicing.delivery.einvoice import choice as einvoice_choice
from invoicing.errors import Conflict, InvoiceBotError
from invoicing.integrations.pdf_emailer import preview
from invoicing.integrations.pdf_emailer.run import NO_ORDERS_MESSAGE, delivery_row, issued_message
from invoicing.retrying import transaction_attempts
from invoicing.sql import Statement, is_postgres
from models import (
    Company,
    Delivery,
    Integration,
    IntegrationKind,
    Invoice,
    InvoiceRun,
    Order,
    RunOutcome,
    RunTrigger,
    SlackNotice,
    Tenant,
    XeroPush,
)

log = logging.getLogger(__name__)

KIND = IntegrationKind.PDF_EMAILER


#: Companies per transaction. SQLite: a transaction holds the process's one connection and the database's
#: write lock, so every Slack ack and feed request of the process waits for it; small transactions keep
#: that wait to a few tens of milliseconds. PostgreSQL: other requests use other connections, and only the
#: tenant's other runs wait (for its number row), so larger transactions cost nobody anything.
TRANSACTION_SIZE = {"postgres": 50, "sqlite": 10}


@dataclass(frozen=True)
class BatchItem:
    """One company's scheduled run: its PDF Emailer integration, the trigger and the cutoff."""

    company: Company
    integration_id: int
    trigger: RunTrigger
    cutoff: datetime


#: ``hold(integration_ids)``: inside the transaction, after the row locks, the ids whose lease is still ours.
Hold = Callable[[list[int]], Awaitable[set[int]]]
#: What a batch did, by integration id: the report, or ``None`` (lease lost, nothing written). An item
#: missing from it was left for its own run.
BatchResult = dict[int, RunReport | None]


async def _let_others_run() -> None:
    """Give the event loop's other tasks a turn between two companies' planning.

    Planning and drafting a transaction's companies is pure Python, tens of milliseconds for
    fifty; in one piece it holds up the outbox on the same loop, whose every SMTP reply waits
    for its turn, so the e-mails of invoices already issued trickled out while a burst was
    being issued and the render workers idled.
    """
    await asyncio.sleep(0)


async def _hold_all(ids: list[int]) -> set[int]:
    return set(ids)


async def run_batch(tenant: Tenant, items: Sequence[BatchItem], *, actor: str, clock: Clock = utc_now,
                    mail_domain: str = "invoicebot.local", hold: Hold = _hold_all) -> BatchResult:
    """Run ``items`` (companies of ``tenant``, freshly read) in as few transactions as their windows allow.

    Items are grouped by cutoff, one transaction per ``TRANSACTION_SIZE`` of a group; within it one query
    selects every company's orders exactly as its single run would (per starting date). Never raises
    for a company's sake: whatever it cannot do is missing from the result (see the module docstring).
    """
    now = clock()
    quotes: dict[str, Quote | None] = {}
    eligible: list[BatchItem] = []
    for item in items:
        try:
            runs.check_can_invoice(tenant, item.company)
            if item.company.currency not in quotes:
                quotes[item.company.currency] = await required_rate(tenant, item.company.currency, now)
        except InvoiceBotError:  # refused: the single run records the refusal and its notice
            continue
        eligible.append(item)
    by_cutoff: dict[datetime, list[BatchItem]] = defaultdict(list)
    for item in eligible:
        by_cutoff[item.cutoff].append(item)
    result: BatchResult = {}
    size = TRANSACTION_SIZE["postgres" if is_postgres() else "sqlite"]
    groups = [(cutoff, members[k:k + size]) for cutoff, members in by_cutoff.items()
              for k in range(0, len(members), size)]
    for cutoff, group in groups:
        try:
            result.update(await _run_group(tenant, cutoff, group, quotes, now=now, actor=actor, clock=clock,
                                           mail_domain=mail_domain, hold=hold))
        except Exception:  # the companies run alone, where a failure is theirs (module docstring)
            log.exception("batched run failed, running the companies alone tenant=%s companies=%d",
                          tenant.name, len(group))
    return result


@dataclass
class _Run:
    """One company's run inside the batch, filled in as the transaction goes."""

    item: BatchItem
    ctx: RunContext
    planned: InvoicePlan
    rows: runs.DraftRows | None = None
    number: int = 0
    display: str = ""
    note: str = ""  # the run's e-invoice note (``einvoice.choice.run_note``), "" when there is none
    report: RunReport | None = None


async def _run_group(tenant: Tenant, cutoff: datetime, group: list[BatchItem], quotes: dict[str, Quote | None], *,
                     now: datetime, actor: str, clock: Clock, mail_domain: str, hold: Hold) -> BatchResult:
    by_integration = {item.integration_id: item for item in group}
    async for attempt in transaction_attempts():  # the whole transaction again after a deadlock
        async with attempt:
            # Lock order (docs/architecture.md): integrations by id, then orders by id, the tenant last.
            integrations = await (Integration.filter(id__in=list(by_integration)).order_by("id")
                                  .select_for_update())
            held = await hold([row.id for row in integrations])
            lost = {integration_id: None for integration_id in by_integration if integration_id not in held}
            # Approval mode prepares instead of issuing: the single run does it.
            mine = [row for row in integrations if row.id in held and not row.approval]
            if not mine:
                return dict(lost)
            done = await _issue(tenant, cutoff, [(by_integration[row.id], row) for row in mine], quotes,
                                now=now, actor=actor, clock=clock, mail_domain=mail_domain)
            return {**lost, **done}
    raise AssertionError("transaction_attempts ends with a commit or an exception")


async def _issue(tenant: Tenant, cutoff: datetime, pairs: list[tuple[BatchItem, Integration]],
                 quotes: dict[str, Quote | None], *, now: datetime, actor: str, clock: Clock,
                 mail_domain: str) -> BatchResult:
    """Everything after the integration locks, inside the batch's transaction."""
    # One query for every window (a starting date is per integration), its orders locked by id across
    # all companies; the lines follow dispatch time (``plan_orders`` sorts).
    windows: dict[datetime | None, list[int]] = defaultdict(list)
    for item, row in pairs:
        windows[row.starting_from].append(item.company.id)
    scope = reduce(or_, (scope_filter(cutoff, starting_from) & Q(company_id__in=companies)
                         for starting_from, companies in windows.items()))
    orders_by_company: dict[int, list[Order]] = defaultdict(list)
    locked = await Order.filter(scope).select_for_update().order_by("id").only(*runs.PLANNED_COLUMNS)
    for order in locked:
        orders_by_company[order.company_id].append(order)
    items = await items_by_order([order.id for order in locked])
    books = await load_price_books(
        tenant.id, {item.company.id: item.company.currency for item, _ in pairs},
        (i.sku for rows in items.values() for i in rows))
    work = []
    for item, row in pairs:
        ctx = RunContext(tenant, item.company, row, item.trigger, actor, now, cutoff)
        work.append(_Run(item, ctx, runs.plan_orders(orders_by_company[item.company.id], items,
                                                     books[item.company.id], row, cutoff)))  # fmt: skip
        await _let_others_run()
    await preview.supersede_pending([row.id for _, row in pairs], now=now, actor=actor)
    issuing = [run for run in work if run.planned.lines]
    if issuing:
        await _draft_all(issuing, quotes)
        await _number_all(tenant, issuing)
    await _record_all(work, now=now, clock=clock, mail_domain=mail_domain, actor=actor)
    for run in issuing:
        log.info("invoice issued tenant=%s company=%s invoice=%s orders=%d", tenant.name, run.item.company.short_name,
                 run.display, len(run.planned.order_ids))
    return {run.item.integration_id: run.report for run in work}


async def _draft_all(issuing: list[_Run], quotes: dict[str, Quote | None]) -> None:
    """Insert the unnumbered invoices and their lines, mark the orders, move the last cutoffs (``runs.draft``)."""
    for run in issuing:
        run.rows = runs.draft_rows(run.ctx, run.planned, quotes[run.item.company.currency])
        await _let_others_run()
    invoices = [run.rows.invoice for run in issuing if run.rows is not None]
    await Invoice.bulk_create(invoices)
    # Each draft holds its integration's negative placeholder: unique in the tenant while the rows are locked.
    tenant_id = issuing[0].ctx.tenant.id
    ids = dict(await Invoice.filter(tenant_id=tenant_id, number__in=[i.number for i in invoices])
               .values_list("number", "id"))
    for invoice in invoices:
        invoice.id = ids[invoice.number]
    await insert_lines([(run.rows.invoice.id, line) for run in issuing if run.rows is not None
                        for line in run.rows.lines])
    await _mark_orders(issuing)
    cutoff = issuing[0].ctx.cutoff
    for run in issuing:
        run.ctx.integration.last_cutoff_at = max(filter(None, (run.ctx.integration.last_cutoff_at, cutoff)))
    moved = [run.ctx.integration.id for run in issuing if run.ctx.integration.last_cutoff_at == cutoff]
    if moved:
        await Integration.filter(id__in=moved).update(last_cutoff_at=cutoff)


async def _mark_orders(issuing: list[_Run]) -> None:
    """One UPDATE gives every planned order its company's invoice; raises ``Conflict`` if any was taken."""
    q = Statement()
    cases = " ".join(f"WHEN {q(run.item.company.id)} THEN CAST({q(run.rows.invoice.id)} AS INTEGER)"
                     for run in issuing if run.rows is not None)
    order_ids = [order_id for run in issuing for order_id in run.planned.order_ids]
    marked = await q.execute(f'UPDATE "order" SET invoice_id = CASE company_id {cases} END '
                             f"WHERE id {q.any_of(order_ids, 'int')} AND invoice_id IS NULL")
    if marked != len(order_ids):
        raise Conflict(f"{len(order_ids) - marked} order(s) were invoiced by another run meanwhile")


async def _number_all(tenant: Tenant, issuing: list[_Run]) -> None:
    """Take the tenant's next numbers, one per invoice in the batch's order, and give them (``runs.take_number``)."""
    numbers = await take_next_numbers(tenant, len(issuing))
    q = Statement()
    number_cases, display_cases = [], []
    for run, (number, display) in zip(issuing, numbers, strict=True):
        assert run.rows is not None
        run.number, run.display = number, display
        number_cases.append(f"WHEN {q(run.rows.invoice.number)} THEN CAST({q(number)} AS INTEGER)")
    for run in issuing:  # bound after every number case: SQLite's ``?`` placeholders are positional
        assert run.rows is not None
        display_cases.append(f"WHEN {q(run.rows.invoice.number)} THEN {q(run.display)}")
    placeholders = [run.rows.invoice.number for run in issuing if run.rows is not None]
    # Both CASEs read the row's old (placeholder) number: SET sees the row as it was.
    given = await q.execute(f"UPDATE invoice SET number = CASE number {' '.join(number_cases)} END, "
                            f"display_number = CASE number {' '.join(display_cases)} END "
                            f"WHERE tenant_id = {q(tenant.id)} AND number {q.any_of(placeholders, 'int')}")
    if given != len(issuing):
        raise AssertionError(f"numbered {given} of {len(issuing)} drafts")
    for run in issuing:
        assert run.rows is not None
        run.rows.invoice.number, run.rows.invoice.display_number = run.number, run.display


async def _record_all(work: list[_Run], *, now: datetime, clock: Clock, mail_domain: str, actor: str) -> None:
    """The run records, then what carries their ids and the numbers: e-mails, notices, Xero pushes."""
    finished = clock()
    records = []
    for run in work:
        if run.rows is None:
            records.append(runs.run_row(run.ctx, RunOutcome.NO_ORDERS, finished_at=finished, planned=run.planned,
                                        message=NO_ORDERS_MESSAGE))
            continue
        run.note = einvoice_choice.run_note(run.ctx.integration.settings, run.item.company.country,
                                            run.rows.invoice.currency)
        records.append(runs.run_row(run.ctx, RunOutcome.INVOICED, finished_at=finished, planned=run.planned,
                                    invoice_id=run.rows.invoice.id,
                                    message=issued_message(run.display, len(run.planned.order_ids), run.note)))
    await InvoiceRun.bulk_create(records)
    run_ids = dict(await InvoiceRun.filter(integration_id__in=[run.ctx.integration.id for run in work],
                                           started_at=now).values_list("integration_id", "id"))
    xero = await xero_queue.xero_integrations([run.item.company.id for run in work if run.rows is not None])
    deliveries: list[Delivery] = []
    notice_rows: list[SlackNotice] = []
    pushes: list[XeroPush] = []
    for run in work:
        run_id = run_ids[run.ctx.integration.id]
        if run.rows is None:
            run.report = runs.report(run.ctx, run.planned, dry_run=False, run_id=run_id)
            continue
        issued = runs.Issued(invoice=run.rows.invoice, number=run.number, display=run.display, money=run.rows.money)
        run.report = dataclasses.replace(runs.report(run.ctx, run.planned, dry_run=False, run_id=run_id,
                                                     issued=issued), message=run.note)
        deliveries.append(delivery_row(run.ctx, issued, mail_domain=mail_domain))
        notice = notices.run_issued_row(run.item.company, run.report, now=now, actor=actor)
        if notice is not None:
            notice_rows.append(notice)
        pushes += xero_queue.push_rows(xero.get(run.item.company.id), now=now, invoice=issued.invoice)
    if deliveries:
        await Delivery.bulk_create(deliveries)
    if notice_rows:
        await SlackNotice.bulk_create(notice_rows)
    if pushes:
        await XeroPush.bulk_create(pushes)

