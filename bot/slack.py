"""The Slack adapter: bolt ``AsyncApp`` ↔ the transport-free ``commands`` layer.

* Every ``/invoicing`` request is acknowledged at once (the ack is the HTTP response;
  the command runs in a bolt *lazy listener* afterwards), so Slack's 3-second limit
  holds however long a run takes; the answer follows through ``response_url``
  (ephemeral) or ``chat.postMessage`` (in channel).
* ``response_url`` accepts at most 5 replies in 30 minutes, so run results and
  notifications always go through ``chat.postMessage``; a command reply that meets
  a 5xx/429 there is retried a few times (``respond_reliably``), never persisted.
* Run announcements and failure follow-ups are durable ``SlackNotice`` rows posted by
  the notice outbox (``bot/notifier.py``); a manual run typed in the company's own
  channel is answered by that notice, posted at once, not by a second message.
* ``chat.postMessage`` allows about one message per second per channel: posts go
  through ``ChannelPoster``, which paces each channel and honours 429 Retry-After
  (slack_sdk's rate-limit retry handler) instead of dropping messages.
* The workspace (``team_id``, covered by the request signature) selects the tenant;
  nobody sees another tenant's companies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.lanes import LaneBusy, Lanes
from bot.payloads import team_of
from commands.click_handlers import CLICKS
from commands.clicks import ACTION_PREFIX, Click, handle_click
from commands.companies import MODAL_CALLBACK, submit_accounting_modal
from commands.context import CommandContext, Services
from commands.delivery_buttons import ADDRESS_CALLBACK, ADDRESS_FIELD, submit_address
from commands.dispatch import dispatch, mutates
from commands.home import home_view, page_of, unlinked_view
from commands.replies import Mrkdwn, Reply, channel_mention, escape, md
from invoicing.clock import Clock, utc_now
from invoicing.delivery.slack_notices import NoticeOutcome
from invoicing.errors import InvalidInput, InvoiceBotError
from models import NoticeStatus, Tenant

log = logging.getLogger(__name__)

#: How long a modal submission waits for earlier changes of its workspace (Slack wants its ack within 3 s).
VIEW_LANE_WAIT_SECONDS = 2.0
#: Context key of the lane ticket taken in the ack function and used by the lazy listener.
LANE_TICKET = "invoicebot_lane_ticket"

#: Tries of one command reply through its ``response_url`` (Slack allows 5 uses in 30 minutes).
RESPONSE_URL_ATTEMPTS = 4

#: Posts the queued Slack notice with this dedupe key now; its outcome, or None if another worker has it.
PostNotice = Callable[[str], Awaitable[NoticeOutcome | None]]

SETUP_HINT = (
    "This Slack workspace is not linked to an InvoiceBot tenant yet. An operator can link it with "
    "`invoicebot tenant create NAME --slack-team {team}`."
)


def web_client(token: str, base_url: str) -> AsyncWebClient:
    """A Web API client that retries 429 (after Retry-After), 5xx and dropped connections."""
    client = AsyncWebClient(token=token, base_url=base_url)
    client.retry_handlers.extend([
        AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
    ])
    return client


class ChannelPoster:
    """Posts messages and files, at most one per second per channel, never dropping one."""

    def __init__(
        self, client: AsyncWebClient, *, min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic
    ):
        self.client = client
        self.min_interval = min_interval
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    async def paced(self, channel: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``call`` (one Slack call to ``channel``) at least ``min_interval`` after the previous one."""
        return await self._paced(channel, call)

    async def _paced(self, channel: str, call: Callable[[], Awaitable[Any]]) -> Any:
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            wait = self._last.get(channel, -1e9) + self.min_interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await call()
            finally:
                self._last[channel] = self._clock()

    async def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Replace the message ``ts`` in ``channel`` with ``reply`` (``chat.update``)."""
        await self._paced(channel, lambda: self.client.chat_update(
            channel=channel, ts=ts, text=reply.text, blocks=list(reply.blocks)))

    async def post(self, channel: str, reply: Reply, *, user: str | None = None) -> None:
        """Post ``reply`` in ``channel`` (ephemeral to ``user`` when the reply is ephemeral).

        A file reply without blocks is the file alone, its text the upload's comment."""
        file = reply.file
        if file is not None and not reply.blocks:
            await self._paced(channel, lambda: self.client.files_upload_v2(
                channel=channel, content=file.content, filename=file.filename, title=file.title,
                initial_comment=reply.text))
            return
        if reply.ephemeral and user:
            await self._paced(channel, lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=reply.text, blocks=list(reply.blocks) or None))
        else:
            await self._paced(channel, lambda: self.client.chat_postMessage(
                channel=channel, text=reply.text, blocks=list(reply.blocks) or None))
        if file is not None:
            await self._paced(channel, lambda: self.client.files_upload_v2(
                channel=channel, content=file.content, filename=file.filename, title=file.title))


