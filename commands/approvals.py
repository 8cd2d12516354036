"""Approval mode in Slack: the preview with Approve / Skip, its reminder and timeout messages, the clicks.

The messages are rendered from the facts a notice was queued with
(``invoicing.delivery.notices.approval_payload``); a click carries only the approval id
and is re-checked against the database (tenant, admin, state) before anything happens.
For the App Home: ``pending_approvals`` and ``approval_buttons``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from commands.clicks import Click, ClickResult, action_id, with_status
from commands.formatting import local, money
from commands.replies import (
    Block,
    Reply,
    actions,
    button,
    context,
    fields_section,
    header,
    md,
    mention,
    message,
    section,
)
from invoicing.errors import InvalidInput
from invoicing.integrations.pdf_emailer import approvals
from invoicing.integrations.pdf_emailer.approvals import Decision, PendingApproval
from models import ApprovalState, NoticeKind

APPROVE = "approval_approve"
SKIP = "approval_skip"
KINDS = (NoticeKind.APPROVAL_REQUESTED, NoticeKind.APPROVAL_REMINDER, NoticeKind.APPROVAL_TIMED_OUT)
_POLICY = {"issue": "issued", "skip": "skipped"}


async def pending_approvals(tenant_id: int) -> list[PendingApproval]:
    """The tenant's pending approvals, soonest to expire first (for the App Home)."""
    return await approvals.pending(tenant_id)


def pending_line(approval: PendingApproval) -> str:
    """One pending approval in a line (the App Home): total, orders and when the timeout decides."""
    then = _POLICY.get(approval.on_timeout.value, "skipped")
    return (f":hourglass_flowing_sand: *Waiting for approval:* {money(approval.gross, approval.currency)} · "
            f"{approval.orders} order(s) · {then} at {local(approval.expires_at, approval.timezone)} "
            "if nobody decides")


def approval_buttons(approval_id: int, company: str = "") -> Block:
    """The Approve (primary, with a confirm dialog) / Skip buttons of one approval."""
    of = f" for {company}" if company else ""
    return actions(
        button("Approve", action_id(APPROVE), str(approval_id), style="primary",
               confirm=("Issue the invoice?", f"Issue the previewed invoice{of} with the next number and e-mail it?",
                        "Approve")),
        button("Skip", action_id(SKIP), str(approval_id)),
        block_id=f"approval:{approval_id}",
    )


def _when(payload: dict[str, Any], key: str, *, with_time: bool = True) -> str:
    value = payload.get(key)
    return local(datetime.fromisoformat(value), str(payload.get("timezone") or "UTC"), with_time=with_time) \
        if value else "start"


def _facts(payload: dict[str, Any]) -> list[Block]:
    currency = str(payload["currency"])
    period = f"{_when(payload, 'period_start', with_time=False)} → {_when(payload, 'cutoff')}"
    blocks = [fields_section([
        ("Orders", str(payload.get("orders", 0))), ("Period", period),
        ("Net", money(Decimal(payload["net"]), currency)), ("VAT", money(Decimal(payload["tax"]), currency)),
        ("Total", money(Decimal(payload["gross"]), currency)), ("Lines", str(payload.get("lines", 0))),
    ])]
    reasons = payload.get("skipped_by_reason") or {}
    if reasons:
        count = sum(int(v) for v in reasons.values())
        refs = ", ".join(str(s.get("ref", "")) for s in (payload.get("skipped") or [])[:15])
        text = f"*Skipped {count} order(s) (they stay uninvoiced):*\n" + "\n".join(
            f"• {n} × {reason}" for reason, n in list(reasons.items())[:10]) + (f"\n_{refs}{'…' if count > 15 else ''}_"
                                                                               if refs else "")
        blocks.append(section(text))
    return blocks


