"""The Slack adapter: bolt ``AsyncApp`` ↔ the transport-free ``commands`` layer.

* Every ``/invoicing`` request is acknowledged at once (the ack is the HTTP response;
  the command runs in a task of its own afterwards), so Slack's 3-second limit
  holds however long a run takes; the answer follows through ``response_url``
  (ephemeral) or ``chat.postMessage`` (in channel).
* ``response_url`` accepts at most 5 replies in 30 minutes, so run results and
  notifications always go through ``chat.postMessage``; a command reply that meets
  a 5xx/429 there is retried a few times (``respond_reliably``), never persisted.
* Run announcements and failure follow-ups are durable ``SlackNotice`` rows posted by
  the notice outbox (``bot/notifier.py``); a manual run typed in the company's own
  channel is answered by that notice, posted at once, not by a second message.
* Posting, pacing and the Web API client are in ``bot/slack_web.py``; the modal forms in
  ``bot/slack_forms.py``.
* The workspace (``team_id``, covered by the request signature) selects the tenant;
  nobody sees another tenant's companies.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.lanes import Lanes
from bot.payloads import team_of
from bot.slack_forms import register_forms
from bot.slack_web import (
    ChannelPoster,
    ReplySession,
    SlackApp,
    admin_check,
    background,
    respond_reliably,
    slack_error,
)
from bot.xero_forms import register_xero_forms
from commands.click_handlers import CLICKS
from commands.clicks import ACTION_PREFIX, Click, handle_click
from commands.context import CommandContext, Services
from commands.dispatch import dispatch, mutates
from commands.home import home_view, page_of, unlinked_view
from commands.replies import Mrkdwn, Reply, channel_mention, escape, md
from invoicing.clock import Clock, utc_now
from invoicing.delivery.slack_notices import NoticeOutcome
from models import NoticeStatus, Tenant

log = logging.getLogger(__name__)

#: Posts the queued Slack notice with this dedupe key now; its outcome, or None if another worker has it.
PostNotice = Callable[[str], Awaitable[NoticeOutcome | None]]

SETUP_HINT = (
    "This Slack workspace is not linked to an InvoiceBot tenant yet. An operator can link it with "
    "`invoicebot tenant create NAME --slack-team {team}`."
)


def create_slack_app(
    *,
    signing_secret: str,
    client: AsyncWebClient,
    services: Services | None = None,
    clock: Clock = utc_now,
    post_notice: PostNotice | None = None,
    response_delay: float = 1.0,
    lanes: Lanes | None = None,
) -> tuple[SlackApp, ChannelPoster]:
    """Build the bolt app. ``client`` carries the bot token and the Web API base URL.

    ``post_notice`` posts a queued Slack notice now (the notice outbox); a reply that
    *is* a queued notice for the channel the command was typed in (a manual run) goes
    that way, so the channel sees it once and durably. ``response_delay`` is the
    first pause between ``response_url`` retries (seconds). ``lanes`` orders each
    workspace's changes (``bot/lanes.py``): a command takes its ticket in its listener,
    before the ack, and runs ``dispatch`` in its turn, in a task started after the ack;
    the reply is delivered after the turn, so a slow ``response_url`` holds nobody up.
    """
    # process_before_response: the HTTP response is the ack itself, sent as soon as the listener
    # returns (without it bolt polls for the ack every 10 ms, a ~10 ms floor under every command).
    # The work after the ack is a task of ours (``after_ack``), not a bolt lazy listener: bolt
    # deep-copies and re-parses the whole request for each lazy run, more CPU than a short command.
    replies = ReplySession()
    app = SlackApp(replies=replies, signing_secret=signing_secret, client=client, process_before_response=True)
    poster = ChannelPoster(client)
    services = services or Services()
    lanes = lanes or Lanes()

    async def context_for(body: dict[str, Any], user_id: str, channel_id: str) -> CommandContext | None:
        team = team_of(body)
        tenant = await Tenant.get_or_none(slack_team_id=team) if team else None
        if tenant is None:
            return None
        return CommandContext(tenant=tenant, user_id=user_id, channel_id=channel_id,
                              is_admin=admin_check(client, tenant, user_id), clock=clock, services=services)

    def after_ack(work: Awaitable[None], what: str) -> None:
        """Run ``work`` once the ack is sent; a failure is logged (the requester hears nothing more)."""

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("slack %s failed after its ack", what)

        background(run())

    async def on_command(ack: Any, body: dict[str, Any]) -> None:
        ticket = lanes.take(team_of(body), mutates=mutates(body.get("text") or ""))
        await ack()
        after_ack(on_invoicing(body, ticket), "command")

    async def on_action(ack: Any, body: dict[str, Any]) -> None:
        # Every button is treated as a change (resend, approve…): reads behind it wait for it.
        ticket = lanes.take(team_of(body), mutates=True)
        await ack()
        after_ack(on_click(body, ticket), "click")

    def responder(body: dict[str, Any], user: str, *, dm_without_url: bool = False,
                  **extra: Any) -> Callable[..., Awaitable[None]]:
        """Answer the requester privately through the request's ``response_url`` (``extra`` joins the
        message); without one, in a DM if ``dm_without_url`` (a button on the App Home), else logged."""
        url = str(body.get("response_url") or "")

        async def respond(text: str, blocks: list[Any] | None = None) -> None:
            if url:
                message: dict[str, Any] = {"text": text, "response_type": "ephemeral", **extra}
                if blocks:
                    message["blocks"] = blocks
                await respond_reliably(url, message, base_delay=response_delay, session=replies.session())
            elif dm_without_url and user:
                await poster.post(user, Reply(text=text, blocks=tuple(blocks or ()), ephemeral=False))
            else:
                log.warning("command reply dropped: the request had no response_url user=%s", user)

        return respond

    async def on_invoicing(body: dict[str, Any], ticket: int) -> None:
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        respond = responder(body, user)

        async with lanes.turn(ticket):
            ctx = await context_for(body, user, channel)
            if ctx is not None:
                log.info("command tenant=%s user=%s text=%r", ctx.tenant.name, user, (body.get("text") or "")[:200])
                reply = await dispatch(body.get("text") or "", ctx)
        if ctx is None:
            await respond(md(SETUP_HINT, team=team_of(body) or "T…"))
            return
        here = {channel, f"#{body.get('channel_name', '')}"}
        await deliver(reply, respond=respond, channel=channel, here=here, user=user, trigger_id=body.get("trigger_id"))

    app.command("/invoicing")(on_command)

    async def deliver(reply: Reply, *, respond: Callable[..., Awaitable[None]], channel: str, here: set[str],
                      user: str, trigger_id: str | None) -> None:
        for part in reply.parts():  # an answer too big for one message: its parts, in order
            await deliver_one(part, respond=respond, channel=channel, here=here, user=user, trigger_id=trigger_id)

    async def deliver_one(reply: Reply, *, respond: Callable[..., Awaitable[None]], channel: str, here: set[str],
                          user: str, trigger_id: str | None) -> None:
        if reply.modal is not None and trigger_id:
            await client.views_open(trigger_id=trigger_id, view=reply.modal)
            return
        if reply.ephemeral and reply.file is None:
            await respond(reply.text, list(reply.blocks) or None)
            return
        key = reply.extra.get("notice_key")
        if key and post_notice is not None and reply.extra.get("notice_channel") in here:
            outcome = await post_notice(str(key))  # the durable notice is this reply: post it once, now
            if outcome is None or outcome.status != NoticeStatus.FAILED:
                return  # posted, or being retried (the notice outbox keeps it)
            error = outcome.error
        else:
            try:
                await poster.post(channel, reply, user=user if reply.ephemeral else None)
                return
            except SlackApiError as exc:
                error = slack_error(exc)
        log.warning("post failed channel=%s error=%s", channel, error)
        hint = " Invite the bot to this channel (`/invite @InvoiceBot`)." if error in {
            "not_in_channel", "channel_not_found"} else ""
        await respond(reply.text + escape(f"\n(Could not post in this channel: {error}.") + hint + ")",
                      list(reply.blocks) or None)

    async def on_click(body: dict[str, Any], ticket: int) -> None:
        action = (body.get("actions") or [{}])[0]
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        posted = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
        ts = str(posted.get("ts") or container.get("message_ts") or "")
        respond = responder(body, user, dm_without_url=True, replace_original=False)

        name = str(action.get("action_id") or "").removeprefix(ACTION_PREFIX)
        async with lanes.turn(ticket):
            ctx = await context_for(body, user, channel)
            if ctx is not None:
                log.info("click tenant=%s user=%s action=%s", ctx.tenant.name, user, name)
                click = Click(name=name, value=str(action.get("value") or ""), ctx=ctx, channel_id=channel,
                              message_ts=ts, message_blocks=tuple(posted.get("blocks") or ()),
                              on_home=container.get("type") == "view")
                result = await handle_click(click, CLICKS)
        if ctx is None:
            await respond(md(SETUP_HINT, team=team_of(body) or "T…"))
            return
        view = result.extra.get("home_view")
        if view is None and click.on_home:  # e.g. Approve on the Home: show its new state, same page
            view = await home_view(ctx.tenant, page=page_of(str((body.get("view") or {}).get("private_metadata"))))
        if view is not None and user:
            await publish_home(user, view)
        if result.update is not None and channel and ts and not container.get("is_ephemeral"):
            try:
                await poster.update(channel, ts, result.update)
            except SlackApiError as exc:
                log.warning("chat.update failed channel=%s error=%s", channel, slack_error(exc))
        if result.reply is not None and result.reply.extra.get("dm_fallback"):
            await share(result.reply, channel=channel, user=user, respond=respond)
        elif result.reply is not None:
            here = {channel} if channel else set()
            await deliver(result.reply, respond=respond, channel=channel or user, here=here, user=user,
                          trigger_id=body.get("trigger_id"))

    app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))(on_action)

    async def share(reply: Reply, *, channel: str, user: str, respond: Callable[..., Awaitable[None]]) -> None:
        """Post ``reply`` (a file) in ``channel``; DM it to ``user`` on the App Home or when the channel refuses."""
        if channel:
            try:
                await poster.post(channel, reply)
                return
            except SlackApiError as exc:
                log.warning("file post failed channel=%s error=%s; sending it as a DM", channel, slack_error(exc))
                reply = replace(reply, text=md("{} (I could not post it in {}: {})", Mrkdwn(reply.text),
                                                           channel_mention(channel), slack_error(exc)))
        try:
            opened = await client.conversations_open(users=user)
            await poster.post(str((opened.get("channel") or {}).get("id") or user), reply)
        except SlackApiError as exc:
            await respond(f"Could not send you the file: {slack_error(exc)}.")

    async def on_home_opened(body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return  # the Messages tab, or nothing to publish for
        user = str(event["user"])
        ctx = await context_for(body, user, "")
        view = (unlinked_view(SETUP_HINT.format(team=team_of(body) or "T…")) if ctx is None
                else await home_view(ctx.tenant))
        await publish_home(user, view)

    async def publish_home(user: str, view: dict[str, Any]) -> None:
        try:
            await client.views_publish(user_id=user, view=view)
        except SlackApiError as exc:
            log.warning("views.publish failed user=%s error=%s", user, slack_error(exc))

    # Acked at once like a command; the view is built and published after the ack.
    async def on_event(ack: Any, body: dict[str, Any], event: dict[str, Any]) -> None:  # a read: no lane ticket
        await ack()
        after_ack(on_home_opened(body, event), "event")

    app.event("app_home_opened")(on_event)

    register_forms(app, lanes=lanes, context_for=context_for, poster=poster)
    register_xero_forms(app, lanes=lanes, context_for=context_for, poster=poster)

    return app, poster