async def respond_reliably(response_url: str, message: dict[str, Any], *, attempts: int = RESPONSE_URL_ATTEMPTS,
                           base_delay: float = 1.0) -> bool:
    """POST a command reply to its ``response_url``; retry 5xx, 429 and network errors a few times.

    Slack accepts 5 uses of a ``response_url`` within 30 minutes, so at most
    ``attempts`` tries, ``base_delay × 2^k`` seconds apart (Retry-After when longer,
    capped at 30 s). Returns whether Slack took it; a reply that never arrives is
    logged at warning, without the URL (it lets anyone answer in the channel).
    """
    client = AsyncWebhookClient(url=response_url)
    reason = ""
    for attempt in range(1, attempts + 1):
        wait = base_delay * 2 ** (attempt - 1)
        try:
            response = await client.send_dict(message)
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = type(exc).__name__
        else:
            if response.status_code == 200:
                return True
            reason = f"http_{response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                break  # Slack refused this reply (expired or used up URL, bad payload): retrying will not help
            with contextlib.suppress(TypeError, ValueError):
                wait = max(wait, float((response.headers or {}).get("Retry-After", 0)))
        if attempt < attempts:
            await asyncio.sleep(min(wait, 30.0))
    log.warning("command reply not delivered attempts=%d reason=%s", attempt, reason)
    return False