def approval_message(kind: NoticeKind, payload: dict[str, Any]) -> Reply:
    """The channel message of an approval notice (preview, reminder or what the timeout did)."""
    company, approval_id = str(payload.get("company", "")), int(payload["approval_id"])
    total = money(Decimal(payload["gross"]), str(payload["currency"]))
    then = _POLICY.get(str(payload.get("on_timeout")), "skipped")
    expires = _when(payload, "expires_at")
    if kind == NoticeKind.APPROVAL_TIMED_OUT:
        return _timed_out(payload, company, total, expires)
    if kind == NoticeKind.APPROVAL_REMINDER:
        title = f"Reminder: the invoice for {company} ({total}) is waiting for approval"
        lead = [section(f":hourglass_flowing_sand: *{title}.* If nobody decides by {expires}, it will be {then}.")]
    else:
        title = f"Approve the invoice for {company}? {total}"
        lead = [header(title)]
        if payload.get("replaces"):
            lead.append(context(f"The orders changed since preview #{payload['replaces']}; this is the fresh "
                                "preview. Nothing was issued."))
    return message(title, *lead, *_facts(payload), context(
        f"Approval #{approval_id} · no invoice number is used until it is approved · if nobody decides by "
        f"{expires}, it will be {then} (on_timeout={payload.get('on_timeout')})."),
        approval_buttons(approval_id, company), ephemeral=False)


def _timed_out(payload: dict[str, Any], company: str, total: str, expires: str) -> Reply:
    outcome = str(payload.get("outcome", ""))
    done = {
        "issued": f"invoice {payload.get('invoice_number')} was issued (on_timeout=issue)",
        "skipped": f"the run was skipped (on_timeout=skip); its {payload.get('orders', 0)} order(s) stay for the "
                   "next run",
        "superseded": "the orders had changed, so nothing was issued; a fresh preview was posted",
        "refused": "it could not be issued (the accounting details are incomplete) and was skipped",
    }.get(outcome, outcome)
    text = f"No decision on the invoice for {company} ({total}) by {expires}: {done}."
    return message(text, section(f":alarm_clock: {text}"), context(f"Approval #{payload['approval_id']}"),
                   ephemeral=False)


def _approval_id(value: str) -> int:
    if not value.isdigit():
        raise InvalidInput("approval", f"{value!r} is not an approval id")
    return int(value)


def _status(decision: Decision, at: datetime, timezone: str) -> str:
    when = at.astimezone(ZoneInfo(timezone)).strftime("%H:%M %Z")  # the company's clock, like the other buttons
    who = mention(decision.decided_by.removeprefix("slack:")) if decision.decided_by.startswith("slack:") \
        else decision.decided_by or "someone"
    if decision.state == ApprovalState.APPROVED:
        return md("Approved by {} at {} — invoice {}", who, when, decision.invoice_number or "")
    if decision.state == ApprovalState.SKIPPED:
        return md("Skipped by {} at {} — the orders stay for the next run", who, when)
    if decision.state == ApprovalState.EXPIRED:
        return md("Timed out at {} — skipped", when)
    fresh = f" — see the fresh preview #{decision.fresh_id}" if decision.fresh_id else ""
    return md("Superseded at {}: the orders changed, nothing was issued{}", when, fresh)


def _result(click: Click, decision: Decision) -> ClickResult:
    status = _status(decision, decision.decided_at or click.ctx.clock(), decision.timezone)
    update = with_status(click.message_blocks, status)
    if decision.acted and decision.state in {ApprovalState.APPROVED, ApprovalState.SKIPPED}:
        return ClickResult(update=update)
    note = decision.message if decision.acted else f"Nothing changed: {decision.message}"
    return ClickResult(update=update, reply=message(note, section(md(":information_source: {} {}", note, status))))


async def approve_click(click: Click) -> ClickResult:
    """Approve: admins only; issues the previewed invoice or, if the orders changed, posts a fresh preview."""
    await click.ctx.require_admin("approve invoices")
    ctx = click.ctx
    decision = await approvals.approve(ctx.tenant, _approval_id(click.value), actor=ctx.actor, now=ctx.clock(),
                                       clock=ctx.clock, mail_domain=ctx.services.mail_domain,
                                       channel_id=click.channel_id, message_ts=click.message_ts)
    if decision.report is not None:
        await ctx.services.after_run(decision.report)  # e-mail and run notice go out now
    return _result(click, decision)


async def skip_click(click: Click) -> ClickResult:
    """Skip: admins only; records a skipped run, the orders wait for the next run."""
    await click.ctx.require_admin("skip invoice runs")
    ctx = click.ctx
    decision = await approvals.skip(ctx.tenant, _approval_id(click.value), actor=ctx.actor, now=ctx.clock(),
                                    clock=ctx.clock, channel_id=click.channel_id, message_ts=click.message_ts)
    return _result(click, decision)
