"""The "Credit note…" button on an invoice's run notice: a form for lines and reason, then the usual preview.

A credit note needs a reason, which a confirm dialog cannot ask for, so the button (admins)
opens a form (``views.open``, callback ``CREDIT_CALLBACK``) with the lines to credit (default
``all`` = void), the reason and whether the orders may be invoiced again. The form is checked
exactly like the typed ``credit`` command (a bad selection or a missing reason is an error in
the form, nothing changes); a valid one posts the preview with its **Issue credit note** button
in the notice's channel (``commands.credit``): still nothing is issued until an admin confirms.
"""

from __future__ import annotations

import json
from typing import Any

from commands.clicks import Click, ClickResult
from commands.companies import modal_values
from commands.context import CommandContext
from commands.credit import preview_for
from commands.invoices import find_invoice
from commands.replies import Block, Reply
from invoicing.errors import InvalidInput

CREDIT_CALLBACK = "credit_request"
LINES, REASON, REINVOICE = "lines", "reason", "reinvoice"


def credit_modal(number: str, channel: str) -> Block:
    """The form for invoice ``number``; the preview is posted in ``channel`` when it is submitted."""
    def text_input(block: str, label: str, hint: str, *, initial: str = "", multiline: bool = False) -> Block:
        element: Block = {"type": "plain_text_input", "action_id": block, "multiline": multiline}
        if initial:
            element["initial_value"] = initial
        return {"type": "input", "block_id": block, "label": {"type": "plain_text", "text": label},
                "hint": {"type": "plain_text", "text": hint}, "element": element}

    return {
        "type": "modal", "callback_id": CREDIT_CALLBACK,
        "private_metadata": json.dumps({"invoice": number, "channel": channel}),
        "title": {"type": "plain_text", "text": "Credit note"},
        "submit": {"type": "plain_text", "text": "Preview"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            text_input(LINES, f"Lines of invoice {number}"[:150], "all (void), or line numbers as printed: 1,4-6 "
                       "or 2:1 for one unit of line 2", initial="all"),
            text_input(REASON, "Reason", "printed on the credit note, e.g. \"Damaged in transit\"", multiline=True),
            text_input(REINVOICE, "Invoice the orders again?", "no (default), or yes: the next run invoices the "
                       "credited orders again (every line of each order must be credited)", initial="no"),
        ],
    }


async def open_form(click: Click) -> ClickResult:
    """The button: admins get the form (anyone else a refusal); the invoice must be this tenant's."""
    await click.ctx.require_admin("issue credit notes")
    found = await find_invoice(click.ctx, click.value.strip())
    return ClickResult(reply=Reply(text="Credit note", modal=credit_modal(found.display_number, click.channel_id)))


async def submit_credit_form(private_metadata: str, state_values: dict[str, Any],
                             ctx: CommandContext) -> tuple[str, Reply]:
    """The channel to post in and the preview. ``InvalidInput`` with the form's field for what is wrong."""
    await ctx.require_admin("issue credit notes")
    try:
        meta = json.loads(private_metadata)
        number, channel = str(meta["invoice"]), str(meta.get("channel") or "")
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(REASON, "this form is out of date; click Credit note on the notice again") from None
    typed = modal_values(state_values)
    lines = (typed.get(LINES) or "all").strip() or "all"
    options = {"reason": typed.get(REASON, ""), "reinvoice": (typed.get(REINVOICE) or "no").strip() or "no"}
    try:
        reply = await preview_for(number, options, lines, ctx)
    except InvalidInput as exc:
        field = exc.field if exc.field in (LINES, REASON, REINVOICE) else LINES
        raise InvalidInput(field, exc.reason) from None
    return channel or ctx.user_id, reply
