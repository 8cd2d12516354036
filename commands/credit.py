"""``credit <number> [lines=1,4-6 | all] reason="…" [reinvoice=yes]`` and ``void <number> reason="…"``.

Both are admin-only and go in two steps. The command only **previews**: the lines and
amounts the credit note would credit and what would remain on the invoice, with an "Issue
credit note" button (primary, behind a confirm dialog). The preview is posted in the channel
so the click can update it. Nothing is written and no number is taken until an admin clicks.

The click (``confirm_click``) is a request like a typed command: it re-checks the admin, looks
the invoice up in the *clicking* workspace's tenant, re-plans the credit from the database and
issues it only if it still credits the previewed total (``expected_gross``); one credit note per
clicked message (``request_key`` ``credit-click:<channel>:<ts>``). The message is then updated
with a status line and loses its button. The audit entry, the e-mail and the channel notice are
written in the credit note's transaction (``invoicing.billing.credit_notes``).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from commands.clicks import Click, ClickResult, action_id
from commands.context import Args, CommandContext
from commands.formatting import local, money
from commands.invoice_buttons import clock_time, without_buttons
from commands.replies import Reply, actions, button, context, fields_section, header, md, mention, message, section
from invoicing.billing.credit_notes import CreditPreview, CreditRequest, check_reason, issue_credit_note, preview_credit
from invoicing.billing.credit_plan import parse_selection
from invoicing.errors import InvalidInput
from invoicing.validation import parse_switch
from models import Company, Tenant

CONFIRM = "credit_confirm"
#: Lines listed in a preview; the totals always cover every line.
PREVIEW_LINES = 30


def _request(number: str, options: dict[str, str], *, lines: str) -> CreditRequest:
    reason = check_reason(options.get("reason", ""))
    reinvoice = parse_switch(options.get("reinvoice", "no") or "no", "reinvoice")
    return CreditRequest(number.strip(), parse_selection(lines), reason, reinvoice)


async def credit(args: Args, ctx: CommandContext) -> Reply:
    number = args.word(0, "invoice number")
    args.no_extra_words(1)
    args.only_options(("lines", "reason", "reinvoice"))
    await ctx.require_admin("issue credit notes")
    lines = args.options.get("lines", "all") or "all"
    return await _preview(_request(number, args.options, lines=lines), lines, ctx, void=False)


async def void(args: Args, ctx: CommandContext) -> Reply:
    number = args.word(0, "invoice number")
    args.no_extra_words(1)
    args.only_options(("reason", "reinvoice"))
    await ctx.require_admin("void invoices")
    return await _preview(_request(number, args.options, lines="all"), "all", ctx, void=True)


async def preview_for(number: str, options: dict[str, str], lines: str, ctx: CommandContext) -> Reply:
    """The preview of crediting ``lines`` of invoice ``number`` (options ``reason``, ``reinvoice``): the
    typed command's checks, for the notice's Credit note form (``commands.credit_form``)."""
    request = _request(number, options, lines=lines)
    return await _preview(request, lines, ctx, void=lines == "all")


async def _preview(request: CreditRequest, lines: str, ctx: CommandContext, *, void: bool) -> Reply:
    preview = await preview_credit(ctx.tenant.id, request)
    company = await Company.get(tenant_id=ctx.tenant.id, short_name=preview.company)
    return preview_reply(preview, request, lines, timezone=company.timezone, void=void)


def _value(request: CreditRequest, lines: str, preview: CreditPreview) -> str:
    return json.dumps({"n": request.invoice_number, "l": lines, "r": request.reason, "ri": request.reinvoice,
                       "g": str(preview.plan.gross)}, separators=(",", ":"), ensure_ascii=False)


def preview_reply(preview: CreditPreview, request: CreditRequest, lines: str, *, timezone: str, void: bool) -> Reply:
    """The preview with its "Issue credit note" button (in channel, so the click can update it)."""
    plan, cur = preview.plan, preview.plan.currency
    verb = "Void" if void else "Credit"
    title = f"{verb} invoice {preview.invoice_number} ({preview.company})? {money(plan.gross, cur)} credited"
    rows = [f"• Line {line.invoice_position} · {line.order_ref} · {line.sku} {line.description} · {line.quantity} × "
            f"{money(line.unit_cost + line.unit_shipping, cur)} · net {money(line.net, cur)} · VAT "
            f"{format(line.tax_rate.normalize(), 'f')} %" for line in plan.lines[:PREVIEW_LINES]]
    if len(plan.lines) > PREVIEW_LINES:
        rows.append(f"… and {len(plan.lines) - PREVIEW_LINES} more line(s), all in the totals below")
    reinvoice = (f"yes: {len(plan.order_ids)} order(s) will be invoiced again by the next run" if request.reinvoice
                 else "no: the orders stay invoiced")
    return message(
        title,
        header(title),
        section("\n".join(rows)),
        fields_section([
            ("Net", money(plan.net, cur)), ("VAT", money(plan.tax, cur)), ("Credited", money(plan.gross, cur)),
            ("Remains on the invoice", f"{money(plan.remaining_gross, cur)} of {money(preview.invoiced_gross, cur)}"),
            ("Invoice date", local(preview.invoice_issued_at, timezone, with_time=False)),
            ("Re-invoice", reinvoice), ("Reason", request.reason),
        ]),
        context(f"Would be credit note {preview.number} · nothing is issued and no number is used until an admin "
                "confirms."),
        actions(button("Issue credit note", action_id(CONFIRM), _value(request, lines, preview), style="primary",
                       confirm=(f"Issue credit note for {preview.invoice_number}?",
                                f"A credit note of {money(plan.gross, cur)} for invoice {preview.invoice_number} will "
                                "be issued with the next credit-note number and e-mailed to the buyer. It cannot be "
                                "undone.", "Issue credit note")),
                block_id=f"credit:{preview.invoice_number}"),
        ephemeral=False,
    )


def _parse_value(value: str) -> tuple[CreditRequest, str, Decimal]:
    try:
        data = json.loads(value)
        lines = str(data["l"])
        request = CreditRequest(str(data["n"]), parse_selection(lines), check_reason(str(data["r"])),
                                bool(data["ri"]))
        return request, lines, Decimal(str(data["g"]))
    except (ValueError, KeyError, TypeError, InvalidOperation):
        raise InvalidInput("credit", "this button does not carry a credit request; run the command again") from None


async def confirm_click(click: Click) -> ClickResult:
    """Issue the previewed credit note (admins; once per clicked message) and mark the preview."""
    ctx = click.ctx
    await ctx.require_admin("issue credit notes")
    request, _, expected = _parse_value(click.value)
    key = f"credit-click:{click.channel_id}:{click.message_ts}" if click.message_ts else None
    tenant = await Tenant.get(id=ctx.tenant.id)
    issued = await issue_credit_note(tenant, request, actor=ctx.actor, now=ctx.clock(),
                                     mail_domain=ctx.services.mail_domain, request_key=key, expected_gross=expected)
    await ctx.services.kick_outbox()  # the e-mail and the channel notice go out now
    company = await Company.get(id=issued.credit_note.company_id)
    note = issued.credit_note
    status = md(":receipt: Credit note {} issued for invoice {} ({}) by {} at {}", note.display_number,
                issued.invoice_number, money(issued.plan.gross, note.currency), mention(ctx.user_id),
                clock_time(ctx, company.timezone))
    if not click.message_ts or click.on_home:
        return ClickResult(reply=message(status, section(status)))
    return ClickResult(update=without_buttons(click.message_blocks, {CONFIRM}, status))
