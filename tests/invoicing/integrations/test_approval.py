"""Approval mode (issue 13, item 6): a scheduled run prepares, an admin's decision issues or skips.

Driven through the real scheduler tick with an injected clock, on both backends.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from bot.scheduler import Scheduler
from invoicing.errors import InvalidInput
from invoicing.integrations.pdf_emailer import approvals
from invoicing.integrations.pdf_emailer.run import run_company
from invoicing.integrations.pdf_emailer.settings import configure, settings
from models import (
    ApprovalState,
    AuditEntry,
    Delivery,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    NoticeKind,
    Order,
    RunApproval,
    RunOutcome,
    SlackNotice,
    Tenant,
)
from tests import factories as f
from tests.bot.test_scheduler import SLOT, at, due_company, setup_tenant
from tests.factories import T0

ADMIN = "slack:UADMIN"


async def approval_company(short: str = "acme", *, on_timeout: str = "skip", timeout: str = "24h"):
    t = await setup_tenant()
    c = await due_company(t, short)
    c.slack_channel = "CBILL"
    await c.save()
    await configure(c, now=SLOT - timedelta(days=1), actor=ADMIN, approval="on", approval_timeout=timeout,
                    on_timeout=on_timeout)
    await f.emailer(c, next_run_at=SLOT)  # configure moved nothing, but make the slot explicit
    return t, c


async def prepared(short: str = "acme", orders: int = 2, **policy):
    t, c = await approval_company(short, **policy)
    for _ in range(orders):
        await f.order(c, quantity=2)
    await Scheduler(clock=at(SLOT)).tick()
    (approval,) = await RunApproval.filter(company_id=c.id)
    return await Tenant.get(id=t.id), c, approval


async def test_a_scheduled_run_with_approval_on_prepares_and_takes_no_number(db):
    t, c, approval = await prepared()
    assert await Invoice.all().count() == 0
    assert (await Tenant.get(id=t.id)).last_invoice_number == 0
    assert await Order.filter(invoice_id=None).count() == 2
    assert approval.state == ApprovalState.PENDING and approval.cutoff == SLOT
    assert (approval.orders, approval.lines, approval.gross_total) == (2, 2, Decimal("24.0000"))
    assert approval.expires_at == SLOT + timedelta(hours=24) and approval.remind_at == SLOT + timedelta(hours=18)
    notice = await SlackNotice.get(dedupe_key=f"approval:{approval.id}")
    assert notice.kind == NoticeKind.APPROVAL_REQUESTED and notice.payload["gross"] == "24.0000"
    assert await InvoiceRun.all().count() == 0  # nothing was run yet: the decision records the run


async def test_approve_issues_exactly_the_previewed_invoice_with_the_next_number(db):
    t, c, approval = await prepared()
    other = await f.company(t, "other")
    await f.order(other)
    await run_company(t, other)  # takes number 1 meanwhile
    late = await f.order(c, dispatched_at=SLOT + timedelta(minutes=5))  # after the cutoff: not in this invoice
    decision = await approvals.approve(t, approval.id, actor=ADMIN, now=SLOT + timedelta(hours=1))
    assert decision.acted and decision.state == ApprovalState.APPROVED and decision.invoice_number == "000002"
    invoice = await Invoice.get(display_number="000002")
    assert (invoice.gross_total, invoice.order_count, invoice.period_end) == (approval.gross_total, 2, SLOT)
    assert await InvoiceLine.filter(invoice_id=invoice.id).count() == approval.lines
    assert (await Order.get(id=late.id)).invoice_id is None
    assert await Delivery.filter(invoice_id=invoice.id).count() == 1
    assert await SlackNotice.filter(kind=NoticeKind.RUN_ISSUED, dedupe_key=f"run:{decision.report.run_id}").exists()
    row = await RunApproval.get(id=approval.id)
    assert (row.state, row.decided_by, row.invoice_id) == (ApprovalState.APPROVED, ADMIN, invoice.id)
    entry = await AuditEntry.get(action="approval.approve")
    assert entry.actor == ADMIN and entry.new["invoice"] == "000002" and entry.old["state"] == "pending"


@pytest.mark.parametrize("change", ["quantity", "late_order", "price"])
async def test_changed_orders_are_never_issued_and_get_a_fresh_preview(db, change):
    t, c, approval = await prepared()
    first = await Order.filter(company_id=c.id).order_by("id").first()
    if change == "quantity":
        await f.order(c, ref=first.external_ref, quantity=5)
    elif change == "late_order":  # reached us late, dispatched before the cutoff
        await f.order(c, dispatched_at=SLOT - timedelta(minutes=1))
    else:
        await f.price(t, "MUG", "6.00")
    decision = await approvals.approve(t, approval.id, actor=ADMIN, now=SLOT + timedelta(hours=1))
    assert decision.state == ApprovalState.SUPERSEDED and decision.invoice_number is None
    assert await Invoice.all().count() == 0 and (await Tenant.get(id=t.id)).last_invoice_number == 0
    fresh = await RunApproval.get(id=decision.fresh_id)
    assert fresh.state == ApprovalState.PENDING and fresh.cutoff == approval.cutoff
    assert fresh.fingerprint != approval.fingerprint
    assert (await RunApproval.get(id=approval.id)).superseded_by == fresh.id
    notice = await SlackNotice.get(dedupe_key=f"approval:{fresh.id}")
    assert notice.payload["replaces"] == approval.id
    again = await approvals.approve(t, fresh.id, actor=ADMIN, now=SLOT + timedelta(hours=2))
    assert again.state == ApprovalState.APPROVED and again.invoice_number == "000001"


async def test_skip_records_a_skipped_run_and_the_orders_wait_for_the_next_run(db):
    t, c, approval = await prepared()
    decision = await approvals.skip(t, approval.id, actor=ADMIN, now=SLOT + timedelta(hours=1))
    assert decision.state == ApprovalState.SKIPPED
    run = await InvoiceRun.get(outcome=RunOutcome.SKIPPED)
    assert run.cutoff == SLOT and "stay for the next run" in run.message
    assert await Order.filter(invoice_id=None).count() == 2 and await Invoice.all().count() == 0
    assert await AuditEntry.filter(action="approval.skip", actor=ADMIN).exists()
    report = await run_company(t, c)  # the next (manual) run invoices them
    assert report.orders_invoiced == 2 and report.invoice_number == "000001"


async def test_a_decided_approval_is_not_decided_again(db):
    t, c, approval = await prepared()
    await approvals.skip(t, approval.id, actor=ADMIN, now=SLOT + timedelta(hours=1))
    second = await approvals.approve(t, approval.id, actor="slack:UOTHER", now=SLOT + timedelta(hours=2))
    assert not second.acted and second.state == ApprovalState.SKIPPED and second.decided_by == ADMIN
    assert await Invoice.all().count() == 0


async def test_two_admins_approving_at_the_same_instant_issue_one_invoice(db):
    t, c, approval = await prepared(orders=5)
    now = SLOT + timedelta(hours=1)
    decisions = await asyncio.gather(*(approvals.approve(t, approval.id, actor=f"slack:UADMIN{i}", now=now)
                                       for i in range(4)))
    assert sum(d.acted for d in decisions) == 1
    assert {d.invoice_number for d in decisions} == {"000001"}
    assert await Invoice.all().count() == 1 and (await Tenant.get(id=t.id)).last_invoice_number == 1
    assert await Order.filter(invoice_id=None).count() == 0


async def test_another_tenants_approval_is_not_found(db):
    t, c, approval = await prepared()
    stranger = await f.tenant("stranger")
    with pytest.raises(Exception, match="No approval"):
        await approvals.approve(stranger, approval.id, actor=ADMIN, now=SLOT)
    assert (await RunApproval.get(id=approval.id)).state == ApprovalState.PENDING


async def test_the_next_slot_supersedes_a_pending_approval_with_one_covering_both(db):
    t, c, approval = await prepared()
    await f.order(c, dispatched_at=SLOT + timedelta(days=2))
    row = await f.emailer_row(c)
    await Scheduler(clock=at(row.next_run_at)).tick()
    fresh = await RunApproval.get(state=ApprovalState.PENDING)
    assert fresh.orders == 3 and fresh.id != approval.id
    old = await RunApproval.get(id=approval.id)
    assert old.state == ApprovalState.SUPERSEDED and old.superseded_by == fresh.id


async def test_a_manual_run_issues_at_once_and_supersedes_the_pending_approval(db):
    t, c, approval = await prepared()
    report = await run_company(t, c, actor=ADMIN, cutoff=SLOT + timedelta(hours=1), clock=at(SLOT + timedelta(hours=1)))
    assert report.outcome == RunOutcome.INVOICED and report.orders_invoiced == 2
    assert (await RunApproval.get(id=approval.id)).state == ApprovalState.SUPERSEDED
    late = await approvals.approve(t, approval.id, actor=ADMIN, now=SLOT + timedelta(hours=2))
    assert not late.acted and await Invoice.all().count() == 1


async def test_one_reminder_then_on_timeout_skip(db):
    t, c, approval = await prepared()
    await Scheduler(clock=at(SLOT + timedelta(hours=17))).tick()
    assert not await SlackNotice.filter(kind=NoticeKind.APPROVAL_REMINDER).exists()
    for hours in (18, 19):
        await Scheduler(clock=at(SLOT + timedelta(hours=hours))).tick()
    assert await SlackNotice.filter(kind=NoticeKind.APPROVAL_REMINDER).count() == 1
    assert (await RunApproval.get(id=approval.id)).reminded_at == SLOT + timedelta(hours=18)
    await Scheduler(clock=at(SLOT + timedelta(hours=24))).tick()
    row = await RunApproval.get(id=approval.id)
    assert row.state == ApprovalState.EXPIRED and row.decided_by == approvals.TIMEOUT_ACTOR
    assert await InvoiceRun.filter(outcome=RunOutcome.SKIPPED).count() == 1 and await Invoice.all().count() == 0
    notice = await SlackNotice.get(kind=NoticeKind.APPROVAL_TIMED_OUT)
    assert notice.payload["outcome"] == "skipped"
    assert await AuditEntry.filter(action="approval.timeout", actor=approvals.TIMEOUT_ACTOR).exists()


async def test_on_timeout_issue_issues_the_unchanged_preview(db):
    t, c, approval = await prepared(on_timeout="issue", timeout="30m")
    kicks = []

    async def kicked() -> None:
        kicks.append(1)

    await Scheduler(clock=at(SLOT + timedelta(minutes=30)), after_commit=kicked).tick()
    row = await RunApproval.get(id=approval.id)
    assert row.state == ApprovalState.APPROVED and row.decided_by == approvals.TIMEOUT_ACTOR
    invoice = await Invoice.get(id=row.invoice_id)
    assert invoice.display_number == "000001" and invoice.gross_total == approval.gross_total
    notice = await SlackNotice.get(kind=NoticeKind.APPROVAL_TIMED_OUT)
    assert (notice.payload["outcome"], notice.payload["invoice_number"]) == ("issued", "000001")
    assert kicks  # the e-mail and the notices go out now


async def test_on_timeout_issue_with_changed_orders_posts_a_fresh_preview_instead(db):
    t, c, approval = await prepared(on_timeout="issue", timeout="30m")
    await f.order(c, dispatched_at=SLOT - timedelta(minutes=1))
    await Scheduler(clock=at(SLOT + timedelta(minutes=31))).tick()
    assert await Invoice.all().count() == 0
    assert (await RunApproval.get(id=approval.id)).state == ApprovalState.SUPERSEDED
    fresh = await RunApproval.get(state=ApprovalState.PENDING)
    assert fresh.orders == 3 and fresh.expires_at == SLOT + timedelta(minutes=61)
    assert (await SlackNotice.get(kind=NoticeKind.APPROVAL_TIMED_OUT)).payload["outcome"] == "superseded"


async def test_two_replicas_sweeping_at_once_act_once(db):
    t, c, approval = await prepared(on_timeout="issue", timeout="30m")
    now = SLOT + timedelta(minutes=30)
    results = await asyncio.gather(*(approvals.sweep(now=now, clock=at(now)) for _ in range(3)))
    assert sum(d.acted for r in results for d in r.decided) == 1
    assert await Invoice.all().count() == 1


async def test_approval_settings_are_parsed_shown_and_audited(db):
    t = await setup_tenant()
    c = await f.company(t)
    view = await configure(c, now=T0, actor=ADMIN, approval="on", approval_timeout="2d", on_timeout="issue")
    assert (view.approval.enabled, view.approval.timeout, view.approval.on_timeout.value) == (
        True, timedelta(days=2), "issue")
    entry = await AuditEntry.get(action="emailer.set")
    assert entry.new == {"approval": "on", "approval_timeout": "2d", "on_timeout": "issue"}
    for bad in ({"approval_timeout": "3m"}, {"approval_timeout": "15d"}, {"approval_timeout": "soon"},
                {"on_timeout": "shrug"}, {"approval": "maybe"}):
        with pytest.raises(InvalidInput):
            await configure(c, now=T0, actor=ADMIN, schedule="daily", **bad)
    assert (await settings(c)).schedule == "weekly" and await AuditEntry.filter(action="emailer.set").count() == 1
