"""A prepared invoice of approval mode: what the preview showed, and how to tell whether it still holds.

``prepare`` stores a ``RunApproval`` for a plan (no number taken, no order touched) and
queues its preview notice; ``fingerprint`` is what an approval compares before issuing.
Both run inside the caller's transaction, which holds the integration row lock.

The fingerprint covers every order the plan bills — its id and ``updated_at`` (the feed
and CSV import bump it on every change) — and every line's SKU, quantity, unit prices,
tax rate and net. So a changed order, an order that arrived late (dispatched before the
cutoff), a changed price or an order that left the scope (invoiced by a manual run, put
on hold) all change it; orders dispatched after the cutoff never enter the plan.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from invoicing.billing.money import totals
from invoicing.billing.runs import SKIPPED_KEEP, InvoicePlan, RunContext, period_start
from invoicing.delivery import notices
from invoicing.integrations.pdf_emailer.approval_policy import policy_of
from models import ApprovalState, Order, RunApproval


async def fingerprint(planned: InvoicePlan) -> str:
    """sha256 (hex) of the billed orders' ids and versions and of every planned line's amounts."""
    versions = dict(await Order.filter(id__in=list(planned.order_ids)).values_list("id", "updated_at"))
    digest = hashlib.sha256()
    for order_id in sorted(planned.order_ids):
        stamp = versions.get(order_id)
        digest.update(f"order|{order_id}|{stamp.isoformat() if isinstance(stamp, datetime) else stamp}\n".encode())
    for line in planned.lines:
        digest.update(f"line|{line.order_id}|{line.sku}|{line.quantity}|{line.unit_cost.normalize()}|"
                      f"{line.unit_shipping.normalize()}|{line.tax_rate.normalize()}|{line.net.normalize()}\n".encode())
    return digest.hexdigest()


async def prepare(ctx: RunContext, planned: InvoicePlan, *, slot: datetime, now: datetime,
                  replaces: RunApproval | None = None) -> RunApproval:
    """Store the prepared invoice of ``planned`` (non-empty) as a pending approval and queue its preview.

    Every other pending approval of the integration is marked superseded by the new one
    (one pending approval per integration at a time). ``replaces`` names the approval
    a re-plan found changed (its preview then says so).
    """
    policy = policy_of(ctx.integration)
    money = totals(((line.net, line.tax_rate) for line in planned.lines), ctx.company.currency)
    approval = await RunApproval.create(
        tenant_id=ctx.tenant.id, company_id=ctx.company.id, integration_id=ctx.integration.id, slot=slot,
        cutoff=ctx.cutoff, trigger=ctx.trigger, fingerprint=await fingerprint(planned),
        currency=ctx.company.currency, period_start=period_start(ctx.integration), orders=len(planned.order_ids),
        lines=len(planned.lines), net_total=money.net, tax_total=money.tax, gross_total=money.gross,
        skipped=[{"ref": s.ref, "reason": s.reason} for s in planned.skipped[:SKIPPED_KEEP]],
        skipped_by_reason=planned.skipped_by_reason(), on_timeout=policy.on_timeout, created_at=now,
        remind_at=policy.remind_at(now), expires_at=policy.expires_at(now),
    )
    await supersede_pending(ctx.integration.id, now=now, actor=ctx.actor, by=approval.id)
    await notices.queue_approval_requested(ctx.company, approval, now=now,
                                           replaces=replaces.id if replaces is not None else None)
    return approval


async def supersede_pending(integration_id: int | list[int], *, now: datetime, actor: str, by: int | None = None,
                            keep: int | None = None) -> int:
    """Mark the integration's pending approvals (except ``keep`` and ``by``) superseded; how many were.

    A list of integration ids does the same for each of them in one statement (batched runs)."""
    ids = integration_id if isinstance(integration_id, list) else [integration_id]
    query = RunApproval.filter(integration_id__in=ids, state=ApprovalState.PENDING)
    excluded = [i for i in (keep, by) if i is not None]
    if excluded:
        query = query.exclude(id__in=excluded)
    return await query.update(state=ApprovalState.SUPERSEDED, decided_at=now, decided_by=actor[:100],
                              superseded_by=by)
