"""The buttons on a "could not be e-mailed" notice: Retry and Edit address (both for admins).

The button value is the failed delivery's id; it is looked up within the clicking
workspace's tenant only. Whatever re-sends the failed e-mail — Retry, or saving a
new address in the Edit address form — queues a resend with the dedupe key
``retry:<delivery id>``, so one failure leads to at most one new e-mail however many
admins click (a second one is told it was already retried). If that e-mail fails
too, its own notice (a new delivery) gets its own buttons.

The address form (``views.open``, callback ``ADDRESS_CALLBACK``) carries the
delivery id and the notice's channel and ts in ``private_metadata``; on submit the
address is validated (a bad one is a field error in the form, nothing changed), the
company's accounting e-mail is changed through the audited ``set_accounting`` (under
the company row lock) and the invoice is re-sent to it. The address change and the
resend are two transactions: if the process stops between them, the address is
changed and the notice still offers Retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from commands.clicks import Click, ClickHandler, ClickResult
from commands.companies import modal_values
from commands.context import CommandContext
from commands.invoice_buttons import clock_time, without_buttons
from commands.notifications import EDIT_ADDRESS, RETRY, delivery_failed_reply
from commands.replies import Block, Mrkdwn, Reply, md, mention, message, section
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.parties.accounting import normalise_email
from invoicing.parties.companies import set_accounting
from models import Company, CreditNote, Delivery, DeliveryStatus, Invoice

ADDRESS_CALLBACK = "delivery_address"
#: The one input of the address form (its block and action id): field errors name it.
ADDRESS_FIELD = "email"


@dataclass(frozen=True)
class Failed:
    delivery: Delivery
    invoice: Invoice
    company: Company


async def _failed(ctx: CommandContext, value: str) -> Failed:
    text = value.strip()
    found = await Delivery.filter(id=int(text), invoice__tenant_id=ctx.tenant.id).first() \
        if text.isdigit() and len(text) < 10 else None
    if found is None:
        raise NotFound(f"No such e-mail delivery in {ctx.tenant.name}. `/invoicing deliveries failed` lists them.")
    invoice = await Invoice.get(id=found.invoice_id)
    if found.status != DeliveryStatus.FAILED:
        raise Conflict(f"The e-mail of invoice {invoice.display_number} to {found.to_addr} is {found.status}, "
                       "not failed: nothing to retry.")
    return Failed(found, invoice, await Company.get(id=invoice.company_id))


async def _resend(ctx: CommandContext, failed: Failed, to: str) -> bool:
    """Queue the one re-send of this failure; False if it was already queued (by a click or a form)."""
    credit_note = await CreditNote.get_or_none(id=failed.delivery.credit_note_id or 0)
    resend = ctx.services.resend_credit_note if credit_note else ctx.services.resend_invoice
    try:
        await resend(credit_note.display_number if credit_note else failed.invoice.display_number, ctx.tenant.id,
                     to=to, dedupe_key=f"retry:{failed.delivery.id}")
    except Conflict:
        return False
    return True


def _already(failed: Failed) -> str:
    return (f"The failed e-mail of invoice {failed.invoice.display_number} was already retried. "
            f"`/invoicing invoice {failed.invoice.display_number} resend` sends it once more.")


async def retry(click: Click) -> ClickResult:
    ctx = click.ctx
    await ctx.require_admin("retry e-mails")
    failed = await _failed(ctx, click.value)
    if not await _resend(ctx, failed, failed.delivery.to_addr):
        raise Conflict(_already(failed))
    status = md(":repeat: Retried by {} at {} (a new e-mail to {})", mention(ctx.user_id),
                clock_time(ctx, failed.company.timezone), failed.delivery.to_addr)
    return _done(click, status)


def _done(click: Click, status: Mrkdwn) -> ClickResult:
    if not click.message_ts or click.on_home:
        return ClickResult(reply=message(status, section(status)))
    return ClickResult(update=without_buttons(click.message_blocks, {RETRY, EDIT_ADDRESS}, status))


async def edit_address(click: Click) -> ClickResult:
    ctx = click.ctx
    await ctx.require_admin("change accounting details")
    failed = await _failed(ctx, click.value)
    return ClickResult(reply=Reply(text=f"Opening the address form for {failed.company.short_name}…",
                                   modal=address_modal(failed, click.channel_id, click.message_ts)))


def address_modal(failed: Failed, channel: str, ts: str) -> Block:
    """The form, prefilled with the company's accounting e-mail; submitted back to ``ADDRESS_CALLBACK``."""
    element: Block = {"type": "email_text_input", "action_id": ADDRESS_FIELD}
    if failed.company.email:
        element["initial_value"] = failed.company.email
    meta = json.dumps({"delivery": failed.delivery.id, "channel": channel, "ts": ts})
    number = failed.invoice.display_number
    return {
        "type": "modal", "callback_id": ADDRESS_CALLBACK, "private_metadata": meta,
        "title": {"type": "plain_text", "text": "Invoice e-mail address"},
        "submit": {"type": "plain_text", "text": "Save and resend"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(md("Invoice *{}* could not be e-mailed to {}. Where should {}'s invoices go?", number,
                       failed.delivery.to_addr, failed.company.short_name)),
            {"type": "input", "block_id": ADDRESS_FIELD, "label": {"type": "plain_text", "text": "Accounting e-mail"},
             "element": element},
        ],
    }


