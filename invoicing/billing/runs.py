"""The building blocks of an invoice run, shared by every integration kind that issues invoices.

An integration's run (``invoicing.integrations.<kind>.run``) holds **one database
transaction** and composes these steps inside it:

    lock the integration row → ``plan`` (eligible orders and their lines)
    → ``draft`` (create invoice + lines, mark orders invoiced) → what needs no number
    → ``take_number`` (the tenant's next number, locked to commit)
    → ``record_run`` → the kind's own outbox rows → commit

The number is taken last because its row lock serialises every run of the tenant
until commit (``take_number`` says more).

Nothing here commits, sends or notifies; nothing leaves the process before the
caller's commit. So a crash leaves either nothing (the number returns to the
sequence) or a committed invoice whose delivery the outbox retries. ``plan`` with
``lock=False`` is the dry run: the same preview, no writes, no number taken.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from invoicing.billing.breakdown import breakdown_json
from invoicing.billing.document import DocumentLine
from invoicing.billing.eligibility import OrderFacts, ineligibility_reason, scope_filter
from invoicing.billing.fx import Quote, fx_json, required_rate
from invoicing.billing.legal import legal_content
from invoicing.billing.limits import InvoiceRoom
from invoicing.billing.line_rows import LineRow, insert_lines
from invoicing.billing.money import Totals, totals
from invoicing.billing.numbering import take_next_number
from invoicing.billing.order_items import Item, items_by_order
from invoicing.billing.pricing import PriceBook, load_price_book, price_items
from invoicing.errors import Conflict, IncompleteDetails, NotEligible
from invoicing.parties.accounting import missing_fields
from models import (
    Company,
    Integration,
    Invoice,
    InvoiceRun,
    Order,
    Plan,
    RunOutcome,
    RunTrigger,
    Tenant,
)

log = logging.getLogger(__name__)

#: How many skipped orders a run keeps by reference (totals per reason are always complete).
SKIPPED_KEEP = 200

#: The columns of an order that planning reads (``plan_orders``): loading only these skips, per order,
#: the decoding of its ship-to JSON and the fields nobody reads.
PLANNED_COLUMNS = ("id", "company_id", "external_ref", "status", "dispatched_at", "on_hold", "error", "invoice_id")

@dataclass(frozen=True)
class PlannedLine(DocumentLine):
    """A line as it will be printed, plus the order it bills.

    ``vat_category`` is the price's own category, "" until ``issue`` derives it
    (``vat_rules.derive_category``); ``exempt_code`` is an ``E`` price's VATEX code.
    """

    order_id: int = 0
    exempt_code: str = ""


@dataclass(frozen=True)
class Skipped:
    ref: str
    reason: str


@dataclass(frozen=True)
class RunReport:
    """What a run did (or, for a dry run, would do); plain values for every adapter."""

    tenant: str
    company: str
    outcome: RunOutcome
    dry_run: bool
    cutoff: datetime
    period_start: datetime | None
    currency: str
    invoice_number: str | None = None
    invoice_id: int | None = None
    run_id: int | None = None
    orders_invoiced: int = 0
    lines: int = 0
    net: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)
    skipped: tuple[Skipped, ...] = ()
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    message: str = ""
    tenant_id: int = 0
    company_id: int = 0
    integration_id: int | None = None

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped_by_reason.values())


@dataclass(frozen=True)
class InvoicePlan:
    """The lines a run would invoice, the orders they bill, and the orders skipped (with why)."""

    lines: tuple[PlannedLine, ...]
    order_ids: tuple[int, ...]
    skipped: tuple[Skipped, ...]

    def skipped_by_reason(self) -> dict[str, int]:
        """How many orders were skipped for each reason (complete, unlike the kept refs)."""
        return dict(Counter(s.reason for s in self.skipped))


def check_plan(tenant: Tenant) -> None:
    """Raise ``NotEligible`` for a tenant on the free OMS Lite plan (no invoicing there)."""
    if tenant.plan == Plan.OMS_LITE:
        raise NotEligible(
            f"{tenant.name} is on OMS Lite: invoicing needs an active OMS licence. "
            "Upgrade the plan, then try again."
        )


def check_can_invoice(tenant: Tenant, company: Company) -> None:
    """Raise ``NotEligible`` when the plan or accounting details rule invoicing out."""
    check_plan(tenant)
    missing = {
        f"the seller ({tenant.name})": missing_fields(tenant.accounting_dict(), "seller"),
        f"company '{company.short_name}'": missing_fields(company.accounting_dict(), "buyer"),
    }
    if any(missing.values()):
        raise IncompleteDetails(missing)


async def plan_invoice(company: Company, integration: Integration, cutoff: datetime, *, lock: bool) -> InvoicePlan:
    """The company's orders in the run's scope, priced into invoice lines, or skipped with a reason.

    ``lock=True`` (inside the run's transaction) locks the candidate orders on PostgreSQL.

    An order that cannot be invoiced is skipped with its reason and never fails the run:
    ineligible (``eligibility``), no price in the buyer's currency, a stored quantity or price an
    invoice line cannot hold, or totals that alone exceed what one invoice holds
    (``limits.MAX_INVOICE_TOTAL``). When the next order would push the invoice's net, VAT or
    gross over that limit, the plan **stops adding orders** there: it and every later eligible
    order are reported as ``limits.DEFERRED`` and stay uninvoiced for the next run. Stopping (rather
    than skipping to smaller later orders) keeps each invoice a run of consecutive dispatches
    and lets the next run start with the oldest order left; every next run invoices at least
    one order, so the backlog drains.
    """
    query = Order.filter(scope_filter(cutoff, integration.starting_from), company_id=company.id)
    if lock:
        # PostgreSQL: the feed locks the same rows before changing items, so an order cannot
        # change between this plan and the marking below.
        query = query.select_for_update()
    # Row locks are taken in id order, as by every writer of orders (docs/architecture.md, "Lock order");
    # the lines still follow dispatch time.
    orders = await query.order_by("id").only(*PLANNED_COLUMNS)
    items = await items_by_order([o.id for o in orders])
    book = await load_price_book(
        company.tenant_id, company.id, company.currency, (item.sku for rows in items.values() for item in rows)
    )
    return plan_orders(orders, items, book, integration, cutoff)


def plan_orders(orders: Iterable[Order], items_of: Mapping[int, Sequence[Item]], book: PriceBook,
                integration: Integration, cutoff: datetime) -> InvoicePlan:
    """``plan_invoice``'s pure part: ``orders`` (in the run's scope) and their items, priced with ``book``.

    ``items_of`` is ``order_items.items_by_order``'s answer (each order's items in print order). The lines
    follow dispatch time (then id), whatever order ``orders`` come in; the currency is the book's (the
    buyer's). Batched runs (``pdf_emailer.batch``) load many companies' orders, items and books at once
    and plan each company with this same function, so both paths plan identically.
    """
    orders = sorted(orders, key=lambda o: (o.dispatched_at, o.id))
    lines: list[PlannedLine] = []
    order_ids: list[int] = []
    skipped: list[Skipped] = []
    room = InvoiceRoom(book.currency)
    for order in orders:
        items = items_of.get(order.id, ())
        facts = OrderFacts(
            status=order.status,
            dispatched_at=order.dispatched_at,
            on_hold=order.on_hold,
            error=order.error,
            invoiced=order.invoice_id is not None,
            item_count=len(items),
        )
        reason = ineligibility_reason(
            facts, cutoff=cutoff, starting_from=integration.starting_from, include_errors=integration.include_errors
        )
        priced = price_items(items, book) if reason is None else ()
        if isinstance(priced, str):
            reason = priced
        elif reason is None:
            reason = room.take([(p.net, p.price.tax_rate) for p in priced])
        if reason is not None:
            skipped.append(Skipped(order.external_ref, reason))
            continue
        assert order.dispatched_at is not None and not isinstance(priced, str)
        order_ids.append(order.id)
        for p in priced:
            lines.append(
                PlannedLine(
                    order_id=order.id,
                    order_ref=order.external_ref,
                    dispatched_at=order.dispatched_at,
                    sku=p.item.sku,
                    description=p.item.description or p.price.product_name,
                    quantity=p.item.quantity,
                    unit_cost=p.price.cost_price,
                    unit_shipping=p.price.shipping,
                    tax_rate=p.price.tax_rate,
                    net=p.net,
                    vat_category=p.price.vat_category,
                    exempt_code=p.price.exempt_code,
                )
            )
    return InvoicePlan(lines=tuple(lines), order_ids=tuple(order_ids), skipped=tuple(skipped))


def period_start(integration: Integration) -> datetime | None:
    """Where the next invoice's period starts: the last completed cutoff, else ``starting_from``."""
    return integration.last_cutoff_at or integration.starting_from


