"""Run notifications: what the company's channel sees after every run or delivery failure."""

from __future__ import annotations

from typing import Any

from commands.approvals import KINDS as APPROVAL_KINDS
from commands.approvals import approval_message
from commands.formatting import local, money
from commands.replies import Mrkdwn, Reply, context, fields_section, header, md, mention, message, section
from invoicing.billing.runs import RunReport
from invoicing.delivery.notices import report_from_payload
from models import NoticeKind, RunOutcome


def skipped_text(report: RunReport, limit: int = 10) -> str:
    if not report.skipped_by_reason:
        return ""
    reasons = sorted(report.skipped_by_reason.items(), key=lambda kv: -kv[1])
    lines = [f"• {count} × {reason}" for reason, count in reasons[:limit]]
    refs = ", ".join(s.ref for s in report.skipped[:15])
    more = "…" if report.skipped_count > 15 else ""
    return f"*Skipped {report.skipped_count} order(s):*\n" + "\n".join(lines) + f"\n_{refs}{more}_"


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
        blocks.append(context(md("Run #{}{}", report.run_id, who) if report.run_id else md("Preview{}", who)))
    skipped = skipped_text(report)
    if skipped:
        blocks.insert(-1, section(skipped))
    return message(title, *blocks, ephemeral=report.dry_run)


def refused_reply(company: str, reason: str) -> Reply:
    return message(f"Invoice run for {company} refused: {reason}",
                   section(f":no_entry: *Invoice run for {company} refused.*\n{reason}"), ephemeral=False)


def failed_reply(company: str, reason: str) -> Reply:
    return message(f"Invoice run for {company} failed: {reason}",
                   section(f":x: *Invoice run for {company} failed.* Nothing was issued.\n{reason}"),
                   ephemeral=False)


def delivery_failed_reply(invoice_number: str, to: str, error: str, company: str) -> Reply:
    return message(
        f"Invoice {invoice_number} could not be e-mailed to {to}: {error}",
        section(f":warning: *Invoice {invoice_number}* ({company}) could not be e-mailed to {to}.\n"
                f"Server said: `{error}`"),
        context(f"Fix the address with `/invoicing accounting {company} set email=…`, then "
                f"`/invoicing invoice {invoice_number} resend`."),
        ephemeral=False,
    )


def notice_reply(kind: NoticeKind, payload: dict[str, Any]) -> Reply:
    """The channel message of a queued Slack notice (``invoicing.delivery.notices`` payloads)."""
    if kind in APPROVAL_KINDS:
        return approval_message(kind, payload)
    if kind == NoticeKind.RUN_ISSUED:
        actor = str(payload.get("actor") or "")
        user = actor.removeprefix("slack:") if actor.startswith("slack:") else ""
        return run_reply(report_from_payload(payload), timezone=str(payload.get("timezone") or "UTC"), actor=user)
    company = str(payload.get("company", ""))
    if kind == NoticeKind.DELIVERY_FAILED:
        return delivery_failed_reply(str(payload["invoice_number"]), str(payload["to"]), str(payload["error"]), company)
    reason = str(payload.get("reason", ""))
    return (failed_reply if kind == NoticeKind.RUN_FAILED else refused_reply)(company, reason)
