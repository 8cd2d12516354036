"""``run <co> [dry-run]`` and ``schedule``: trigger invoicing, see what is coming."""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.notifications import run_reply
from commands.replies import Reply, header, message, section
from invoicing.delivery.notices import run_notice_key
from invoicing.errors import InvalidInput
from invoicing.integrations.pdf_emailer.run import run_company
from invoicing.parties.companies import find_company
from models import Company, Integration, IntegrationKind, RunTrigger

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


async def schedule(args: Args, ctx: CommandContext) -> Reply:
    args.no_extra_words(0)
    args.only_options(())
    rows = await Integration.filter(company__tenant_id=ctx.tenant.id, kind=IntegrationKind.PDF_EMAILER,
                                    enabled=True).order_by("next_run_at").limit(40)
    companies = {c.id: c for c in await Company.filter(id__in=[r.company_id for r in rows])}
    if not rows:
        return message("No emailer is enabled.", section(
            "No PDF Emailer is enabled. Enable one with `/invoicing emailer <co> enable`."))
    lines = [f"`{local(r.next_run_at, companies[r.company_id].timezone)}` *{companies[r.company_id].short_name}* "
             f"({r.schedule})" for r in rows]
    return message("Upcoming invoice runs", header("Upcoming invoice runs"), section("\n".join(lines)))
