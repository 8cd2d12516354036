"""The Slack side of the notice outbox: post a queued notice, find one already posted.

``SlackNoticeChannel`` implements ``invoicing.delivery.notice_channel.NoticeChannel``
over a Web API client **without** slack_sdk's retry handlers: a blind re-send after
a timeout or a 5xx could post twice, so retrying is the notice worker's decision
(it first looks for the message by its metadata key). Posts share the per-channel
pacing of the command replies (``ChannelPoster``).

slack_sdk opens a new HTTP session (a TCP and TLS handshake) for every call unless
the client has one, so while the worker holds ``session()`` (a pass) the calls go
through one keep-alive session of this channel's own, closed when the last holder
leaves; the client passed in is never changed (it may be shared with the listeners).

Errors map to the worker's two kinds: HTTP 429 / ``ratelimited`` → rate limited
(with Retry-After); 5xx, Slack's ``internal_error``-like codes, timeouts and dropped
connections → transient (maybe posted); every other error code → permanent, kept as
the reason (``channel_not_found``, ``not_in_channel``, ``invalid_auth``…).
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_web import ChannelPoster
from commands.notifications import notice_reply
from invoicing.delivery.notice_channel import PermanentNoticeError, Posted, TransientNoticeError
from invoicing.delivery.notice_claims import QueuedNotice

#: The metadata event type every notice is posted with; its payload is ``{"key": dedupe_key}``.
EVENT_TYPE = "invoicebot_notice"
#: History pages read when looking for a notice (200 messages each).
HISTORY_PAGES = 10
_TRANSIENT_CODES = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}


def notice_client(token: str, base_url: str, *, timeout: int = 15) -> AsyncWebClient:
    """A Web API client with no automatic retries (the notice worker retries, deduplicated)."""
    return AsyncWebClient(token=token, base_url=base_url, timeout=timeout)


def _retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _classify(exc: SlackApiError) -> TransientNoticeError | PermanentNoticeError:
    status = int(getattr(exc.response, "status_code", 0) or 0)
    data = getattr(exc.response, "data", None)
    code = str(data.get("error") or "") if isinstance(data, dict) else ""
    if status == 429 or code == "ratelimited":
        return TransientNoticeError(code or "http_429 rate limited", retry_after=_retry_after(exc), rate_limited=True)
    if status >= 500 or code in _TRANSIENT_CODES:
        return TransientNoticeError(code or f"http_{status}", retry_after=_retry_after(exc))
    return PermanentNoticeError(code or f"http_{status}")


async def _call(request: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await request()
    except SlackApiError as exc:
        raise _classify(exc) from exc
    except aiohttp.ClientConnectorError as exc:  # never reached Slack: certainly not posted
        raise TransientNoticeError(f"connection failed: {type(exc).__name__}", maybe_posted=False) from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise TransientNoticeError(f"no answer from Slack: {type(exc).__name__}") from exc


class SlackNoticeChannel:
    """Posts notices with ``chat.postMessage`` and reads ``conversations.history`` to deduplicate."""

    def __init__(self, client: AsyncWebClient, pacer: ChannelPoster) -> None:
        self._client = client
        self._pacer = pacer
        self._shared: AsyncWebClient | None = None  # the client with this channel's session, while held
        self._holders = 0

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Calls made while this is entered (by anyone) share one keep-alive HTTP session."""
        if self._holders == 0:
            shared = copy.copy(self._client)
            shared.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._client.timeout))
            self._shared = shared
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0 and self._shared is not None:
                session, self._shared = self._shared.session, None
                if session is not None:
                    await session.close()

    @property
    def _web(self) -> AsyncWebClient:
        return self._shared if self._shared is not None else self._client

    async def post(self, notice: QueuedNotice) -> Posted:
        reply = notice_reply(notice.kind, notice.payload)
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"key": notice.dedupe_key}}
        client = self._web
        response = await _call(lambda: self._pacer.paced(notice.channel, lambda: client.chat_postMessage(
            channel=notice.channel, text=reply.text, blocks=list(reply.blocks) or None, metadata=metadata)))
        return Posted(channel_id=str(response.get("channel") or notice.channel), ts=str(response.get("ts") or ""))

    async def find(self, notice: QueuedNotice, channel_id: str) -> str | None:
        oldest = f"{notice.created_at.timestamp() - 60:.6f}"  # a minute of slack for clock skew
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await _call(functools.partial(self._web.conversations_history, channel=channel_id,
                                                 oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor))
            for item in page.get("messages") or []:
                meta = item.get("metadata") or {}
                if meta.get("event_type") == EVENT_TYPE and \
                        (meta.get("event_payload") or {}).get("key") == notice.dedupe_key:
                    return str(item.get("ts") or "")
            cursor = ((page.get("response_metadata") or {}).get("next_cursor")) or None
            if not cursor:
                return None
        return None
