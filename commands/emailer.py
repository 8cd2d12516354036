"""``emailer <co> [enable | disable | set …]``: the company's PDF Emailer integration."""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.replies import Reply, channel_mention, context, fields_section, header, md, mention, message
from invoicing.delivery.einvoice import choice as einvoice_choice
from invoicing.errors import InvalidInput
from invoicing.integrations.pdf_emailer import settings as emailer_config
from invoicing.integrations.pdf_emailer.approval_policy import format_duration
from invoicing.integrations.pdf_emailer.settings import EmailerSettings
from invoicing.parties.companies import find_company
from models import Company

SET_OPTIONS = ("include_errors", "starting_from", "bcc", "schedule", "next", "channel", "approval", "approval_timeout",
               "on_timeout", "einvoice")


def show(settings: EmailerSettings, company: Company, note: str = "") -> Reply:
    tz = settings.timezone
    state = ":large_green_circle: enabled" if settings.enabled else ":white_circle: disabled"
    blocks = [
        header(f"PDF Emailer: {settings.company}"),
        fields_section([
            ("State", state), ("Next invoice", local(settings.next_run_at, tz)),
            ("Schedule", f"{settings.schedule} ({tz})"), ("Starting from", local(settings.starting_from, tz)),
            ("Include orders with errors", "yes" if settings.include_errors else "no"),
            ("E-mail BCC", ", ".join(settings.bcc) or "none"),
            ("Invoices go to", company.email or ":warning: no accounting e-mail"),
            ("Channel", channel_mention(company.slack_channel) if company.slack_channel else "none"),
            ("Approval", _approval(settings)),
            ("E-invoice", einvoice_choice.describe(settings.einvoice, company.country)),
        ]),
        context("Orders on hold are never invoiced. Change with "
                f"`/invoicing emailer {settings.company} set schedule=… next=\"YYYY-MM-DD HH:MM\" bcc=…`."),
    ]
    if note:
        blocks.insert(0, context(note))
    return message(f"PDF Emailer of {settings.company}: {'enabled' if settings.enabled else 'disabled'}", *blocks)


def _approval(settings: EmailerSettings) -> str:
    policy = settings.approval
    if not policy.enabled:
        return "off (scheduled runs issue at once)"
    return f"on: wait {format_duration(policy.timeout)}, then {policy.on_timeout.value}"


async def emailer(args: Args, ctx: CommandContext) -> Reply:
    company = await find_company(ctx.tenant, args.word(0, "company"))
    action = args.words[1].lower() if len(args.words) > 1 else ""
    args.no_extra_words(2)
    now = ctx.clock()
    if action == "":
        args.only_options(())
        return show(await emailer_config.settings(company), company)
    if action not in {"enable", "disable", "set"}:
        raise InvalidInput("emailer", f"unknown action {action!r}; use enable, disable or set key=value …")
    if action == "set":
        if not args.options:
            raise InvalidInput("emailer set", f"give at least one of {', '.join(SET_OPTIONS)}")
        args.only_options(SET_OPTIONS)
    else:
        args.only_options(())
    await ctx.require_admin("change the PDF Emailer")
    if action == "enable":
        result = await emailer_config.enable(company, now=now, actor=ctx.actor)
        first = local(result.next_run_at, company.timezone)
        note = md("Enabled by {}. First invoice run: {}.", mention(ctx.user_id), first)
    elif action == "disable":
        result = await emailer_config.disable(company, now=now, actor=ctx.actor)
        note = md("Disabled by {}. No invoice runs until it is enabled again.", mention(ctx.user_id))
    else:
        options = dict(args.options)
        result = await emailer_config.configure(company, now=now, actor=ctx.actor, **options)
        note = md("Updated by {}.", mention(ctx.user_id))
    ctx.services.wake_scheduler()
    return show(result, company, note)
