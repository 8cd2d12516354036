"""Credit notes: the one way an issued invoice is corrected (DESIGN rule 9).

``preview_credit`` says what a credit note would credit (no writes, no number);
``issue_credit_note`` issues it in **one transaction**, in the lock order of
docs/architecture.md:

    invoice row (FOR NO KEY UPDATE; serialises credits of one invoice)
    → credited orders, ascending id (only with ``reinvoice``)
    → tenant row (``take_next_credit_number``: the credit notes' own gapless sequence)
    → inserts: credit note + lines, audit entry, e-mail ``Delivery``, Slack notice → commit

Everything that can refuse (unknown invoice, bad selection, nothing left, a partly credited
order with ``reinvoice``, a stale preview, a button pressed twice) is checked before the
number is taken, and a refusal rolls the transaction back, so **a refused credit note never
takes a number**. What remains is read under the invoice row lock, so two concurrent credits
of one invoice can never together credit more than it holds: the second waits, then sees the
first (PostgreSQL), or runs after it (SQLite serialises write transactions).

**Re-invoicing** (``reinvoice=True``): the credited orders become eligible again
(``Order.invoice_id`` back to NULL) so the next run invoices them anew. An order stays "at
most once" on an invoice that still bills it: re-invoicing is refused unless *every* line of
each credited order is fully credited (after this credit note nothing of the order remains on
the invoice). The history stays: the old invoice's lines and this credit note's lines keep the
order's id and reference. Without ``reinvoice`` the orders stay invoiced (on the original).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError

from invoicing import audit
from invoicing.billing.credit_plan import Band, CreditableLine, CreditPlan, Selection, plan_credit
from invoicing.billing.numbering import peek_next_credit_number, take_next_credit_number
from invoicing.delivery import notices, xero_queue
from invoicing.delivery.bcc import bcc_of
from invoicing.delivery.mail import credit_message_id_for
from invoicing.errors import Conflict, NotFound
from invoicing.retrying import transaction_attempts
from invoicing.validation import storable, text
from models import (
    Company,
    CreditNote,
    CreditNoteLine,
    Delivery,
    Integration,
    IntegrationKind,
    Invoice,
    InvoiceLine,
    Order,
    Tenant,
)

log = logging.getLogger(__name__)

REASON_MAX = 500


@dataclass(frozen=True)
class CreditRequest:
    """``selection`` ``None`` credits everything that remains (void)."""

    invoice_number: str
    selection: Selection | None
    reason: str
    reinvoice: bool = False


@dataclass(frozen=True)
class CreditPreview:
    """What the credit note would be; ``number`` is the one it would get now (not reserved)."""

    invoice_number: str
    invoice_issued_at: datetime
    company: str
    number: str
    plan: CreditPlan
    invoiced_gross: Decimal


@dataclass(frozen=True)
class IssuedCredit:
    credit_note: CreditNote
    plan: CreditPlan
    invoice_number: str
    company: str
    reinvoiced_orders: int


def check_reason(reason: str) -> str:
    """The reason printed on the credit note: required, one line, at most ``REASON_MAX`` characters."""
    return text(" ".join(reason.split()), "reason", max_len=REASON_MAX)


async def preview_credit(tenant_id: int, request: CreditRequest) -> CreditPreview:
    """The credit note ``request`` would issue now; writes nothing, takes no number."""
    invoice = await _find(tenant_id, request.invoice_number, lock=False)
    plan = await _plan(invoice, request)
    company = await Company.get(id=invoice.company_id)
    return CreditPreview(invoice_number=invoice.display_number, invoice_issued_at=invoice.issued_at,
                         company=company.short_name, number=await peek_next_credit_number(tenant_id), plan=plan,
                         invoiced_gross=Decimal(invoice.gross_total))


async def issue_credit_note(
    tenant: Tenant, request: CreditRequest, *, actor: str, now: datetime, mail_domain: str,
    request_key: str | None = None, expected_gross: Decimal | None = None,
) -> IssuedCredit:
    """Issue the credit note of ``request`` (see the module docstring for the transaction).

    ``expected_gross`` (the previewed total) refuses with ``Conflict`` when the invoice was
    credited meanwhile and the same selection now means something else. ``request_key``
    (one confirm button of one message) makes a second identical request a ``Conflict``.
    Raises ``NotFound`` for another tenant's or an unknown invoice, ``InvalidInput`` for a
    bad selection or reason.
    """
    reason = check_reason(request.reason)
    async for attempt in transaction_attempts():
        async with attempt:
            invoice = await _find(tenant.id, request.invoice_number, lock=True)
            if request_key is not None and await CreditNote.exists(request_key=request_key):
                raise _already_issued(invoice.display_number)
            plan = await _plan(invoice, request)
            if expected_gross is not None and plan.gross != expected_gross:
                raise Conflict(f"Invoice {invoice.display_number} was credited since this preview, so it would now "
                               f"credit a different amount; nothing was issued. Run the command again.")
            if request.reinvoice:
                await _lock_orders(plan)
            number, display = await take_next_credit_number(tenant)
            try:
                note = await _write(tenant, invoice, plan, number=number, display=display, reason=reason,
                                    reinvoice=request.reinvoice, actor=actor, now=now, request_key=request_key)
            except IntegrityError:
                raise _already_issued(invoice.display_number) from None
            released = await _release_orders(invoice, plan) if request.reinvoice else 0
            company = await Company.get(id=invoice.company_id)
            await audit.record(tenant.id, actor=actor, action="credit_note.issue",
                               target=f"invoice:{invoice.display_number}", new={
                                   "credit_note": display, "gross": str(plan.gross), "reason": reason,
                                   "lines": [line.invoice_position for line in plan.lines],
                                   "reinvoice": request.reinvoice})
            integration = await Integration.get_or_none(company_id=company.id, kind=IntegrationKind.PDF_EMAILER)
            if company.email:
                await Delivery.create(
                    tenant_id=tenant.id, invoice_id=invoice.id, credit_note_id=note.id, to_addr=company.email,
                    message_id=credit_message_id_for(tenant.id, number, mail_domain),
                    bcc=bcc_of(integration) if integration else [], next_attempt_at=now)
            await notices.queue_credit_issued(company, note.id, credit_payload(note, plan, invoice, company), now=now)
            await xero_queue.queue_pushes(company.id, now=now, credit_note=note)
    log.info("credit note issued tenant=%s invoice=%s credit_note=%s gross=%s reinvoiced=%d", tenant.name,
             invoice.display_number, display, plan.gross, released)
    return IssuedCredit(credit_note=note, plan=plan, invoice_number=invoice.display_number,
                        company=company.short_name, reinvoiced_orders=released)


def credit_payload(note: CreditNote, plan: CreditPlan, invoice: Invoice, company: Company) -> dict[str, Any]:
    """The facts of a credit note's channel notice (``commands.notifications`` renders them)."""
    return {
        "company": company.short_name, "credit_note": note.display_number, "invoice_number": invoice.display_number,
        "currency": note.currency, "net": str(plan.net), "tax": str(plan.tax), "gross": str(plan.gross),
        "remaining_gross": str(plan.remaining_gross), "lines": len(plan.lines), "reason": note.reason,
        "reinvoice": note.reinvoice, "actor": note.actor,
    }