def slack_error(exc: SlackApiError) -> str:
    """The ``error`` code of a failed call (``not_in_channel``…), or its HTTP status."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return f"http_{getattr(exc.response, 'status_code', '?')}"


async def _is_workspace_admin(client: AsyncWebClient, user_id: str) -> bool:
    try:
        info = await client.users_info(user=user_id)
    except SlackApiError as exc:
        log.warning("users.info failed user=%s error=%s", user_id, slack_error(exc))
        return False
    user = info.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


def admin_check(client: AsyncWebClient, tenant: Tenant, user_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return user_id in (tenant.admin_user_ids or []) or await _is_workspace_admin(client, user_id)

    return check


_tasks: set[asyncio.Task[Any]] = set()


def _background(coro: Awaitable[Any]) -> None:
    """Run ``coro`` without awaiting it; keep a reference so it is not garbage-collected."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def create_slack_app(
    *,
    signing_secret: str,
    client: AsyncWebClient,
    services: Services | None = None,
    clock: Clock = utc_now,
    post_notice: PostNotice | None = None,
    response_delay: float = 1.0,
    lanes: Lanes | None = None,
) -> tuple[AsyncApp, ChannelPoster]:
    """Build the bolt app. ``client`` carries the bot token and the Web API base URL.

    ``post_notice`` posts a queued Slack notice now (the notice outbox); a reply that
    *is* a queued notice for the channel the command was typed in (a manual run) goes
    that way, so the channel sees it once and durably. ``response_delay`` is the
    first pause between ``response_url`` retries (seconds). ``lanes`` orders each
    workspace's changes (``bot/lanes.py``): a command takes its ticket in the ack
    function, its lazy listener runs ``dispatch`` in its turn; the reply is delivered
    after the turn, so a slow ``response_url`` holds nobody up.
    """
    # process_before_response + a lazy listener: the HTTP response is the ack itself, sent
    # as soon as ``ack_command`` returns; bolt's non-lazy mode instead polls for the ack
    # every 10 ms, which would put a floor of ~10 ms under every command.
    app = AsyncApp(signing_secret=signing_secret, client=client, process_before_response=True)
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

    async def ack_command(ack: Any, body: dict[str, Any], context: Any) -> None:
        context[LANE_TICKET] = lanes.take(team_of(body), mutates=mutates(body.get("text") or ""))
        await ack()

    async def ack_click(ack: Any, body: dict[str, Any], context: Any) -> None:
        # Every button is treated as a change (resend, approve…): reads behind it wait for it.
        context[LANE_TICKET] = lanes.take(team_of(body), mutates=True)
        await ack()

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
                await respond_reliably(url, message, base_delay=response_delay)
            elif dm_without_url and user:
                await poster.post(user, Reply(text=text, blocks=tuple(blocks or ()), ephemeral=False))
            else:
                log.warning("command reply dropped: the request had no response_url user=%s", user)

        return respond

    async def on_invoicing(body: dict[str, Any], context: Any) -> None:
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        respond = responder(body, user)

        async with lanes.turn(context.get(LANE_TICKET)):
            ctx = await context_for(body, user, channel)
            if ctx is not None:
                log.info("command tenant=%s user=%s text=%r", ctx.tenant.name, user, (body.get("text") or "")[:200])
                reply = await dispatch(body.get("text") or "", ctx)
        if ctx is None:
            await respond(md(SETUP_HINT, team=team_of(body) or "T…"))
            return
        here = {channel, f"#{body.get('channel_name', '')}"}
        await deliver(reply, respond=respond, channel=channel, here=here, user=user, trigger_id=body.get("trigger_id"))

    app.command("/invoicing")(ack=ack_command, lazy=[on_invoicing])

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

    async def on_click(body: dict[str, Any], context: Any) -> None:
        action = (body.get("actions") or [{}])[0]
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        posted = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
        ts = str(posted.get("ts") or container.get("message_ts") or "")
        respond = responder(body, user, dm_without_url=True, replace_original=False)

        name = str(action.get("action_id") or "").removeprefix(ACTION_PREFIX)
        async with lanes.turn(context.get(LANE_TICKET)):
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

    app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))(ack=ack_click, lazy=[on_click])

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
            await ack(response_action="errors", errors={
                ADDRESS_FIELD: "Earlier changes of this workspace are still being applied; submit again in a moment."})
            return
        except InvoiceBotError as exc:
            reason = exc.reason if isinstance(exc, InvalidInput) else exc.message
            await ack(response_action="errors", errors={ADDRESS_FIELD: reason})
            return
        except Exception:  # a bug: the form says so (with a log reference) instead of a 500
            ref = uuid.uuid4().hex[:8]
            log.exception("address form failed ref=%s user=%s", ref, user)
            await ack(response_action="errors",
                      errors={ADDRESS_FIELD: f"Something went wrong on our side (ref {ref})."})
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

        _background(after())

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
    async def ack_event(ack: Any) -> None:  # a read: no lane ticket
        await ack()

    app.event("app_home_opened")(ack=ack_event, lazy=[on_home_opened])

    @app.view(MODAL_CALLBACK)
    async def on_accounting_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = (body.get("user") or {}).get("id", "")
        # The answer (errors or close) is the ack itself, so the turn is awaited here, bounded.
        ticket = lanes.take(team_of(body), mutates=True)
        try:
            async with lanes.turn(ticket, wait=VIEW_LANE_WAIT_SECONDS):
                reply = await _apply_accounting(ack, body, view, user)
        except LaneBusy:
            await ack(response_action="errors", errors={
                "legal_name": "Earlier changes of this workspace are still being applied; submit again in a moment."})
            return
        if reply is None:
            return
        # After the ack, off the response path: the DM may wait for the channel pacing.
        _background(dm(user, reply))

    async def _apply_accounting(ack: Any, body: dict[str, Any], view: dict[str, Any], user: str) -> Reply | None:
        """Validate and save the modal; ack with its errors (returning None) or return the reply to DM."""
        ctx = await context_for(body, user, "")
        if ctx is None:
            await ack(response_action="errors", errors={"legal_name": "This workspace is not linked to InvoiceBot."})
            return None
        try:
            reply = await submit_accounting_modal(view.get("private_metadata", ""), view["state"]["values"], ctx)
        except InvalidInput as exc:
            await ack(response_action="errors", errors={exc.field: exc.reason})
            return None
        except InvoiceBotError as exc:
            await ack(response_action="errors", errors={"legal_name": exc.message})
            return None
        await ack()
        return reply

    async def dm(user: str, reply: Reply) -> None:
        for part in reply.parts():
            await poster.post(user, replace(part, ephemeral=False))

    return app, poster