@dataclass(frozen=True)
class Issued:
    """An invoice written in the caller's transaction (not yet committed).

    ``number`` is 0 and ``display`` empty until ``take_number`` gave the invoice its number.
    """

    invoice: Invoice
    number: int
    display: str
    money: Totals


@dataclass(frozen=True)
class RunContext:
    """Who runs what, when: the fields every run record and report of one run share."""

    tenant: Tenant
    company: Company
    integration: Integration
    trigger: RunTrigger
    actor: str
    started_at: datetime
    cutoff: datetime


def _unnumbered(integration: Integration) -> int:
    """The number an invoice holds between ``draft`` and ``take_number`` (never committed).

    Negative, so never a real number; the integration's id, so unique among the drafts in flight:
    drafts of one integration are written under its row lock, one transaction at a time.
    """
    return -integration.id


async def draft(ctx: RunContext, planned: InvoicePlan, *, on_step: Callable[[str], None]) -> Issued:
    """Write the invoice and its lines and mark the orders invoiced — everything but the number.

    Must run inside the caller's transaction, after ``plan_invoice(..., lock=True)``, with
    ``planned.lines`` non-empty; the caller then calls ``take_number`` (and must, before its
    commit). The number comes last on purpose: taking it locks the tenant's sequence row until
    commit, and every run of the tenant waits for that lock, so the less work follows it, the
    more runs of one tenant issue per second. The invoice is an immutable snapshot of seller,
    buyer, prices and totals. Raises ``Conflict`` (so the caller rolls back) when another run
    invoiced one of the orders meanwhile. ``on_step`` is told ``invoice_created`` and
    ``orders_marked`` (fault-injection trials crash there). The invoice is dated
    ``ctx.started_at`` and covers up to ``ctx.cutoff``; its dates are printed in the seller's
    time zone (``tenant.timezone``), so one run's invoices never run backwards in date.

    The legal content is snapshotted too (``legal``): each line's VAT category, the breakdown per
    (category, rate) with exemption reasons and VATEX codes, the notes in the buyer's invoice
    language, and — for an invoice not in the seller's currency — the VAT restated with the rate
    on record (``fx.required_rate``; raises ``NotEligible`` before anything is written when none is).
    """
    quote = await required_rate(ctx.tenant, ctx.company.currency, ctx.started_at)
    rows = draft_rows(ctx, planned, quote)
    invoice = rows.invoice
    await invoice.save(force_create=True)
    await insert_lines([(invoice.id, line) for line in rows.lines])
    on_step("invoice_created")
    marked = await Order.filter(id__in=list(planned.order_ids), invoice_id=None).update(invoice_id=invoice.id)
    if marked != len(planned.order_ids):
        raise Conflict(
            f"{len(planned.order_ids) - marked} order(s) of '{ctx.company.short_name}' were invoiced by another "
            "run meanwhile; this run was rolled back. Run it again."
        )
    on_step("orders_marked")
    ctx.integration.last_cutoff_at = max(filter(None, (ctx.integration.last_cutoff_at, ctx.cutoff)))
    await ctx.integration.save(update_fields=["last_cutoff_at"])
    return Issued(invoice=invoice, number=0, display="", money=rows.money)