async def _find(tenant_id: int, number: str, *, lock: bool) -> Invoice:
    wanted = number.strip()
    query = Invoice.filter(tenant_id=tenant_id, display_number=wanted)
    if lock:
        query = query.select_for_update(no_key=True)
    found = await query.first() if storable(wanted, 40) else None
    if found is None:
        raise NotFound(f"No invoice {wanted!r} in this workspace. `/invoicing invoices <co>` lists them.")
    return found


async def creditable_lines(invoice: Invoice) -> list[CreditableLine]:
    """The invoice's lines with what its credit notes already credited of each."""
    credited: dict[int, tuple[int, Decimal]] = {}
    for row in await CreditNoteLine.filter(credit_note__invoice_id=invoice.id):
        quantity, net = credited.get(row.invoice_line_id, (0, Decimal(0)))
        credited[row.invoice_line_id] = (quantity + row.quantity, net + Decimal(row.net))
    lines = []
    for line in await InvoiceLine.filter(invoice_id=invoice.id).order_by("position"):
        quantity, net = credited.get(line.id, (0, Decimal(0)))
        lines.append(CreditableLine(
            invoice_line_id=line.id, position=line.position, order_id=line.order_id_ref, order_ref=line.order_ref,
            dispatched_at=line.dispatched_at, sku=line.sku, description=line.description, quantity=line.quantity,
            unit_cost=Decimal(line.unit_cost), unit_shipping=Decimal(line.unit_shipping),
            tax_rate=Decimal(line.tax_rate), vat_category=str(getattr(line, "vat_category", "") or "S"),
            net=Decimal(line.net), credited_quantity=quantity, credited_net=net))
    return lines


