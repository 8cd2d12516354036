"""The buttons on an issued invoice's run notice: PDF, Orders, Resend (and Credit note…, elsewhere).

Each button's value is the invoice's display number and nothing else; the handler
looks the invoice up in the *clicking* workspace's tenant (``find_invoice``), so a
value copied into another workspace's request finds nothing there.

* **PDF** and **Orders** only read: anyone in the channel may use them.
* **Resend** changes something (a new e-mail leaves): ``ctx.require_admin`` first,
  then one resend per clicked message — the delivery's unique ``dedupe_key``
  ``resend-click:<channel>:<ts>`` makes two admins clicking at once, or Slack
  re-sending the request, queue exactly one e-mail; the loser is told so. The
  message is then updated with "Resent by @dana at 10:42" and loses its Resend button.

**Credit note…** (admins) opens the credit form of ``commands.credit_form``; its preview has
the Issue button of ``commands.credit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from commands.clicks import Click, ClickHandler, ClickResult, action_id
from commands.context import CommandContext
from commands.invoices import find_invoice, pdf_upload
from commands.notifications import ORDERS, PDF, RESEND
from commands.orders import PAGE_SIZE, order_lines
from commands.paging import Page, footer
from commands.replies import Block, Mrkdwn, Reply, context, md, mention, message, section
from invoicing.billing.queries import OrderFilter, count_orders, list_orders
from models import Company, Invoice


def clock_time(ctx: CommandContext, timezone: str) -> str:
    """Now as "10:42 GMT" in ``timezone`` (status lines)."""
    return ctx.clock().astimezone(ZoneInfo(timezone)).strftime("%H:%M %Z")


def without_buttons(blocks: Iterable[Block], names: set[str], status: Mrkdwn, *, text: str = "") -> Reply:
    """The clicked message with the buttons ``names`` removed (an emptied actions block goes too)
    and ``status`` added at the end, for ``chat.update``: nobody can press them twice."""
    ids = {action_id(name) for name in names}
    kept: list[Block] = []
    for block in blocks:
        if block.get("type") == "actions":
            elements = [e for e in block.get("elements", []) if e.get("action_id") not in ids]
            if not elements:
                continue
            block = {**block, "elements": elements}
        kept.append(block)
    return message(text or status, *kept, context(status), ephemeral=False)


async def _invoice(click: Click) -> tuple[Invoice, Company]:
    found = await find_invoice(click.ctx, click.value.strip())
    return found, await Company.get(id=found.company_id)


async def pdf(click: Click) -> ClickResult:
    """Upload the PDF in the channel (DM'd when that is impossible: ``dm_fallback``, or the App Home)."""
    found, _ = await _invoice(click)
    number = found.display_number
    upload = await pdf_upload(found, click.ctx)
    return ClickResult(reply=Reply(text=md("Invoice {} (PDF), asked for by {}", number, mention(click.ctx.user_id)),
                                   ephemeral=False, file=upload, extra={"dm_fallback": True}))


async def orders(click: Click) -> ClickResult:
    """The invoice's orders, ephemeral; more than a page says "1–25 of N" and how to get the rest
    (``commands.paging``: the typed ``orders <co> invoice=<n> page=2`` and a Next page button)."""
    found, company = await _invoice(click)
    number = found.display_number
    flt = OrderFilter(invoice=number)
    total = await count_orders(click.ctx.tenant.id, flt)
    rows = (await list_orders(click.ctx.tenant.id, flt, limit=PAGE_SIZE)).rows
    title = f"Orders on invoice {number} ({company.short_name})"
    if not rows:
        return ClickResult(reply=message(title, section(f"No orders are linked to invoice *{number}*.")))
    page = Page(1, PAGE_SIZE)
    return ClickResult(reply=message(
        f"{title}: {page.span(total)}", section(md("*{}*", title)),
        section("\n".join(order_lines(rows, company.timezone))),
        *footer(page, total, command="orders", words=[company.short_name], options={"invoice": number})))


async def resend(click: Click) -> ClickResult:
    """Queue one new e-mail of the invoice (admins; once per clicked message) and mark the message."""
    ctx = click.ctx
    await ctx.require_admin("re-send invoices")
    found, company = await _invoice(click)
    number = found.display_number
    key = f"resend-click:{click.channel_id}:{click.message_ts}" if click.message_ts else None
    await ctx.services.resend_invoice(number, ctx.tenant.id, dedupe_key=key)
    to = str(found.buyer.get("email") or "")
    status = md(":incoming_envelope: Resent to {} by {} at {}", to, mention(ctx.user_id),
                clock_time(ctx, company.timezone))
    if not click.message_ts or click.on_home:
        return ClickResult(reply=message(status, section(status)))
    return ClickResult(update=without_buttons(click.message_blocks, {RESEND}, status))


HANDLERS: dict[str, ClickHandler] = {PDF: pdf, ORDERS: orders, RESEND: resend}