@dataclass(frozen=True)
class AddressSaved:
    """What the adapter does after the form closed: ``update`` the notice ``channel``/``ts``, DM ``reply``."""

    channel: str
    ts: str
    update: Reply | None
    reply: Reply | None


def _metadata(raw: str) -> dict[str, Any]:
    try:
        meta = json.loads(raw)
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or not str(meta.get("delivery", "")).isdigit():
        raise InvalidInput(ADDRESS_FIELD, "this form is out of date; click Edit address on the notice again")
    return meta


async def submit_address(private_metadata: str, state_values: dict[str, Any], ctx: CommandContext) -> AddressSaved:
    """Save the address and re-send the failed invoice to it. ``InvalidInput(ADDRESS_FIELD, …)``
    for a bad address (nothing changed); other domain errors are raised as they are."""
    await ctx.require_admin("change accounting details")
    meta = _metadata(private_metadata)
    failed = await _failed(ctx, str(meta["delivery"]))
    typed = modal_values(state_values).get(ADDRESS_FIELD, "")
    if not typed.strip():
        raise InvalidInput(ADDRESS_FIELD, "give the address invoices should be e-mailed to")
    address = normalise_email(typed, field=ADDRESS_FIELD)
    await set_accounting(failed.company, {"email": address}, actor=ctx.actor)
    resent = await _resend(ctx, failed, address)
    when = clock_time(ctx, failed.company.timezone)
    channel, ts = str(meta.get("channel") or ""), str(meta.get("ts") or "")
    if not resent:
        text = md("Address of {} changed to {}. {}", failed.company.short_name, address, _already(failed))
        return AddressSaved(channel, ts, None, message(text, section(text), ephemeral=False))
    status = md(":email: Address changed to {} by {} at {}; resent", address, mention(ctx.user_id), when)
    if not (channel and ts):
        return AddressSaved(channel, ts, None, message(status, section(status), ephemeral=False))
    # The form does not carry the notice's blocks: render it again from the same facts.
    notice = delivery_failed_reply(failed.invoice.display_number, failed.delivery.to_addr,
                                   failed.delivery.last_error, failed.company.short_name)
    return AddressSaved(channel, ts, without_buttons(notice.blocks, {RETRY, EDIT_ADDRESS}, status), None)


HANDLERS: dict[str, ClickHandler] = {RETRY: retry, EDIT_ADDRESS: edit_address}
