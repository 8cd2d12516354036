"""Run notifications: what the company's channel sees after every run or delivery failure.

An issued invoice's notice carries PDF / Orders / Resend buttons (handled in
``commands.invoice_buttons``), a failed e-mail's notice Retry / Edit address
(``commands.delivery_buttons``). Button values are an invoice number or a delivery id,
looked up again in the clicking workspace's tenant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from commands.approvals import KINDS as APPROVAL_KINDS
from commands.approvals import approval_message
from commands.clicks import action_id
from commands.formatting import local, money
from commands.replies import (
    Block,
    Mrkdwn,
    Reply,
    actions,
    button,
    context,
    escape,
    fields_section,
    header,
    md,
    mention,
    message,
    section,
    shorten,
)
from commands.xero import broken_reply, budget_reply
from commands.xero_company import mismatch_reply, push_failed_reply, waiting_reply
from commands.xml_notices import KINDS as XML_KINDS
from commands.xml_notices import xml_notice_reply
from invoicing.billing.runs import RunReport
from invoicing.delivery.notices import report_from_payload
from models import NoticeKind, RunOutcome

PDF, ORDERS, RESEND = "invoice_pdf", "invoice_orders", "invoice_resend"
#: The "Credit note…" button; its click opens the form of ``commands.credit_form`` (``commands.click_handlers``).
CREDIT_OPEN = "credit_open"
RETRY, EDIT_ADDRESS = "delivery_retry", "delivery_address"


def invoice_actions(number: str) -> Block:
    """The buttons of an issued invoice's notice; "Credit note…" opens the form of ``commands.credit_form``."""
    return actions(
        button("PDF", action_id(PDF), number),
        button("Orders", action_id(ORDERS), number),
        button("Resend", action_id(RESEND), number, confirm=(
            "Resend this invoice?", f"Invoice {number} will be e-mailed again to the buyer's address on the "
                                    "invoice (a new message; same PDF).", "Resend")),
        button("Credit note…", action_id(CREDIT_OPEN), number),
        block_id=f"invoice:{number}",
    )


def delivery_actions(delivery_id: int) -> Block:
    """Retry / Edit address on the notice of the failed delivery ``delivery_id``."""
    value = str(delivery_id)
    return actions(
        button("Retry", action_id(RETRY), value, style="primary", confirm=(
            "Retry this e-mail?", "The invoice will be e-mailed again to the same address.", "Retry")),
        button("Edit address", action_id(EDIT_ADDRESS), value),
        block_id=f"delivery:{value}",
    )


#: A notice is posted as one message (the notice outbox), so its long parts are cut here, saying so.
SKIPPED_CHARS = 2500
REASON_CHARS = 300
PROBLEM_CHARS = 1500


def _budgeted(items: list[str], budget: int) -> tuple[list[str], int]:
    """The first items whose escaped length fits ``budget``, and how many did not."""
    kept: list[str] = []
    used = 0
    for item in items:
        used += len(escape(item)) + 2
        if used > budget:
            break
        kept.append(item)
    return kept, len(items) - len(kept)