def bands_of(breakdown: list[dict[str, str]]) -> list[Band]:
    """A stored ``tax_breakdown`` (invoice or credit note) as bands; no category means standard (S)."""
    return [Band(category=str(b.get("category") or "S"), rate=Decimal(b["rate"]), net=Decimal(b["net"]),
                 tax=Decimal(b["tax"])) for b in breakdown]


async def _plan(invoice: Invoice, request: CreditRequest) -> CreditPlan:
    earlier = [band for note in await CreditNote.filter(invoice_id=invoice.id) for band in bands_of(note.tax_breakdown)]
    plan = plan_credit(invoice.display_number, invoice.currency, await creditable_lines(invoice),
                       bands_of(invoice.tax_breakdown), earlier, request.selection)
    if request.reinvoice and plan.partly_credited_orders:
        refs = ", ".join(plan.partly_credited_orders[:5])
        raise Conflict(f"reinvoice=yes needs every line of an order credited; order(s) {refs} would stay partly on "
                       "the invoice. Credit all their lines, or leave out reinvoice (the orders then stay invoiced).")
    return plan


async def _lock_orders(plan: CreditPlan) -> None:
    await Order.filter(id__in=list(plan.cleared_orders)).order_by("id").select_for_update()


async def _release_orders(invoice: Invoice, plan: CreditPlan) -> int:
    released = await Order.filter(id__in=list(plan.cleared_orders), invoice_id=invoice.id).update(invoice_id=None)
    if released != len(plan.cleared_orders):
        raise Conflict(f"Some orders of invoice {invoice.display_number} are no longer on it; nothing was issued.")
    return int(released)


async def _write(tenant: Tenant, invoice: Invoice, plan: CreditPlan, *, number: int, display: str, reason: str,
                 reinvoice: bool, actor: str, now: datetime, request_key: str | None) -> CreditNote:
    note = await CreditNote.create(
        tenant_id=tenant.id, company_id=invoice.company_id, invoice_id=invoice.id, number=number,
        display_number=display, issued_at=now, currency=invoice.currency, timezone=invoice.timezone,
        seller=dict(invoice.seller), buyer=dict(invoice.buyer), net_total=plan.net, tax_total=plan.tax,
        gross_total=plan.gross, reason=reason, reinvoice=reinvoice, actor=actor[:100], request_key=request_key,
        tax_breakdown=[{"rate": str(b.rate), "category": b.category, "net": str(b.net), "tax": str(b.tax)}
                       for b in plan.bands],
    )
    await CreditNoteLine.bulk_create([
        CreditNoteLine(
            credit_note_id=note.id, invoice_line_id=line.invoice_line_id, position=pos,
            invoice_position=line.invoice_position, order_id_ref=line.order_id, order_ref=line.order_ref,
            dispatched_at=line.dispatched_at, sku=line.sku, description=line.description[:300],
            quantity=line.quantity, unit_cost=line.unit_cost, unit_shipping=line.unit_shipping,
            tax_rate=line.tax_rate, vat_category=line.vat_category, net=line.net)
        for pos, line in enumerate(plan.lines, start=1)
    ])
    return note


def _already_issued(number: str) -> Conflict:
    return Conflict(f"A credit note for invoice {number} was already issued from this message; nothing new was "
                    "issued. `/invoicing invoices <co>` lists it.")
