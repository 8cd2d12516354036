"""``run <co> [dry-run]`` and ``schedule``: trigger invoicing, see what is coming."""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.notifications import run_reply
from commands.paging import Listing, Scope, beyond_end, footer, page_of, page_rows
from commands.replies import Reply, header, message, section
from invoicing.delivery.notices import run_notice_key
from invoicing.errors import InvalidInput
from invoicing.integrations.pdf_emailer.run import run_company
from invoicing.parties.companies import find_company
from invoicing.sql import Statement, instant
from models import IntegrationKind, RunTrigger

#: The words that make ``run <co>`` a preview (also how ``dispatch.mutates`` tells it from a run).
DRY_RUN_FLAGS = frozenset({"dry-run", "dryrun", "--dry-run"})

async def run(args: Args, ctx: CommandContext) -> Reply:
    c = await find_company(ctx.tenant, args.word(0, "company"))
    flags = [w.lower() for w in args.words[1:]]
    args.only_options(())
    if any(flag not in DRY_RUN_FLAGS for flag in flags):
        raise InvalidInput("run", f"unexpected {' '.join(args.words[1:])!r}; use `run {c.short_name}` or "
                                  f"`run {c.short_name} dry-run`")
    dry = bool(flags)
    if not dry:
        await ctx.require_admin("run invoicing")
    report = await run_company(ctx.tenant, c, trigger=RunTrigger.MANUAL, actor=ctx.actor, dry_run=dry,
                                clock=ctx.clock, mail_domain=ctx.services.mail_domain)
    if not dry and report.invoice_id is not None:
        await ctx.services.after_run(report)
    reply = run_reply(report, timezone=c.timezone, actor=ctx.user_id)
    if not dry and report.invoice_id is not None and c.slack_channel:
        # The run queued this announcement as a durable notice in the company's channel;
        # typed there, the adapter posts that notice instead of a second copy of it.
        reply.extra.update(notice_key=run_notice_key(report.run_id), notice_channel=c.slack_channel)
    return reply


def _enabled_emailers(tenant_id: int, *, counting: bool = False) -> Scope:
    """The tenant's enabled PDF Emailers.

    The count (``counting``) looks each one's tenant up, so that it stops at its limit: as a join, PostgreSQL
    hashed every company of the tenant for it.
    """

    def scope(q: Statement, s: str, joins: str) -> str:
        def emailers() -> str:  # bound where it is placed: SQLite's ``?`` placeholders are positional
            return f"i{s}.kind = {q(IntegrationKind.PDF_EMAILER.value)} AND i{s}.enabled = {q(True)}"

        if counting:
            return (f"FROM integration i{s}{joins} WHERE {emailers()} "
                    f"AND (SELECT t{s}.tenant_id FROM company t{s} WHERE t{s}.id = i{s}.company_id) = {q(tenant_id)}")
        return (f"FROM integration i{s} JOIN company c{s} ON c{s}.id = i{s}.company_id{joins} "
                f"WHERE c{s}.tenant_id = {q(tenant_id)} AND {emailers()}")

    return scope


async def schedule(args: Args, ctx: CommandContext) -> Reply:
    args.no_extra_words(0)
    args.only_options(("page",))
    page = page_of(args)
    # Hand-written (paging.page_rows): typed often while a burst runs; a run not scheduled sorts where the
    # database puts NULL (PostgreSQL last, SQLite first), as the ORM's ORDER BY did.
    rows, total = await page_rows(Listing("i.next_run_at, c.timezone, c.short_name, i.schedule",
                                          _enabled_emailers(ctx.tenant.id), joins="", order="i.next_run_at, i.id",
                                          count=_enabled_emailers(ctx.tenant.id, counting=True)), page)
    if not total:
        return message("No emailer is enabled.", section(
            "No PDF Emailer is enabled. Enable one with `/invoicing emailer <co> enable`."))
    if not rows:
        return message("No runs on that page.", section(beyond_end(page, total, "runs", "schedule")))
    lines = [f"`{local(instant(next_run_at), zone)}` *{short_name}* ({when})"
             for next_run_at, zone, short_name, when in rows]
    return message(f"Upcoming invoice runs ({page.span(total)})",
                   header(f"Upcoming invoice runs · {page.span(total)}"), section("\n".join(lines)),
                   *footer(page, total, command="schedule"))
