"""``deliveries [<co>] [failed]``: what has not left yet or failed — e-mails and Slack notices, with the reason.

Read-only and tenant-scoped. Only rows still ``pending``/``sending`` or ``failed`` are
listed, newest first, ``PAGE_SIZE`` of each kind per page (``page=N``: the same page of
both lists, each saying "1–20 of 35"); a sent row needs no attention. ``failed`` lists only
the rows that failed for good (an SMTP 5xx, a channel the bot cannot post in): what needs a
person (a failed e-mail's notice has Retry / Edit address buttons). Server replies, addresses
and channel names are untrusted text and are escaped for mrkdwn.
"""

from __future__ import annotations

from collections.abc import Sequence

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.paging import Listing, Scope, footer, page_of, page_rows
from commands.replies import Reply, context, header, message, section, shorten
from invoicing.parties.companies import find_company
from invoicing.sql import Statement, instant, json_value
from models import DeliveryStatus, NoticeStatus

PAGE_SIZE = 20
#: ``deliveries [<co>] failed``: only rows that failed for good
#: (a company named "failed": ``deliveries failed failed``).
FAILED_WORD = "failed"
_OPEN_DELIVERY = [DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED]
_OPEN_NOTICE = [NoticeStatus.PENDING, NoticeStatus.SENDING, NoticeStatus.FAILED]
_ICON = {"pending": ":hourglass:", "sending": ":outbox_tray:", "failed": ":x:"}
#: A server reply is shown up to this long in the list (the rest is counted, not hidden).
REASON_CHARS = 300

# Both lists are read by hand-written statements (``paging.page_rows``): the command is typed often during a
# burst, and the ORM's version built five queries and a model per row (each invoice with its party JSON).
# An e-mail shows its credit note's number when it carries one, else its invoice's.
_MAIL_COLUMNS = ("d.status, CASE WHEN d.credit_note_id IS NULL THEN i.display_number ELSE cn.display_number END, "
                 "co.short_name, d.to_addr, d.attempts, d.next_attempt_at, d.created_at, d.last_error")
_MAIL_JOINS = " LEFT JOIN credit_note cn ON cn.id = d.credit_note_id LEFT JOIN company co ON co.id = i.company_id"
_NOTICE_COLUMNS = ("n.status, n.kind, n.payload, co.short_name, n.channel, n.attempts, n.next_attempt_at, "
                   "n.created_at, n.last_error")
_NOTICE_JOINS = " LEFT JOIN company co ON co.id = n.company_id"


def mails(tenant_id: int, company_id: int | None, statuses: Sequence[str]) -> Listing:
    """The tenant's e-mails (of one company's invoices, if given) in ``statuses``, newest first.

    The page is the newest entries of index ``delivery_open`` (``(tenant_id, id)`` of the open rows, migration
    0021) joined to their invoices for the number and company, and its count reads open rows only, whatever the
    planner's statistics say (a burst's table has none). The count looks a row's company up only when one is
    asked for, so that it stops at its limit.
    """
    return Listing(_MAIL_COLUMNS, _mail_scope(tenant_id, company_id, statuses), joins=_MAIL_JOINS, order="d.id DESC",
                   count=_mail_scope(tenant_id, company_id, statuses, counting=True))


def _mail_scope(tenant_id: int, company_id: int | None, statuses: Sequence[str], *, counting: bool = False) -> Scope:
    def scope(q: Statement, s: str, joins: str) -> str:
        where = f"WHERE d{s}.tenant_id = {q(tenant_id)} AND d{s}.status {q.constants_in(statuses)}"
        if counting:
            company = (f" AND (SELECT t{s}.company_id FROM invoice t{s} WHERE t{s}.id = d{s}.invoice_id) "
                       f"= {q(company_id)}" if company_id is not None else "")
            return f"FROM delivery d{s}{joins} {where}{company}"
        company = f" AND i{s}.company_id = {q(company_id)}" if company_id is not None else ""
        return f"FROM delivery d{s} JOIN invoice i{s} ON i{s}.id = d{s}.invoice_id{joins} {where}{company}"

    return scope


def _notices(tenant_id: int, company_id: int | None, statuses: Sequence[str]) -> Scope:
    """The tenant's Slack notices (of one company, if given) in ``statuses``."""

    def scope(q: Statement, s: str, joins: str) -> str:
        sql = (f"FROM slack_notice n{s}{joins} "
               f"WHERE n{s}.tenant_id = {q(tenant_id)} AND n{s}.status {q.constants_in(statuses)}")
        return sql + (f" AND n{s}.company_id = {q(company_id)}" if company_id is not None else "")

    return scope


def _reason(text: str) -> str:
    cleaned = " ".join(text.split())
    return f" — `{shorten(cleaned, REASON_CHARS).replace('`', chr(39))}`" if cleaned else ""


def _company(name: str | None) -> str:
    return "?" if name is None else name


async def deliveries(args: Args, ctx: CommandContext) -> Reply:
    failed = bool(args.words) and args.words[-1].lower() == FAILED_WORD
    words = args.words[:-1] if failed else args.words
    args.no_extra_words(2 if failed else 1)
    args.only_options(("page",))
    page = page_of(args, PAGE_SIZE)
    only = await find_company(ctx.tenant, words[0]) if words else None
    only_id = only.id if only is not None else None
    mail_statuses = [DeliveryStatus.FAILED] if failed else _OPEN_DELIVERY
    mail_rows, mail_total = await page_rows(mails(ctx.tenant.id, only_id, mail_statuses), page)
    note_rows, note_total = await page_rows(Listing(
        _NOTICE_COLUMNS, _notices(ctx.tenant.id, only_id, [NoticeStatus.FAILED] if failed else _OPEN_NOTICE),
        joins=_NOTICE_JOINS, order="n.id DESC"), page)
    scope = f" for {only.short_name}" if only else ""
    what = "failed" if failed else "waiting or failed"
    if not mail_total and not note_total and failed:
        return message(f"Nothing failed{scope}.", section(
            f":white_check_mark: No e-mail or Slack notice{scope} has failed for good."))
    if not mail_total and not note_total:
        return message(f"Nothing waiting or failed{scope}.", section(
            f":white_check_mark: Every e-mail and Slack notice{scope} has been delivered."))
    zone = only.timezone if only else "UTC"
    mail_lines = [
        f"{_ICON[status]} *{number}* ({_company(company)}) → {to_addr} · {status} · {attempts} attempt(s) · "
        f"{local(instant(next_at) or instant(created), zone)}{_reason(error)}"
        for status, number, company, to_addr, attempts, next_at, created, error in mail_rows
    ]
    note_lines = []
    for status, kind, raw_payload, company, channel, attempts, next_at, created, error in note_rows:
        payload = json_value(raw_payload)
        number = f" *{payload.get('invoice_number')}*" if payload.get("invoice_number") else ""
        note_lines.append(f"{_ICON[status]} {kind.replace('_', ' ')}{number} ({_company(company)}) → {channel} · "
                          f"{status} · {attempts} attempt(s) · "
                          f"{local(instant(next_at) or instant(created), zone)}{_reason(error)}")
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