@dataclass(frozen=True)
class DraftRows:
    """An invoice (unnumbered) and its lines as rows not yet written, with its totals.

    The lines get their invoice's id from whoever writes the invoice (``draft``, or a batched run
    that writes many at once), which then writes them with ``line_rows.insert_lines``.
    """

    invoice: Invoice
    lines: tuple[LineRow, ...]
    money: Totals


def draft_rows(ctx: RunContext, planned: InvoicePlan, quote: Quote | None) -> DraftRows:
    """The rows ``draft`` writes, built from the plan alone (``quote``: ``fx.required_rate``'s answer)."""
    tenant, company, integration = ctx.tenant, ctx.company, ctx.integration
    money = totals(((line.net, line.tax_rate) for line in planned.lines), company.currency)
    content = legal_content(tenant, company, planned.lines, quote)
    invoice = Invoice(
        tenant_id=tenant.id, company_id=company.id, number=_unnumbered(integration), display_number="",
        issued_at=ctx.started_at, period_start=period_start(integration), period_end=ctx.cutoff,
        currency=company.currency, timezone=tenant.timezone, seller={"name": tenant.name, **tenant.accounting_dict()},
        buyer={"name": company.name, **company.accounting_dict()},
        net_total=money.net, tax_total=money.tax, gross_total=money.gross,
        tax_breakdown=breakdown_json(content.bands), language=content.language, notes=list(content.notes),
        fx=fx_json(content.fx) if content.fx else None,
        order_count=len(planned.order_ids), payment_terms_days=company.payment_terms_days,
    )
    lines = tuple(
        LineRow(
            position=pos, order_id_ref=line.order_id, order_ref=line.order_ref,
            dispatched_at=line.dispatched_at, sku=line.sku, description=line.description[:300],
            quantity=line.quantity, unit_cost=line.unit_cost, unit_shipping=line.unit_shipping,
            tax_rate=line.tax_rate, net=line.net, vat_category=category,
        )
        for pos, (line, category) in enumerate(zip(planned.lines, content.categories, strict=True), start=1)
    )
    return DraftRows(invoice, lines, money)


