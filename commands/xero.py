"""``xero setup | connect [<co>] | status | disconnect [<co>]``: the tenant's Xero app and connections
(``xero <co> …``, a company's pushes, is ``commands.xero_company``).

* ``setup`` (admins) opens a form for the tenant's own Xero app: client id, client secret (sealed with
  ``INVOICEBOT_SECRET_KEY``, never shown again, audited without it) and whether the app predates
  2 March 2026 (``accounting.transactions`` instead of ``accounting.invoices``).
* ``connect`` (admins) answers privately with a Xero authorize link (valid 10 minutes, once, for
  this user); ``connect <co>`` is for a dropship company's own organisation (its purchase orders).
  When the user authorises several organisations, the callback DMs a button per organisation
  (``choose_click``).
* ``status`` shows each connection: organisation, scopes, token age, today's calls / budget.
* ``disconnect`` (admins) asks to confirm; the button revokes at Xero (``disconnect_click``).
"""

from __future__ import annotations

import json
from typing import Any

from commands import xero_company
from commands.clicks import Click, ClickResult, action_id, with_status
from commands.companies import modal_values
from commands.context import Args, CommandContext
from commands.replies import Block, Reply, actions, button, context, fields_section, link, md, mention, message, section
from invoicing.errors import InvalidInput, InvoiceBotError
from invoicing.integrations.xero import connections, oauth
from invoicing.integrations.xero.apps import save_app
from invoicing.integrations.xero.endpoints import XeroEnv
from invoicing.parties.companies import find_company
from models import Company, XeroApp, XeroConnection, XeroConnectionStatus

SETUP_CALLBACK = "xero_setup"
CLIENT_ID, CLIENT_SECRET, LEGACY = "client_id", "client_secret", "legacy_scopes"
CHOOSE, DISCONNECT = "xero_choose", "xero_disconnect"
USAGE = "xero setup | connect [<co>] | status | disconnect [<co>] · " + xero_company.USAGE


def _env(ctx: CommandContext) -> XeroEnv:
    env = ctx.services.xero
    if env is None:
        raise InvoiceBotError("Xero is not available in this process; use the command from the running service.")
    return env


async def xero(args: Args, ctx: CommandContext) -> Reply:
    action = args.words[0].lower() if args.words else "status"
    if action not in ("status", "setup", "connect", "disconnect"):
        return await xero_company.company_command(args, ctx, await find_company(ctx.tenant, args.words[0]))
    args.only_options(())
    if action == "status":
        args.no_extra_words(1)
        return await status_reply(ctx)
    if action == "setup":
        args.no_extra_words(1)
        await ctx.require_admin("set up Xero")
        _env(ctx).box.seal("", purpose="xero:probe")  # refuse the form at once without INVOICEBOT_SECRET_KEY
        return Reply(text="Xero app", modal=setup_modal())
    if action in ("connect", "disconnect"):
        args.no_extra_words(2)
        await ctx.require_admin(f"{action} Xero")
        company = await find_company(ctx.tenant, args.words[1]) if len(args.words) > 1 else None
        return await (connect_reply if action == "connect" else disconnect_prompt)(ctx, company)
    raise InvalidInput("xero", f"unknown action {action!r}; use {USAGE}")


def setup_modal() -> Block:
    def text_input(block: str, label: str, hint: str, *, initial: str = "") -> Block:
        element: Block = {"type": "plain_text_input", "action_id": block}
        if initial:
            element["initial_value"] = initial
        return {"type": "input", "block_id": block, "label": {"type": "plain_text", "text": label},
                "hint": {"type": "plain_text", "text": hint}, "element": element}

    return {
        "type": "modal", "callback_id": SETUP_CALLBACK, "private_metadata": "",
        "title": {"type": "plain_text", "text": "Xero app"},
        "submit": {"type": "plain_text", "text": "Save"}, "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            text_input(CLIENT_ID, "Client id", "From your app's Configuration page at developer.xero.com"),
            text_input(CLIENT_SECRET, "Client secret", "Stored encrypted; never shown again"),
            text_input(LEGACY, "App created before 2 March 2026?", "yes: it asks for accounting.transactions; "
                       "no (default): accounting.invoices", initial="no"),
        ],
    }


async def submit_setup(state_values: dict[str, Any], ctx: CommandContext) -> Reply:
    """The setup form: saved (sealed, audited) or ``InvalidInput`` naming the form's field."""
    await ctx.require_admin("set up Xero")
    typed = modal_values(state_values)
    legacy = (typed.get(LEGACY) or "no").strip().lower()
    if legacy not in ("yes", "no", "y", "n"):
        raise InvalidInput(LEGACY, "answer yes or no")
    await save_app(ctx.tenant, client_id=typed.get(CLIENT_ID, ""), client_secret=typed.get(CLIENT_SECRET, ""),
                   legacy_scopes=legacy.startswith("y"), actor=ctx.actor, box=_env(ctx).box)
    return message("Xero app saved", section(md("Xero app saved for {}. Now connect an organisation with "
                                                "`/invoicing xero connect`.", ctx.tenant.name)))


async def connect_reply(ctx: CommandContext, company: Company | None) -> Reply:
    url = await oauth.authorize_link(tenant_id=ctx.tenant.id, user_id=ctx.user_id, channel=ctx.channel_id,
                                     company_id=company.id if company else None, env=_env(ctx))
    whose = md("{}'s own Xero organisation (purchase orders)", company.short_name) if company else \
        md("{}'s Xero organisation", ctx.tenant.name)
    return message("Connect Xero", section(md("{} to connect {}.", link(url, "Open Xero and authorise"), whose)),
                   context("The link works once, for you, for 10 minutes."))


