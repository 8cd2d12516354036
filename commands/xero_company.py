"""``xero <co> [enable | disable | set … | retry]``: whether and how a company's documents go to Xero,
and the notices of its pushes.

Showing needs nobody in particular; ``enable``, ``disable``, ``set`` and ``retry`` need an admin. The
show lists the settings, the effective tax-type map and the company's pushes (done, waiting, refused,
the last refusal and any totals difference).
"""

from __future__ import annotations

from typing import Any

from commands.context import Args, CommandContext
from commands.replies import Reply, context, fields_section, header, md, mention, message, section
from invoicing.errors import InvalidInput
from invoicing.integrations.xero import company_settings
from invoicing.integrations.xero.company_settings import XeroCompanySettings
from models import Company, XeroPush, XeroPushStatus

SET_OPTIONS = ("status", "account_code", "tax_types", "purchase_orders", "po_account_code", "po_tax_types")
ACTIONS = ("enable", "disable", "set", "retry")
USAGE = ("xero <co> [enable | disable | retry | set status=AUTHORISED|DRAFT account_code= tax_types=S:OUTPUT2,… "
         "purchase_orders=on|off po_account_code= po_tax_types=…]")
_DOCUMENT = {"invoice": "invoice", "credit_note": "credit note", "purchase_order": "purchase order"}


def _map(mapping: dict[str, str]) -> str:
    return ", ".join(f"{k}→{v}" for k, v in sorted(mapping.items())) or "none"


async def show(s: XeroCompanySettings, company: Company, note: str = "") -> Reply:
    counts = {status: await XeroPush.filter(company_id=company.id, status=status).count() for status in XeroPushStatus}
    refused = await XeroPush.filter(company_id=company.id, status=XeroPushStatus.FAILED).order_by("-id").first()
    differs = await XeroPush.filter(company_id=company.id, status=XeroPushStatus.DONE).exclude(mismatch="") \
        .order_by("-id").first()
    fields = [
        ("State", ":large_green_circle: enabled" if s.enabled else ":white_circle: disabled"),
        ("Status in Xero", s.status), ("Sales account", s.account_code),
        ("Tax types", _map(s.tax_types)),
        ("Purchase orders", (f"on (account {s.po_account_code or 'none'}; {_map(s.po_tax_types)})"
                             if s.purchase_orders else "off")),
        ("Pushed", str(counts[XeroPushStatus.DONE])),
        ("Waiting", str(counts[XeroPushStatus.PENDING] + counts[XeroPushStatus.SENDING])),
        ("Refused by Xero", str(counts[XeroPushStatus.FAILED])),
    ]
    blocks = [header(f"Xero: {s.company}"), fields_section(fields)]
    if refused is not None:
        blocks.append(section(md(":x: Last refused: {} {}: {}", _DOCUMENT.get(str(refused.kind), "document"),
                                 refused.number, refused.last_error)))
    if differs is not None:
        blocks.append(section(md(":warning: Totals differ for {}: {}", differs.number, differs.mismatch)))
    blocks.append(context(md("Change with `/invoicing xero {} set …`; `retry` sends refused documents again.",
                             s.company)))
    if note:
        blocks.insert(0, context(note))
    return message(f"Xero for {s.company}: {'enabled' if s.enabled else 'disabled'}", *blocks)


async def company_command(args: Args, ctx: CommandContext, company: Company) -> Reply:
    action = args.words[1].lower() if len(args.words) > 1 else ""
    now = ctx.clock()
    if action == "":
        args.only_options(())
        return await show(await company_settings.settings(company), company)
    if action not in ACTIONS:
        raise InvalidInput("xero", f"unknown action {action!r}; use {', '.join(ACTIONS)}")
    args.no_extra_words(2)
    if action == "set":
        if not args.options:
            raise InvalidInput("xero set", f"give at least one of {', '.join(SET_OPTIONS)}")
        args.only_options(SET_OPTIONS)
    else:
        args.only_options(())
    await ctx.require_admin("change Xero settings")
    if action == "enable":
        result = await company_settings.enable(company, now=now, actor=ctx.actor)
        note = md("Enabled by {}: every invoice and credit note issued for {} from now on goes to Xero.",
                  mention(ctx.user_id), company.short_name)
    elif action == "disable":
        result = await company_settings.disable(company, now=now, actor=ctx.actor)
        note = md("Disabled by {}. Documents already queued still go.", mention(ctx.user_id))
    elif action == "retry":
        count = await company_settings.retry(company, now=now, actor=ctx.actor)
        result = await company_settings.settings(company)
        note = md("{} refused document(s) queued again by {}.", count, mention(ctx.user_id))
    else:
        result = await company_settings.configure(company, now=now, actor=ctx.actor, **dict(args.options))
        note = md("Updated by {}.", mention(ctx.user_id))
    await ctx.services.kick_outbox()
    return await show(result, company, note)


def mutates(args: Args) -> bool:
    words = [w.lower() for w in args.words]
    return len(words) > 1 and words[0] not in ("status", "setup", "connect", "disconnect") and words[1] in ACTIONS


def push_failed_reply(payload: dict[str, Any]) -> Reply:
    """The ``xero_push_failed`` notice: Xero refused a document (in its words), or it could not be built."""
    document = _DOCUMENT.get(str(payload.get("document")), "document")
    company, number = str(payload.get("company", "")), str(payload.get("number", ""))
    text = md(":x: *Xero did not take {} {}* ({}): {}\nFix it, then `/invoicing xero {} retry` (a settings change "
              "retries too).", document, number, company, str(payload.get("message", "")), company)
    return message(f"Xero refused {document} {number}", section(text), ephemeral=False)


def mismatch_reply(payload: dict[str, Any]) -> Reply:
    """The ``xero_mismatch`` notice: created in Xero, but its totals are not ours."""
    document = _DOCUMENT.get(str(payload.get("document")), "document")
    number = str(payload.get("number", ""))
    text = md(":warning: *{} {} is in Xero, but its totals differ from ours* ({}): {}. Check the tax types "
              "(`/invoicing xero {}`) and correct the document in Xero.", document.capitalize(), number,
              str(payload.get("company", "")), str(payload.get("mismatch", "")), str(payload.get("company", "")))
    return message(f"Xero totals differ for {number}", section(text), ephemeral=False)


def waiting_reply(payload: dict[str, Any]) -> Reply:
    """The ``xero_waiting`` notice: the organisation's calls for today are spent; the rest goes tomorrow."""
    organisation = str(payload.get("organisation", ""))
    text = md(":hourglass: *{} document(s) wait for tomorrow*: {}", str(payload.get("waiting", "")),
              str(payload.get("message", "")))
    return message(f"Xero: pushes to {organisation} wait for tomorrow", section(text), ephemeral=False)
