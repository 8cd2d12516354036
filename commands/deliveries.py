"""``deliveries [<co>] [failed]``: what has not left yet or failed — e-mails and Slack notices, with the reason.

Read-only and tenant-scoped. Only rows still ``pending``/``sending`` or ``failed`` are
listed, newest first, ``PAGE_SIZE`` of each kind per page (``page=N``: the same page of
both lists, each saying "1–20 of 35"); a sent row needs no attention. ``failed`` lists only
the rows that failed for good (an SMTP 5xx, a channel the bot cannot post in): what needs a
person (a failed e-mail's notice has Retry / Edit address buttons). Server replies, addresses
and channel names are untrusted text and are escaped for mrkdwn.
"""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.paging import footer, page_of
from commands.replies import Reply, context, header, message, section, shorten
from invoicing.parties.companies import find_company
from models import Company, Delivery, DeliveryStatus, NoticeStatus, SlackNotice

PAGE_SIZE = 20
#: ``deliveries [<co>] failed``: only rows that failed for good
#: (a company named "failed": ``deliveries failed failed``).
FAILED_WORD = "failed"
_OPEN_DELIVERY = [DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED]
_OPEN_NOTICE = [NoticeStatus.PENDING, NoticeStatus.SENDING, NoticeStatus.FAILED]
_ICON = {"pending": ":hourglass:", "sending": ":outbox_tray:", "failed": ":x:"}
#: A server reply is shown up to this long in the list (the rest is counted, not hidden).
REASON_CHARS = 300


def _reason(text: str) -> str:
    cleaned = " ".join(text.split())
    return f" — `{shorten(cleaned, REASON_CHARS).replace('`', chr(39))}`" if cleaned else ""


async def deliveries(args: Args, ctx: CommandContext) -> Reply:
    failed = bool(args.words) and args.words[-1].lower() == FAILED_WORD
    words = args.words[:-1] if failed else args.words
    args.no_extra_words(2 if failed else 1)
    args.only_options(("page",))
    page = page_of(args, PAGE_SIZE)
    only = await find_company(ctx.tenant, words[0]) if words else None
    mails = Delivery.filter(invoice__tenant_id=ctx.tenant.id,
                            status__in=[DeliveryStatus.FAILED] if failed else _OPEN_DELIVERY)
    notes = SlackNotice.filter(tenant_id=ctx.tenant.id, status__in=[NoticeStatus.FAILED] if failed else _OPEN_NOTICE)
    if only is not None:
        mails = mails.filter(invoice__company_id=only.id)
        notes = notes.filter(company_id=only.id)
    mail_total, note_total = await mails.count(), await notes.count()
    scope = f" for {only.short_name}" if only else ""
    what = "failed" if failed else "waiting or failed"
    if not mail_total and not note_total and failed:
        return message(f"Nothing failed{scope}.", section(
            f":white_check_mark: No e-mail or Slack notice{scope} has failed for good."))
    if not mail_total and not note_total:
        return message(f"Nothing waiting or failed{scope}.", section(
            f":white_check_mark: Every e-mail and Slack notice{scope} has been delivered."))
    mail_rows = await mails.order_by("-id").offset(page.offset).limit(page.size).prefetch_related("invoice",
                                                                                                 "credit_note")
    note_rows = await notes.order_by("-id").offset(page.offset).limit(page.size)
    ids = {d.invoice.company_id for d in mail_rows} | {n.company_id for n in note_rows if n.company_id}
    names = dict(await Company.filter(id__in=ids).values_list("id", "short_name"))
    zone = only.timezone if only else "UTC"
    mail_lines = [
        f"{_ICON[d.status]} *{(d.credit_note or d.invoice).display_number}* ({names.get(d.invoice.company_id, '?')}) → "
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
    if mail_total:
        blocks.append(section(f"*E-mails* ({page.span(mail_total)})\n" + "\n".join(mail_lines)))
    if note_total:
        blocks.append(section(f"*Slack notices* ({page.span(note_total)})\n" + "\n".join(note_lines)))
    blocks.append(context(f"Newest first; times {zone}. A failed e-mail: fix the address, then "
                          "`/invoicing invoice <number> resend`. A failed notice: invite the bot to the channel "
                          "or fix it with `/invoicing emailer <co> set channel=`."))
    blocks += footer(page, max(mail_total, note_total), command="deliveries",
                     words=[*([only.short_name] if only else []), *([FAILED_WORD] if failed else [])])
    return message(f"{mail_total} e-mail(s), {note_total} Slack notice(s) {what}{scope}", *blocks)
