"""``companies``, ``company add`` and ``accounting``: the dropship companies and their details."""

from __future__ import annotations

from typing import Any

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.paging import beyond_end, footer, page_of
from commands.replies import (
    Block,
    Reply,
    context,
    fields_section,
    header,
    md,
    mention,
    message,
    section,
)
from commands.seller import change_summary, missing_line, party_fields
from invoicing.billing.languages import invoice_language, parse_language, set_company_language
from invoicing.errors import InvalidInput
from invoicing.parties.accounting import missing_fields
from invoicing.parties.companies import create_company, find_company, set_accounting
from models import ACCOUNTING_KEYS, Company, Integration, IntegrationKind

COMPANY_ADD_OPTIONS = ("name", "country", "currency", "timezone", "channel", "language")
COMPANY_SET_OPTIONS = ("language",)
MODAL_CALLBACK = "accounting_edit"


async def companies(args: Args, ctx: CommandContext) -> Reply:
    args.no_extra_words(0)
    args.only_options(("page",))
    page = page_of(args)
    scope = Company.filter(tenant_id=ctx.tenant.id)
    total = await scope.count()
    if not total:
        return message("No companies yet.", section(
            "No companies yet. Add one with `/invoicing company add <co> name=\"…\" country=GB currency=GBP "
            "timezone=Europe/London`."))
    rows = await scope.order_by("short_name", "id").offset(page.offset).limit(page.size)
    if not rows:
        return message("No companies on that page.", section(beyond_end(page, total, "companies", "companies")))
    emailers = {e.company_id: e for e in await Integration.filter(company_id__in=[c.id for c in rows],
                                                                  kind=IntegrationKind.PDF_EMAILER)}
    lines = []
    for c in rows:
        e = emailers.get(c.id)
        state = f"emailer on, next {local(e.next_run_at, c.timezone)}" if e and e.enabled else "emailer off"
        missing = missing_fields(c.accounting_dict(), "buyer")
        warn = f" · :warning: missing {', '.join(missing)}" if missing else ""
        lines.append(f"*{c.short_name}* — {c.name} · {c.country} · {c.currency} · {state}{warn}")
    title = f"Companies of {ctx.tenant.name} · {page.span(total)}"
    return message(f"{total} companies ({page.span(total)})", header(title), section("\n".join(lines)),
                   *footer(page, total, command="companies"))


async def company(args: Args, ctx: CommandContext) -> Reply:
    action = args.word(0, "action").lower()
    if action == "set":
        return await company_set(args, ctx)
    if action != "add":
        raise InvalidInput("company", f"unknown action {action!r}; use `company add <co> name=… country=… …` or "
                                      "`company set <co> language=de`")
    short = args.word(1, "company short name")
    args.no_extra_words(2)
    args.only_options(COMPANY_ADD_OPTIONS)
    language = parse_language(args.options.get("language", ""))
    for required in ("name", "country", "currency"):
        if required not in args.options:
            raise InvalidInput(required, f"is required, e.g. company add {short} name=\"Acme Gifts Ltd\" country=GB "
                                         "currency=GBP timezone=Europe/London")
    await ctx.require_admin("add companies")
    created = await create_company(
        ctx.tenant, short, name=args.options["name"], country=args.options["country"],
        currency=args.options["currency"], timezone=args.options.get("timezone", "UTC"),
        channel=args.options.get("channel", ""), actor=ctx.actor,
    )
    if language:
        await set_company_language(created, language, actor=ctx.actor)
    return message(
        f"Company {created.short_name} added.",
        section(f":white_check_mark: Added *{created.short_name}* — {created.name} ({created.country}, "
                f"{created.currency}, {created.timezone})."),
        context(f"Next: `/invoicing accounting {created.short_name} edit` to enter its accounting details, then "
                f"`/invoicing emailer {created.short_name} enable`."),
    )