def skipped_text(report: RunReport, limit: int = 10) -> str:
    """The skipped orders of a run (reasons, most frequent first, then refs), within one section;
    whatever does not fit is counted with where to see it (``orders <co> …``)."""
    if not report.skipped_by_reason:
        return ""
    reasons = sorted(report.skipped_by_reason.items(), key=lambda kv: -kv[1])
    lines, cut = _budgeted([f"• {count} × {shorten(reason, REASON_CHARS)}" for reason, count in reasons[:limit]],
                           SKIPPED_CHARS // 2)
    hidden_reasons = cut + max(0, len(reasons) - limit)
    refs, _ = _budgeted([s.ref for s in report.skipped[:15]], SKIPPED_CHARS // 2)
    text = f"*Skipped {report.skipped_count} order(s):*\n" + "\n".join(lines)
    if hidden_reasons:
        text += f"\n• … {hidden_reasons} more reason(s)"
    text += f"\n_{', '.join(refs)}_"
    if report.skipped_count > len(refs):
        text += (f"\n… {report.skipped_count - len(refs)} more, see `/invoicing orders {report.company} uninvoiced`"
                 " (and `held`, `errors`)")
    return text


def run_reply(report: RunReport, *, timezone: str = "UTC", actor: str = "") -> Reply:
    """The message for a finished (or previewed) run, in channel unless it is a dry run."""
    who = md(" · triggered by {}", mention(actor)) if actor else Mrkdwn("")
    period = f"{local(report.period_start, timezone, with_time=False) if report.period_start else 'start'} → " \
             f"{local(report.cutoff, timezone)}"
    if report.outcome == RunOutcome.NO_ORDERS and report.invoice_number is None:
        title = f"{'Dry run: ' if report.dry_run else ''}No invoice for {report.company}: no eligible orders"
        blocks = [section(f":zzz: *{title}*. No number was used."),
                  context(md("Cutoff {}{}", local(report.cutoff, timezone), who))]
    else:
        verb = "would issue" if report.dry_run else "issued"
        title = f"{'Dry run: ' if report.dry_run else ''}{report.company} — invoice {report.invoice_number} {verb}"
        blocks = [
            header(title),
            fields_section([
                ("Orders", str(report.orders_invoiced)), ("Period", period),
                ("Net", money(report.net, report.currency)), ("VAT", money(report.tax, report.currency)),
                ("Total", money(report.gross, report.currency)), ("Lines", str(report.lines)),
            ]),
        ]
        if report.dry_run:
            blocks.append(context("Dry run: nothing was written and no number was taken."))
        elif report.message and report.outcome == RunOutcome.INVOICED:  # e.g. why no e-invoice is attached
            blocks.append(context(report.message))
        blocks.append(context(md("Run #{}{}", report.run_id, who) if report.run_id else md("Preview{}", who)))
    skipped = skipped_text(report)
    if skipped:
        blocks.insert(-1, section(skipped))
    if not report.dry_run and report.invoice_number is not None and report.outcome != RunOutcome.NO_ORDERS:
        blocks.append(invoice_actions(report.invoice_number))
    return message(title, *blocks, ephemeral=report.dry_run)


def refused_reply(company: str, reason: str) -> Reply:
    reason = shorten(reason, PROBLEM_CHARS)
    return message(f"Invoice run for {company} refused: {reason}",
                   section(f":no_entry: *Invoice run for {company} refused.*\n{reason}"), ephemeral=False)


def failed_reply(company: str, reason: str) -> Reply:
    reason = shorten(reason, PROBLEM_CHARS)
    return message(f"Invoice run for {company} failed: {reason}",
                   section(f":x: *Invoice run for {company} failed.* Nothing was issued.\n{reason}"),
                   ephemeral=False)


def delivery_failed_reply(invoice_number: str, to: str, error: str, company: str,
                          delivery_id: int | None = None) -> Reply:
    """``delivery_id`` adds the Retry / Edit address buttons (notices queued before they existed have none)."""
    buttons = [delivery_actions(delivery_id)] if delivery_id is not None else []
    error = shorten(" ".join(error.split()), PROBLEM_CHARS).replace("`", "'")  # one code span
    return message(
        f"Invoice {invoice_number} could not be e-mailed to {to}: {error}",
        section(f":warning: *Invoice {invoice_number}* ({company}) could not be e-mailed to {to}.\n"
                f"Server said: `{error}`"),
        context(f"Fix the address with `/invoicing accounting {company} set email=…`, then "
                f"`/invoicing invoice {invoice_number} resend`."),
        *buttons,
        ephemeral=False,
    )


def credit_reply(payload: dict[str, Any]) -> Reply:
    """The channel message of an issued credit note (``invoicing.billing.credit_notes.credit_payload``)."""
    cur = str(payload["currency"])
    number, invoice, company = str(payload["credit_note"]), str(payload["invoice_number"]), str(payload["company"])
    title = f"{company} — credit note {number} issued for invoice {invoice}"
    actor = str(payload.get("actor") or "")
    who = md(" · by {}", mention(actor.removeprefix("slack:"))) if actor.startswith("slack:") else Mrkdwn("")
    again = "yes: the next run invoices the credited orders again" if payload.get("reinvoice") else "no"
    return message(
        title, header(title),
        fields_section([
            ("Credited", money(Decimal(payload["gross"]), cur)), ("VAT", money(Decimal(payload["tax"]), cur)),
            ("Remains on invoice", money(Decimal(payload["remaining_gross"]), cur)),
            ("Lines", str(payload.get("lines", 0))), ("Reason", str(payload.get("reason", ""))),
            ("Re-invoice", again),
        ]),
        context(md("E-mailed to the buyer with the PDF{}", who)),
        ephemeral=False,
    )


def notice_reply(kind: NoticeKind, payload: dict[str, Any]) -> Reply:
    """The channel message of a queued Slack notice (``invoicing.delivery.notices`` payloads)."""
    if kind in APPROVAL_KINDS:
        return approval_message(kind, payload)
    if kind in XML_KINDS:
        return xml_notice_reply(kind, payload)
    if kind == NoticeKind.CREDIT_ISSUED:
        return credit_reply(payload)
    if kind == NoticeKind.XERO_BROKEN:
        return broken_reply(payload)
    if kind == NoticeKind.XERO_BUDGET:
        return budget_reply(payload)
    if kind == NoticeKind.XERO_PUSH_FAILED:
        return push_failed_reply(payload)
    if kind == NoticeKind.XERO_MISMATCH:
        return mismatch_reply(payload)
    if kind == NoticeKind.XERO_WAITING:
        return waiting_reply(payload)
    if kind == NoticeKind.RUN_ISSUED:
        actor = str(payload.get("actor") or "")
        user = actor.removeprefix("slack:") if actor.startswith("slack:") else ""
        return run_reply(report_from_payload(payload), timezone=str(payload.get("timezone") or "UTC"), actor=user)
    company = str(payload.get("company", ""))
    if kind == NoticeKind.DELIVERY_FAILED:
        delivery = payload.get("delivery_id")
        return delivery_failed_reply(str(payload["invoice_number"]), str(payload["to"]), str(payload["error"]), company,
                                     delivery_id=int(delivery) if isinstance(delivery, int) else None)
    reason = str(payload.get("reason", ""))
    return (failed_reply if kind == NoticeKind.RUN_FAILED else refused_reply)(company, reason)
