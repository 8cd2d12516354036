"""The adapter's modal forms: accounting details, a failed delivery's "Edit address", a notice's "Credit note…".

A form's answer (its field errors, or closing it) *is* the ack, so a submission waits for
its workspace's turn (``bot/lanes.py``) here, bounded by ``VIEW_LANE_WAIT_SECONDS``; when
earlier changes are still being applied the form says so and nothing changes. What
follows a save (a DM, the notice's ``chat.update``) runs after the ack, off the response path.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.lanes import LaneBusy, Lanes
from bot.payloads import team_of
from bot.slack_web import ChannelPoster, background, slack_error
from commands.companies import MODAL_CALLBACK, submit_accounting_modal
from commands.context import CommandContext
from commands.credit_form import CREDIT_CALLBACK, REASON, submit_credit_form
from commands.delivery_buttons import ADDRESS_CALLBACK, ADDRESS_FIELD, submit_address
from commands.replies import Reply
from invoicing.errors import InvalidInput, InvoiceBotError

log = logging.getLogger(__name__)

#: How long a modal submission waits for earlier changes of its workspace (Slack wants its ack within 3 s).
VIEW_LANE_WAIT_SECONDS = 2.0

ContextFor = Callable[[dict[str, Any], str, str], Awaitable[CommandContext | None]]

#: What a form says when earlier changes of its workspace are still being applied.
LANE_BUSY = "Earlier changes of this workspace are still being applied; submit again in a moment."


def field_errors(exc: InvoiceBotError, *, default: str, fields: Collection[str] | None = None) -> dict[str, str]:
    """A refusal as the form's field errors: an ``InvalidInput`` under its own field when that is one of
    ``fields`` (any field when None), everything else under ``default``."""
    if isinstance(exc, InvalidInput):
        return {exc.field if fields is None or exc.field in fields else default: exc.reason}
    return {default: exc.message}


def bug_errors(form: str, user: str, field: str) -> dict[str, str]:
    """A bug in a form's handler: logged with a reference, and the form says so instead of a 500."""
    ref = uuid.uuid4().hex[:8]
    log.exception("%s form failed ref=%s user=%s", form, ref, user)
    return {field: f"Something went wrong on our side (ref {ref})."}


def register_forms(app: AsyncApp, *, lanes: Lanes, context_for: ContextFor, poster: ChannelPoster) -> None:
    """Add the view-submission listeners of the three forms to ``app``."""

    @app.view(CREDIT_CALLBACK)
    async def on_credit_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """A valid form closes and its preview (with the Issue button) is posted in the notice's channel."""
        user = (body.get("user") or {}).get("id", "")
        try:
            ctx = await context_for(body, user, "")
            if ctx is None:
                raise InvoiceBotError("This workspace is not linked to InvoiceBot.")
            channel, preview = await submit_credit_form(view.get("private_metadata", ""), view["state"]["values"], ctx)
        except InvoiceBotError as exc:
            await ack(response_action="errors", errors=field_errors(exc, default=REASON))
            return
        except Exception:  # noqa: BLE001 - a bug: bug_errors logs it with its traceback, the form says so
            await ack(response_action="errors", errors=bug_errors("credit", user, REASON))
            return
        await ack()

        async def post() -> None:  # a read (nothing is issued before the Issue click): no lane turn needed
            try:
                await poster.post(channel, preview)
            except SlackApiError as exc:
                log.warning("credit preview post failed channel=%s error=%s; DM'd", channel, slack_error(exc))
                await poster.post(user, preview)

        background(post())

    @app.view(ADDRESS_CALLBACK)
    async def on_address_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = (body.get("user") or {}).get("id", "")
        ticket = lanes.take(team_of(body), mutates=True)  # a change: in the workspace's turn, like the form below
        try:
            async with lanes.turn(ticket, wait=VIEW_LANE_WAIT_SECONDS):
                ctx = await context_for(body, user, "")
                if ctx is None:
                    raise InvoiceBotError("This workspace is not linked to InvoiceBot.")
                saved = await submit_address(view.get("private_metadata", ""), view["state"]["values"], ctx)
        except LaneBusy:
            await ack(response_action="errors", errors={ADDRESS_FIELD: LANE_BUSY})
            return
        except InvoiceBotError as exc:
            await ack(response_action="errors", errors=field_errors(exc, default=ADDRESS_FIELD, fields=()))
            return
        except Exception:  # noqa: BLE001 - a bug: bug_errors logs it with its traceback, the form says so
            await ack(response_action="errors", errors=bug_errors("address", user, ADDRESS_FIELD))
            return
        await ack()

        async def after() -> None:  # off the response path, like the accounting form's DM
            reply = saved.reply
            if saved.update is not None:
                try:
                    await poster.update(saved.channel, saved.ts, saved.update)
                except SlackApiError as exc:
                    log.warning("chat.update failed channel=%s error=%s", saved.channel, slack_error(exc))
                    reply = saved.update
            if reply is not None:
                await poster.post(user, replace(reply, ephemeral=False))

        background(after())

    @app.view(MODAL_CALLBACK)
    async def on_accounting_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = (body.get("user") or {}).get("id", "")
        # The answer (errors or close) is the ack itself, so the turn is awaited here, bounded.
        ticket = lanes.take(team_of(body), mutates=True)
        try:
            async with lanes.turn(ticket, wait=VIEW_LANE_WAIT_SECONDS):
                reply = await _apply_accounting(ack, body, view, user)
        except LaneBusy:
            await ack(response_action="errors", errors={"legal_name": LANE_BUSY})
            return
        if reply is None:
            return
        # After the ack, off the response path: the DM may wait for the channel pacing.
        background(dm(user, reply))

    async def _apply_accounting(ack: Any, body: dict[str, Any], view: dict[str, Any], user: str) -> Reply | None:
        """Validate and save the modal; ack with its errors (returning None) or return the reply to DM."""
        ctx = await context_for(body, user, "")
        if ctx is None:
            await ack(response_action="errors", errors={"legal_name": "This workspace is not linked to InvoiceBot."})
            return None
        try:
            reply = await submit_accounting_modal(view.get("private_metadata", ""), view["state"]["values"], ctx)
        except InvoiceBotError as exc:
            await ack(response_action="errors", errors=field_errors(exc, default="legal_name"))
            return None
        await ack()
        return reply

    async def dm(user: str, reply: Reply) -> None:
        for part in reply.parts():
            await poster.post(user, replace(part, ephemeral=False))
