"""Slack Web API plumbing shared by the adapter's listeners: the client, paced posting, replies, admin checks.

* ``chat.postMessage`` allows about one message per second per channel: posts go through
  ``ChannelPoster``, which paces each channel and honours 429 Retry-After (slack_sdk's
  rate-limit retry handler) instead of dropping messages.
* A command reply through ``response_url`` that meets a 5xx/429 is retried a few times
  (``respond_reliably``), never persisted (Slack accepts 5 uses of the URL in 30 minutes).
  Served over HTTP, replies share one keep-alive HTTP session (``ReplySession``, held by
  ``SlackApp``): a new session per reply cost a TCP (and TLS) handshake and more CPU than
  the rest of answering a short command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
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

from commands.replies import Reply
from models import Tenant

log = logging.getLogger(__name__)

#: Tries of one command reply through its ``response_url`` (Slack allows 5 uses in 30 minutes).
RESPONSE_URL_ATTEMPTS = 4
#: Channels with pacing state kept before idle ones are forgotten.
_SWEEP_AT = 1024
#: Seconds one try of a command reply may take (slack_sdk's webhook default).
REPLY_TIMEOUT = 30.0


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
        lock = self._locks.get(channel)
        if lock is None:
            if len(self._locks) >= _SWEEP_AT:
                self._forget_idle()
            lock = self._locks[channel] = asyncio.Lock()
        async with lock:
            wait = self._last.get(channel, -1e9) + self.min_interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await call()
            finally:
                self._last[channel] = self._clock()

    def _forget_idle(self) -> None:
        """Drop the state of channels nobody is posting to whose interval has passed (a burst posts once
        to each of thousands of channels); forgetting such a channel changes no wait. A holder sets
        ``_last`` before it releases the lock, so a channel whose lock is about to pass to a waiter is
        still within its interval and kept."""
        now = self._clock()
        for channel in [c for c, lock in self._locks.items()
                        if not lock.locked() and self._last.get(c, -1e9) + self.min_interval <= now]:
            del self._locks[channel]
            self._last.pop(channel, None)

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


class ReplySession:
    """The HTTP session the command replies of one Slack app share, once someone will close it.

    Until ``keep_open`` (called by whoever also calls ``close`` when the service stops:
    ``bot.http.add_slack_routes``, with the web app's cleanup), ``session`` is None and each
    reply opens and closes a session of its own; after ``close`` too, so a late reply still
    goes out. The shared session is opened on first use (inside the running loop); as with a
    session per reply, any number of replies may be in flight (no connection limit) and each
    try is bounded by ``timeout`` seconds.
    """

    def __init__(self, timeout: float = REPLY_TIMEOUT) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._kept = False

    def keep_open(self) -> None:
        """Share one session from now on; the caller promises to ``close`` it."""
        self._kept = True

    def session(self) -> aiohttp.ClientSession | None:
        """The shared session, or None: the reply opens its own."""
        if not self._kept:
            return None
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout),
                                                  connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def close(self) -> None:
        self._kept = False
        if self._session is not None:
            await self._session.close()
            self._session = None


class SlackApp(AsyncApp):
    """Bolt's app with the session its command replies may share (``ReplySession``)."""

    def __init__(self, *, replies: ReplySession, **options: Any) -> None:
        super().__init__(**options)
        self.replies = replies


async def respond_reliably(response_url: str, message: dict[str, Any], *, attempts: int = RESPONSE_URL_ATTEMPTS,
                           base_delay: float = 1.0, session: aiohttp.ClientSession | None = None) -> bool:
    """POST a command reply to its ``response_url``; retry 5xx, 429 and network errors a few times.

    Slack accepts 5 uses of a ``response_url`` within 30 minutes, so at most
    ``attempts`` tries, ``base_delay × 2^k`` seconds apart (Retry-After when longer,
    capped at 30 s). Returns whether Slack took it; a reply that never arrives is
    logged at warning, without the URL (it lets anyone answer in the channel).
    ``session`` (a ``ReplySession``'s) is used, not closed; without it each call
    opens and closes its own.
    """
    client = AsyncWebhookClient(url=response_url, session=session)
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


def background(coro: Awaitable[Any]) -> None:
    """Run ``coro`` without awaiting it; keep a reference so it is not garbage-collected."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