def _age(ctx: CommandContext, connection: XeroConnection) -> str:
    minutes = int((ctx.clock() - connection.refreshed_at).total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


async def status_reply(ctx: CommandContext) -> Reply:
    app = await XeroApp.get_or_none(tenant_id=ctx.tenant.id)
    rows = await connections.tenant_connections(ctx.tenant.id)
    blocks: list[Block] = []
    if app is None:
        blocks.append(section("No Xero app yet: an admin types `/invoicing xero setup`."))
    else:
        blocks.append(context(md("Xero app {} ({} scopes)", app.client_id,
                                 "accounting.transactions" if app.legacy_scopes else "accounting.invoices")))
    companies = {c.id: c.short_name for c in await Company.filter(tenant_id=ctx.tenant.id,
                                                                  id__in=[r.company_id for r in rows if r.company_id])}
    for row in rows:
        today = ctx.clock().date()
        calls = row.calls_today if row.calls_day == today else 0
        state = {XeroConnectionStatus.CONNECTED: ":white_check_mark: connected",
                 XeroConnectionStatus.BROKEN: ":warning: broken — reconnect with `/invoicing xero connect`"}
        blocks.append(fields_section([
            ("Organisation", row.organisation_name),
            ("For", companies.get(row.company_id or 0, "?") if row.company_id else ctx.tenant.name),
            ("Status", state.get(row.status, str(row.status))), ("Scopes", row.scopes),
            ("Token age", _age(ctx, row)), ("Calls today", f"{calls:,} / {row.daily_limit:,}"),
        ]))
    if app is not None and not rows:
        blocks.append(section("No organisation connected: an admin types `/invoicing xero connect`."))
    return message("Xero status", *blocks)


async def disconnect_prompt(ctx: CommandContext, company: Company | None) -> Reply:
    row = await connections.usable_connection(ctx.tenant.id, company.id if company else None)
    question = f"InvoiceBot's access to {row.organisation_name} will be revoked at Xero. Pushes stop until " \
               "someone connects again."
    return message(f"Disconnect {row.organisation_name}?", section(md("Disconnect *{}* from InvoiceBot?",
                                                                       row.organisation_name)),
                   actions(button("Disconnect", action_id(DISCONNECT), str(row.id), style="danger",
                                  confirm=("Disconnect Xero?", question, "Disconnect"))))


async def disconnect_click(click: Click) -> ClickResult:
    ctx = click.ctx
    await ctx.require_admin("disconnect Xero")
    try:
        connection_id = int(click.value)
    except ValueError:
        raise InvalidInput("connection", "this button is out of date; type `/invoicing xero disconnect`") from None
    row = await XeroConnection.get_or_none(id=connection_id, tenant_id=ctx.tenant.id)
    if row is None or row.status == XeroConnectionStatus.REVOKED:
        raise InvalidInput("connection", "that Xero connection is not connected any more")
    await oauth.disconnect(row, actor=ctx.actor, env=_env(ctx))
    text = md("Xero organisation {} disconnected by {}.", row.organisation_name, mention(ctx.user_id))
    return ClickResult(reply=message(text, section(text)),
                       update=with_status(click.message_blocks, text) if click.message_blocks else None)


def choice_message(state_id: int, choices: list[dict[str, str]]) -> Reply:
    """The DM after an authorisation of several organisations: one button per organisation."""
    buttons = [button(c["name"] or c["tenant_id"], action_id(CHOOSE), json.dumps([state_id, c["tenant_id"]]))
               for c in choices[:25]]
    return message("Which Xero organisation should InvoiceBot use?",
                   section("You authorised several Xero organisations. Which one should InvoiceBot use?"),
                   actions(*buttons), context("The buttons work for 30 minutes, for you only."), ephemeral=False)


async def choose_click(click: Click) -> ClickResult:
    ctx = click.ctx
    try:
        state_id, xero_tenant_id = json.loads(click.value)
        state_id, xero_tenant_id = int(state_id), str(xero_tenant_id)
    except (ValueError, TypeError):
        raise InvalidInput("organisation", "this button is out of date; type `/invoicing xero connect`") from None
    env = _env(ctx)
    row = await connections.choose_organisation(tenant_id=ctx.tenant.id, user_id=ctx.user_id, state_id=state_id,
                                                xero_tenant_id=xero_tenant_id, box=env.box, now=env.clock())
    text = md("Connected to Xero organisation {}.", row.organisation_name)
    return ClickResult(reply=message(text, section(f":white_check_mark: {text}")),
                       update=with_status(click.message_blocks, text) if click.message_blocks else None)


def broken_reply(payload: dict[str, Any]) -> Reply:
    """The ``xero_broken`` notice: the connection lost its refresh token; pushes wait for a reconnect."""
    organisation, company = str(payload.get("organisation", "")), str(payload.get("company") or "")
    how = md("`/invoicing xero connect {}`", company) if company else md("`/invoicing xero connect`")
    text = md(":warning: *Xero no longer accepts InvoiceBot for {}.* Nothing is lost: pushes wait. An admin "
              "reconnects with {}.", organisation, how)
    return message(f"Xero connection to {organisation} is broken: reconnect", section(text), ephemeral=False)


def budget_reply(payload: dict[str, Any]) -> Reply:
    """The ``xero_budget`` notice: 80 % of the organisation's daily calls are used."""
    calls, limit = int(payload.get("calls", 0)), int(payload.get("limit", 0))
    organisation = str(payload.get("organisation", ""))
    text = md(":hourglass: *{}* has used {} of its {} Xero calls today ({}, UTC). What does not fit waits for "
              "tomorrow.", organisation, f"{calls:,}", f"{limit:,}", str(payload.get("day", "")))
    return message(f"Xero: {organisation} used {calls} of {limit} calls today", section(text), ephemeral=False)
