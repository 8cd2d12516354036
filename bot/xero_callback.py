"""``GET /xero/callback``: where Xero sends the browser back after the user authorised InvoiceBot.

The request carries only Xero's ``code`` and our ``state``; who asked (tenant, user, purpose) comes
from the stored state (``invoicing.integrations.xero.state``), never from the request. The answer is
a small HTML page that says what happened and what to do next — every value escaped, no token, no
code, no secret — with ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (the URL
held the code). When several organisations were authorised the user gets a DM with one button per
organisation (``commands.xero.choice_message``) and the page says to choose in Slack.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from commands.replies import Reply
from commands.xero import choice_message
from invoicing.errors import InvoiceBotError
from invoicing.integrations.xero.endpoints import CALLBACK_PATH, XeroEnv
from invoicing.integrations.xero.errors import XeroAuthorizationRefused, XeroUnavailable
from invoicing.integrations.xero.oauth import complete_authorization

log = logging.getLogger(__name__)

#: Posts a reply as a DM to a Slack user (``None`` when Slack is not configured in this process).
SendDm = Callable[[str, Reply], Awaitable[None]]

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


def page(title: str, text: str, *, ok: bool, status: int = 200) -> web.Response:
    """The callback's answer: a title and a paragraph, both escaped."""
    colour = "#1a7f37" if ok else "#b42318"
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>InvoiceBot · {html.escape(title)}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>"
        "<body style=\"font-family: system-ui, sans-serif; max-width: 36em; margin: 4em auto; padding: 0 1em\">"
        f"<h1 style=\"color: {colour}\">{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        "</body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


def add_xero_routes(app: web.Application, env: XeroEnv, *, send_dm: SendDm | None = None) -> None:
    """Mount ``GET /xero/callback`` on ``app``."""

    async def callback(request: web.Request) -> web.Response:
        query = request.query
        try:
            done = await complete_authorization(state=query.get("state", ""), code=query.get("code", ""),
                                                error=query.get("error", ""), env=env)
        except XeroAuthorizationRefused as exc:
            log.info("xero callback refused reason=%s", exc.message[:80])
            return page("Xero was not connected", exc.message, ok=False, status=400)
        except XeroUnavailable as exc:
            return page("Xero did not answer", exc.message + " Type `/invoicing xero connect` in Slack to try again.",
                        ok=False, status=503)
        except InvoiceBotError as exc:
            log.info("xero callback failed reason=%s", exc.message[:80])
            return page("Xero was not connected", exc.message, ok=False, status=400)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("xero callback failed ref=%s", ref)
            return page("Something went wrong", f"Something went wrong on our side (ref {ref}). Type "
                        "`/invoicing xero connect` in Slack to try again; quote the ref if it keeps happening.",
                        ok=False, status=500)
        if done.connection is not None:
            return page(f"Connected to {done.connection.organisation_name}",
                        f"InvoiceBot now works with the Xero organisation {done.connection.organisation_name}. "
                        "You can close this tab; `/invoicing xero status` in Slack shows the connection.", ok=True)
        choices = [{"tenant_id": o.tenant_id, "name": o.name} for o in done.choices]
        if send_dm is not None:
            try:
                await send_dm(done.user_id, choice_message(done.state_id, choices))
            except Exception:
                log.exception("xero choice DM failed user=%s", done.user_id)
        names = ", ".join(c["name"] for c in choices)
        if send_dm is None:  # no Slack in this process: nobody can get the buttons
            return page("Xero was not connected",
                        f"You authorised {len(choices)} Xero organisations ({names}), but InvoiceBot cannot ask you "
                        "which one in Slack from here. Type `/invoicing xero connect` again and tick only one.",
                        ok=False, status=409)
        return page("Choose the organisation in Slack",
                    f"You authorised {len(choices)} Xero organisations ({names}). InvoiceBot sent you a message in "
                    "Slack with a button for each: pick the one to use (within 30 minutes).", ok=True)

    app.router.add_get(CALLBACK_PATH, callback)
