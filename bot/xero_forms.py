"""The ``/invoicing xero setup`` form's submission (the ``bot/slack_forms.py`` pattern, kept apart).

A valid form is saved (the client secret sealed, audited without it) and closes; a bad value is shown
under its field; without ``INVOICEBOT_SECRET_KEY`` the form says nothing can be stored. The
confirmation goes to the user as a DM after the ack.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.lanes import LaneBusy, Lanes
from bot.payloads import team_of
from bot.slack_forms import LANE_BUSY, VIEW_LANE_WAIT_SECONDS, ContextFor, bug_errors, field_errors
from bot.slack_web import ChannelPoster, background
from commands.xero import CLIENT_ID, CLIENT_SECRET, LEGACY, SETUP_CALLBACK, submit_setup
from invoicing.errors import InvoiceBotError


def register_xero_forms(app: AsyncApp, *, lanes: Lanes, context_for: ContextFor, poster: ChannelPoster) -> None:
    """Add the Xero setup form's view-submission listener to ``app``."""

    @app.view(SETUP_CALLBACK)
    async def on_xero_setup(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = (body.get("user") or {}).get("id", "")
        ticket = lanes.take(team_of(body), mutates=True)
        try:
            async with lanes.turn(ticket, wait=VIEW_LANE_WAIT_SECONDS):
                ctx = await context_for(body, user, "")
                if ctx is None:
                    raise InvoiceBotError("This workspace is not linked to InvoiceBot.")
                reply = await submit_setup(view["state"]["values"], ctx)
        except LaneBusy:
            await ack(response_action="errors", errors={CLIENT_ID: LANE_BUSY})
            return
        except InvoiceBotError as exc:
            await ack(response_action="errors",
                      errors=field_errors(exc, default=CLIENT_ID, fields=(CLIENT_ID, CLIENT_SECRET, LEGACY)))
            return
        except Exception:  # noqa: BLE001 - a bug: bug_errors logs it with its traceback, the form says so
            await ack(response_action="errors", errors=bug_errors("xero setup", user, CLIENT_ID))
            return
        await ack()

        async def dm() -> None:
            for part in reply.parts():
                await poster.post(user, replace(part, ephemeral=False))

        background(dm())