async def take_number(ctx: RunContext, drafted: Issued, *, on_step: Callable[[str], None]) -> Issued:
    """Give a ``draft`` its number: the tenant's next (``numbering.take_next_number``), gapless.

    From here to the caller's commit the tenant's sequence row is locked: write only what needs the
    number after this (run record, e-mail, notice) and commit. A rollback returns the number and
    removes the draft with it, so no number is lost and no invoice stays unnumbered. ``on_step`` is
    told ``numbered``.
    """
    number, display = await take_next_number(ctx.tenant)
    on_step("numbered")
    invoice = drafted.invoice
    await Invoice.filter(id=invoice.id, number=_unnumbered(ctx.integration)).update(number=number,
                                                                                   display_number=display)
    invoice.number, invoice.display_number = number, display
    return Issued(invoice=invoice, number=number, display=display, money=drafted.money)


async def record_run(ctx: RunContext, outcome: RunOutcome, *, finished_at: datetime, message: str,
                     planned: InvoicePlan | None = None, invoice_id: int | None = None) -> InvoiceRun:
    """Write the run record (in the caller's transaction, or alone for a refusal)."""
    run = run_row(ctx, outcome, finished_at=finished_at, message=message, planned=planned, invoice_id=invoice_id)
    await run.save(force_create=True)
    return run


def run_row(ctx: RunContext, outcome: RunOutcome, *, finished_at: datetime, message: str,
            planned: InvoicePlan | None = None, invoice_id: int | None = None) -> InvoiceRun:
    """``record_run``'s row, not yet written."""
    skipped = _skipped_fields(planned) if planned is not None else {}
    return InvoiceRun(
        tenant_id=ctx.tenant.id, company_id=ctx.company.id, integration_id=ctx.integration.id, trigger=ctx.trigger,
        actor=ctx.actor, started_at=ctx.started_at, finished_at=finished_at, cutoff=ctx.cutoff, outcome=outcome,
        message=message, invoice_id=invoice_id, **skipped,
    )


async def record_failure(ctx: RunContext, exc: Exception,
                         notify: Callable[[InvoiceRun], Awaitable[None]] | None = None) -> None:
    """Best effort: the run rolled back; leave a trace for ops unless the database itself is gone.

    ``notify(run)`` runs in the transaction that writes the record (the caller queues its notice there).
    """
    message = getattr(exc, "message", None) or f"Run failed ({type(exc).__name__}); nothing was issued."
    try:
        async with in_transaction():
            run = await record_run(ctx, RunOutcome.FAILED, finished_at=ctx.started_at, message=message)
            if notify is not None:
                await notify(run)
    except Exception:  # the original error is what matters and is re-raised
        log.exception("could not record failed run tenant=%s company=%s", ctx.tenant.name, ctx.company.short_name)


def _skipped_fields(planned: InvoicePlan) -> dict[str, Any]:
    return {
        "orders_invoiced": len(planned.order_ids) if planned.lines else 0,
        "orders_skipped": len(planned.skipped),
        "skipped": [{"ref": s.ref, "reason": s.reason} for s in planned.skipped[:SKIPPED_KEEP]],
        "skipped_by_reason": planned.skipped_by_reason(),
    }


def report(ctx: RunContext, planned: InvoicePlan, *, dry_run: bool, run_id: int | None = None,
           issued: Issued | None = None, number: str | None = None) -> RunReport:
    """What the run did (or, for a dry run, would do) as a plain value for every adapter."""
    money = issued.money if issued else totals(((l.net, l.tax_rate) for l in planned.lines), ctx.company.currency)
    return RunReport(
        tenant=ctx.tenant.name, company=ctx.company.short_name, tenant_id=ctx.tenant.id, company_id=ctx.company.id,
        integration_id=ctx.integration.id, dry_run=dry_run, cutoff=ctx.cutoff, currency=ctx.company.currency,
        outcome=RunOutcome.INVOICED if planned.lines else RunOutcome.NO_ORDERS,
        period_start=issued.invoice.period_start if issued else period_start(ctx.integration),
        invoice_number=issued.display if issued else number,
        invoice_id=issued.invoice.id if issued else None, run_id=run_id,
        orders_invoiced=len(planned.order_ids), lines=len(planned.lines), net=money.net, tax=money.tax,
        gross=money.gross, skipped=planned.skipped[:SKIPPED_KEEP], skipped_by_reason=planned.skipped_by_reason(),
    )
