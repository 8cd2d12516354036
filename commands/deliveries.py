"""``deliveries [<co>] [failed]``: what has not left yet or failed — e-mails and Slack notices, with the reason.

Read-only and tenant-scoped. Only rows still ``pending``/``sending`` or ``failed`` are
listed, newest first; a sent row needs no attention. ``failed`` lists only the rows
that failed for good (an SMTP 5xx, a channel the bot cannot post in), which is what
needs a person: retry them from their notice's buttons or with ``invoice <n> resend``. Server replies, addresses and
channel names are untrusted text and are escaped for mrkdwn.
"""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.replies import Reply, context, header, message, section
from invoicing.parties.companies import find_company
from models import Company, Delivery, DeliveryStatus, NoticeStatus, SlackNotice

SHOWN = 20
#: ``deliveries [<co>] failed``: only rows that failed for good (the ones that need a person).
FAILED_WORD = "failed"
_OPEN_DELIVERY = [DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED]
_OPEN_NOTICE = [NoticeStatus.PENDING, NoticeStatus.SENDING, NoticeStatus.FAILED]
_ICON = {"pending": ":hourglass:", "sending": ":outbox_tray:", "failed": ":x:"}


def _reason(text: str) -> str:
    cleaned = " ".join(text.split())[:300]
    return f" — `{cleaned.replace('`', chr(39))}`" if cleaned else ""


async def deliveries(args: Args, ctx: CommandContext) -> Reply:
    # ``failed`` as the last word is the filter (a company named "failed": ``deliveries failed failed``).
    failed = bool(args.words) and args.words[-1].lower() == FAILED_WORD
    words = args.words[:-1] if failed else args.words
    args.no_extra_words(2 if failed else 1)
    args.only_options(())
    only = await find_company(ctx.tenant, words[0]) if words else None
    mails = Delivery.filter(invoice__tenant_id=ctx.tenant.id,
                            status__in=[DeliveryStatus.FAILED] if failed else _OPEN_DELIVERY)
    notes = SlackNotice.filter(tenant_id=ctx.tenant.id, status__in=[NoticeStatus.FAILED] if failed else _OPEN_NOTICE)
    if only is not None:
        mails = mails.filter(invoice__company_id=only.id)
        notes = notes.filter(company_id=only.id)
    mail_rows = await mails.order_by("-id").limit(SHOWN).prefetch_related("invoice")
    note_rows = await notes.order_by("-id").limit(SHOWN)
    ids = {d.invoice.company_id for d in mail_rows} | {n.company_id for n in note_rows if n.company_id}
    names = dict(await Company.filter(id__in=ids).values_list("id", "short_name"))
    scope = f" for {only.short_name}" if only else ""
    what = "failed" if failed else "waiting or failed"
    if not mail_rows and not note_rows:
        if failed:
            return message(f"Nothing failed{scope}.", section(
                f":white_check_mark: No e-mail or Slack notice{scope} has failed for good."))
        return message(f"Nothing waiting or failed{scope}.", section(
            f":white_check_mark: Every e-mail and Slack notice{scope} has been delivered."))
    zone = only.timezone if only else "UTC"
    mail_lines = [
        f"{_ICON[d.status]} *{d.invoice.display_number}* ({names.get(d.invoice.company_id, '?')}) → "
        f"{d.to_addr} · {d.status} · {d.attempts} attempt(s) · "
        f"{local(d.next_attempt_at or d.created_at, zone)}{_reason(d.last_error)}"
        for d in mail_rows
    ]
    note_lines = [
        f"{_ICON[n.status]} {n.kind.replace('_', ' ')}"
        f"{' *' + str(n.payload.get('invoice_number')) + '*' if n.payload.get('invoice_number') else ''}"
        f" ({names.get(n.company_id or 0, '?')}) → {n.channel} · {n.status} · "
        f"{n.attempts} attempt(s) · {local(n.next_attempt_at or n.created_at, zone)}{_reason(n.last_error)}"
        for n in note_rows
    ]
    blocks = [header(f"Deliveries {what}{scope}")]
    if mail_lines:
        blocks += [section("*E-mails*\n" + "\n".join(mail_lines[:10])), *(
            [section("\n".join(mail_lines[10:]))] if len(mail_lines) > 10 else [])]
    if note_lines:
        blocks += [section("*Slack notices*\n" + "\n".join(note_lines[:10])), *(
            [section("\n".join(note_lines[10:]))] if len(note_lines) > 10 else [])]
    blocks.append(context(f"Newest {SHOWN} of each; times {zone}. A failed e-mail: fix the address, then "
                          "`/invoicing invoice <number> resend`. A failed notice: invite the bot to the channel "
                          "or fix it with `/invoicing emailer <co> set channel=`."))
    return message(f"{len(mail_rows)} e-mail(s), {len(note_rows)} Slack notice(s) {what}{scope}",
                   *blocks)