async def company_set(args: Args, ctx: CommandContext) -> Reply:
    """``company set <co> language=de|…|auto``: the company's invoice language (audited)."""
    c = await find_company(ctx.tenant, args.word(1, "company"))
    args.no_extra_words(2)
    if not args.options:
        raise InvalidInput("company set", f"give a key=value; keys: {', '.join(COMPANY_SET_OPTIONS)}")
    args.only_options(COMPANY_SET_OPTIONS)
    parse_language(args.options["language"])  # refused before the admin check answers
    await ctx.require_admin("change companies")
    changed = await set_company_language(c, args.options["language"], actor=ctx.actor)
    shown = _language_text(c)
    if changed is None:
        return message(f"{c.short_name}: invoice language unchanged ({shown})",
                       section(md("Invoices to {} are already in {}.", c.short_name, shown)))
    return message(f"{c.short_name}: invoice language {shown}",
                   section(md(":white_check_mark: Invoices to {} are now in {}. Issued invoices keep theirs.",
                              c.short_name, shown)),
                   context(md("Updated by {}: language {} → {}", mention(ctx.user_id), changed[0] or "auto",
                              changed[1] or "auto")))


def _language_text(c: Company) -> str:
    language = invoice_language(c.language, c.country)
    return language if c.language else f"{language} (default for {c.country or 'its country'})"


def show_accounting(c: Company) -> Reply:
    details = c.accounting_dict()
    return message(
        f"Accounting details of {c.short_name}",
        header(f"Accounting: {c.short_name}"),
        fields_section(party_fields(details) + [("Currency", c.currency), ("Time zone", c.timezone),
                                              ("Invoice language", _language_text(c))]),
        context(missing_line(missing_fields(details, "buyer"), f"/invoicing accounting {c.short_name} set key=value")),
    )


async def apply_accounting(c: Company, updates: dict[str, Any], ctx: CommandContext) -> Reply:
    """Validate and apply updates (audited, all-or-nothing; see ``set_accounting``) and reply with the result."""
    changes = await set_accounting(c, updates, actor=ctx.actor)
    summary = change_summary(changes)
    return message(f"Accounting details of {c.short_name} updated: {summary}", *show_accounting(c).blocks[1:],
                   context(md("Updated by {}: {}", mention(ctx.user_id), summary)))


async def accounting(args: Args, ctx: CommandContext) -> Reply:
    c = await find_company(ctx.tenant, args.word(0, "company"))
    action = args.words[1].lower() if len(args.words) > 1 else ""
    args.no_extra_words(2)
    if action == "":
        args.only_options(())
        return show_accounting(c)
    if action == "edit":
        args.only_options(())
        await ctx.require_admin("change accounting details")
        return Reply(text=md("Opening the accounting form for {}…", c.short_name), modal=accounting_modal(c))
    if action != "set":
        raise InvalidInput("accounting", f"unknown action {action!r}; use show (no action), edit or set key=value …")
    if not args.options:
        raise InvalidInput("accounting set", f"give at least one key=value; keys: {', '.join(ACCOUNTING_KEYS)}")
    args.only_options(ACCOUNTING_KEYS)
    await ctx.require_admin("change accounting details")
    return await apply_accounting(c, dict(args.options), ctx)


def _input(key: str, label: str, value: object, *, optional: bool = True) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": key}
    if value not in (None, ""):
        element["initial_value"] = str(value)
    return {"type": "input", "block_id": key, "optional": optional, "label": {"type": "plain_text", "text": label},
            "element": element}


def accounting_modal(c: Company) -> Block:
    """A ``views.open`` payload prefilled with the company's details (submitted back to us)."""
    details = c.accounting_dict()
    required = set(missing_fields({k: "" for k in details} | {"country": c.country}, "buyer"))
    blocks = [_input(key, key.replace("_", " ").capitalize(), details[key], optional=key not in required)
              for key in ACCOUNTING_KEYS]
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": c.short_name,
        "title": {"type": "plain_text", "text": "Accounting details"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def modal_values(state_values: dict[str, dict[str, dict[str, Any]]]) -> dict[str, str]:
    """Flatten ``view.state.values`` into ``{key: value}`` (empty inputs → "")."""
    values: dict[str, str] = {}
    for block_id, actions in state_values.items():
        for action in actions.values():
            values[block_id] = action.get("value") or ""
    return values


async def submit_accounting_modal(short_name: str, state_values: dict[str, Any], ctx: CommandContext) -> Reply:
    """Apply a submitted accounting form; ``InvalidInput`` names the field to flag in the modal."""
    await ctx.require_admin("change accounting details")
    c = await find_company(ctx.tenant, short_name)
    values = modal_values(state_values)
    current = c.accounting_dict()
    updates = {k: v for k, v in values.items() if k in ACCOUNTING_KEYS and str(current.get(k) or "") != v}
    return await apply_accounting(c, updates, ctx)
