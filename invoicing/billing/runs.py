"""One invoice run for one company — the heart of InvoiceBot.

A run happens in **one database transaction**:

    claim the integration row → select eligible orders → take the next number
    → create invoice + lines → mark orders invoiced → record run + outbox row → commit

Nothing leaves the process before commit: the PDF, e-mail and Slack notification
are produced afterwards from the committed invoice and the outbox row. So a crash
leaves either nothing (the number returns to the sequence) or a committed invoice
whose delivery is retried. A dry run computes the same preview with no writes and
no number taken.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tortoise.transactions import in_transaction

from invoicing.billing.document import DocumentLine
from invoicing.billing.eligibility import OrderFacts, ineligibility_reason
from invoicing.billing.money import line_net, totals
from invoicing.billing.numbering import peek_next_number, take_next_number
from invoicing.billing.pricing import UnitPrice, load_price_book
from invoicing.clock import Clock, utc_now
from invoicing.errors import Conflict, IncompleteDetails, NotEligible, NotFound
from invoicing.parties.accounting import missing_fields
from invoicing.validation import storable
from models import (
    Company,
    Delivery,
    EmailerIntegration,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    Order,
    OrderStatus,
    Plan,
    RunOutcome,
    RunTrigger,
    Tenant,
)

log = logging.getLogger(__name__)

#: How many skipped orders a run keeps by reference (totals per reason are always complete).
SKIPPED_KEEP = 200

Checkpoint = Callable[[str], None]


def _no_checkpoint(_: str) -> None:
    return None


@dataclass(frozen=True)
class PlannedLine(DocumentLine):
    """A line as it will be printed, plus the order it bills."""

    order_id: int = 0


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

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped_by_reason.values())


@dataclass(frozen=True)
class _Plan:
    lines: tuple[PlannedLine, ...]
    order_ids: tuple[int, ...]
    skipped: tuple[Skipped, ...]

    def skipped_by_reason(self) -> dict[str, int]:
        """How many orders were skipped for each reason (complete, unlike the kept refs)."""
        return dict(Counter(s.reason for s in self.skipped))


async def find_company(tenant: Tenant, short_name: str) -> Company:
    """The tenant's company called ``short_name`` (other tenants' companies do not exist here)."""
    name = short_name.strip().lower()
    company = await Company.get_or_none(tenant_id=tenant.id, short_name=name) if storable(name, 40) else None
    if company is None:
        raise NotFound(f"No company '{short_name}' in {tenant.name}. `/invoicing companies` lists them.")
    return company


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


async def _plan(company: Company, integration: EmailerIntegration, cutoff: datetime, *, lock: bool) -> _Plan:
    query = Order.filter(
        company_id=company.id, invoice_id=None, status=OrderStatus.DISPATCHED, dispatched_at__lt=cutoff
    )
    if integration.starting_from is not None:
        query = query.filter(dispatched_at__gte=integration.starting_from)
    if lock:
        # PostgreSQL: the feed locks the same rows before changing items, so an order cannot
        # change between this plan and the marking below.
        query = query.select_for_update()
    orders = await query.order_by("dispatched_at", "id").prefetch_related("items")
    book = await load_price_book(
        company.tenant_id, company.id, company.currency, (item.sku for o in orders for item in o.items)
    )
    lines: list[PlannedLine] = []
    order_ids: list[int] = []
    skipped: list[Skipped] = []
    for order in orders:
        items = sorted(order.items, key=lambda i: (i.position, i.id))
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
        prices: list[UnitPrice] = []
        if reason is None:
            for item in items:
                price = book.lookup(item.sku)
                if isinstance(price, str):
                    reason = price
                    break
                prices.append(price)
        if reason is not None:
            skipped.append(Skipped(order.external_ref, reason))
            continue
        assert order.dispatched_at is not None
        order_ids.append(order.id)
        for item, price in zip(items, prices, strict=True):
            lines.append(
                PlannedLine(
                    order_id=order.id,
                    order_ref=order.external_ref,
                    dispatched_at=order.dispatched_at,
                    sku=item.sku,
                    description=item.description or price.product_name,
                    quantity=item.quantity,
                    unit_cost=price.cost_price,
                    unit_shipping=price.shipping,
                    tax_rate=price.tax_rate,
                    net=line_net(item.quantity, price.cost_price, price.shipping, company.currency),
                )
            )
    return _Plan(lines=tuple(lines), order_ids=tuple(order_ids), skipped=tuple(skipped))


def _period_start(integration: EmailerIntegration) -> datetime | None:
    return integration.last_cutoff_at or integration.starting_from


def message_id_for(tenant_id: int, number: int, domain: str, resend: int = 0) -> str:
    """Stable Message-ID of an invoice e-mail (a resend gets its own, numbered)."""
    suffix = f".r{resend}" if resend else ""
    return f"<invoice.{tenant_id}.{number}{suffix}@{domain}>"


async def run_company(
    tenant: Tenant,
    short_name: str,
    *,
    trigger: RunTrigger = RunTrigger.MANUAL,
    actor: str = "",
    dry_run: bool = False,
    cutoff: datetime | None = None,
    clock: Clock = utc_now,
    mail_domain: str = "invoicebot.local",
    checkpoint: Checkpoint = _no_checkpoint,
) -> RunReport:
    """Invoice one company now (manual) or for a scheduled ``cutoff``.

    Raises ``NotFound`` for an unknown company and ``NotEligible`` (incl.
    ``IncompleteDetails``) when invoicing is refused; a refused non-dry run is
    recorded as a run with outcome ``refused``. ``checkpoint(name)`` is called at
    each step inside the transaction (``claimed``, ``numbered``, ``invoice_created``,
    ``orders_marked``, ``recorded``) so fault-injection trials can crash there.
    """
    company = await find_company(tenant, short_name)
    tenant = await Tenant.get(id=tenant.id)  # fresh seller details and plan
    now = clock()
    cutoff = cutoff or now
    base = dict(tenant=tenant.name, company=company.short_name, dry_run=dry_run, cutoff=cutoff, currency=company.currency)
    try:
        check_can_invoice(tenant, company)
    except NotEligible as refusal:
        if not dry_run:
            await InvoiceRun.create(
                tenant_id=tenant.id, company_id=company.id, trigger=trigger, actor=actor, started_at=now,
                finished_at=now, cutoff=cutoff, outcome=RunOutcome.REFUSED, message=refusal.message,
            )
        raise

    if dry_run:
        integration = await EmailerIntegration.get(company_id=company.id)
        plan = await _plan(company, integration, cutoff, lock=False)
        return _report(base, plan, _period_start(integration),
                       number=await peek_next_number(tenant.id) if plan.lines else None)

    try:
        async with in_transaction():
            # Claim: an UPDATE takes the row lock (PostgreSQL) / write lock (SQLite) at once,
            # so two runs of one company queue here instead of racing.
            await EmailerIntegration.filter(company_id=company.id).update(updated_at=now)
            integration = await EmailerIntegration.get(company_id=company.id)
            checkpoint("claimed")
            plan = await _plan(company, integration, cutoff, lock=True)
            period_start = _period_start(integration)
            if not plan.lines:
                run = await InvoiceRun.create(
                    tenant_id=tenant.id, company_id=company.id, trigger=trigger, actor=actor,
                    started_at=now, finished_at=clock(), cutoff=cutoff, outcome=RunOutcome.NO_ORDERS,
                    **_skipped_fields(plan), message="No eligible orders: no invoice, no number used.",
                )
                return _report(base, plan, period_start, run_id=run.id)
            number, display = await take_next_number(tenant.id)
            checkpoint("numbered")
            money = totals(((l.net, l.tax_rate) for l in plan.lines), company.currency)
            invoice = await Invoice.create(
                tenant_id=tenant.id, company_id=company.id, number=number, display_number=display,
                issued_at=now, period_start=period_start, period_end=cutoff, currency=company.currency,
                timezone=company.timezone, seller={"name": tenant.name, **tenant.accounting_dict()},
                buyer={"name": company.name, **company.accounting_dict()},
                net_total=money.net, tax_total=money.tax, gross_total=money.gross,
                tax_breakdown=[{"rate": str(b.rate), "net": str(b.net), "tax": str(b.tax)} for b in money.bands],
                order_count=len(plan.order_ids), payment_terms_days=company.payment_terms_days,
            )
            await InvoiceLine.bulk_create(
                [
                    InvoiceLine(
                        invoice_id=invoice.id, position=pos, order_id_ref=l.order_id, order_ref=l.order_ref,
                        dispatched_at=l.dispatched_at, sku=l.sku, description=l.description[:300],
                        quantity=l.quantity, unit_cost=l.unit_cost, unit_shipping=l.unit_shipping,
                        tax_rate=l.tax_rate, net=l.net,
                    )
                    for pos, l in enumerate(plan.lines, start=1)
                ]
            )
            checkpoint("invoice_created")
            marked = await Order.filter(id__in=list(plan.order_ids), invoice_id=None).update(invoice_id=invoice.id)
            if marked != len(plan.order_ids):
                raise Conflict(
                    f"{len(plan.order_ids) - marked} order(s) of '{company.short_name}' were invoiced by another "
                    "run meanwhile; this run was rolled back. Run it again."
                )
            checkpoint("orders_marked")
            integration.last_cutoff_at = max(filter(None, (integration.last_cutoff_at, cutoff)))
            await integration.save(update_fields=["last_cutoff_at"])
            run = await InvoiceRun.create(
                tenant_id=tenant.id, company_id=company.id, trigger=trigger, actor=actor, started_at=now,
                finished_at=clock(), cutoff=cutoff, outcome=RunOutcome.INVOICED,
                orders_invoiced=len(plan.order_ids), **_skipped_fields(plan), invoice_id=invoice.id,
                message=f"Invoice {display} issued for {len(plan.order_ids)} order(s).",
            )
            await Delivery.create(
                invoice_id=invoice.id, message_id=message_id_for(tenant.id, number, mail_domain),
                to_addr=company.email, bcc=list(integration.bcc), next_attempt_at=now,
            )
            checkpoint("recorded")
    except Exception as exc:
        log.warning("run failed tenant=%s company=%s error=%s", tenant.name, company.short_name, type(exc).__name__)
        await _record_failure(tenant, company, trigger, actor, now, cutoff, exc)
        raise
    log.info("invoice issued tenant=%s company=%s invoice=%s orders=%d", tenant.name, company.short_name,
             display, len(plan.order_ids))
    return _report(base, plan, period_start, run_id=run.id, number=display, invoice_id=invoice.id, money=money)


async def _record_failure(
    tenant: Tenant, company: Company, trigger: RunTrigger, actor: str, now: datetime, cutoff: datetime, exc: Exception
) -> None:
    """Best effort: the run rolled back; leave a trace for ops unless the database itself is gone."""
    message = getattr(exc, "message", None) or f"Run failed ({type(exc).__name__}); nothing was issued."
    try:
        await InvoiceRun.create(
            tenant_id=tenant.id, company_id=company.id, trigger=trigger, actor=actor, started_at=now,
            finished_at=now, cutoff=cutoff, outcome=RunOutcome.FAILED, message=message,
        )
    except Exception:  # noqa: BLE001 - the original error is what matters and is re-raised
        log.exception("could not record failed run tenant=%s company=%s", tenant.name, company.short_name)


def _skipped_fields(plan: _Plan) -> dict[str, object]:
    return {
        "orders_skipped": len(plan.skipped),
        "skipped": [{"ref": s.ref, "reason": s.reason} for s in plan.skipped[:SKIPPED_KEEP]],
        "skipped_by_reason": plan.skipped_by_reason(),
    }


def _report(
    base: dict[str, object], plan: _Plan, period_start: datetime | None, *,
    run_id: int | None = None, number: str | None = None, invoice_id: int | None = None, money=None,
) -> RunReport:
    currency = str(base["currency"])
    money = money or totals(((l.net, l.tax_rate) for l in plan.lines), currency)
    outcome = RunOutcome.INVOICED if plan.lines else RunOutcome.NO_ORDERS
    return RunReport(
        **base,  # type: ignore[arg-type]
        outcome=outcome, period_start=period_start, invoice_number=number, invoice_id=invoice_id, run_id=run_id,
        orders_invoiced=len(plan.order_ids), lines=len(plan.lines), net=money.net, tax=money.tax,
        gross=money.gross, skipped=plan.skipped[:SKIPPED_KEEP],
        skipped_by_reason=plan.skipped_by_reason(),
    )
