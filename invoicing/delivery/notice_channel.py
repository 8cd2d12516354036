"""The Slack side of the notice worker as the worker sees it: post, look up, and the two kinds of failure.

``invoicing.delivery.slack_notices`` drives a ``NoticeChannel``; ``bot/notifier.py``
implements it over the Slack Web API. The worker decides retries from the error kind
alone, so an implementation must raise ``TransientNoticeError`` (with
``rate_limited`` for a 429, ``maybe_posted`` when Slack may have posted anyway) or
``PermanentNoticeError``, never a transport exception.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from invoicing.delivery.notice_claims import QueuedNotice
from invoicing.errors import InvoiceBotError


class NoticeError(InvoiceBotError):
    """A Slack call for a notice failed; ``reason`` is Slack's error code or what went wrong."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The Slack notice was not posted: {reason}")


class TransientNoticeError(NoticeError):
    """Worth retrying. ``rate_limited``: Slack refused it (429), so it was certainly not posted.

    ``maybe_posted``: Slack may have posted it anyway (timeout, 5xx); ``retry_after`` in seconds.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, rate_limited: bool = False,
                 maybe_posted: bool = True) -> None:
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.maybe_posted = maybe_posted and not rate_limited
        super().__init__(reason)


class PermanentNoticeError(NoticeError):
    """Retrying will not help (channel_not_found, not_in_channel, invalid_auth…)."""


@dataclass(frozen=True)
class Posted:
    channel_id: str
    ts: str


class NoticeChannel(Protocol):
    """The Slack side: post a notice (with its key as metadata), find one already posted."""

    def session(self) -> AbstractAsyncContextManager[None]:
        """While entered, calls may share connections (one per pass, not one per post); re-entrant."""
        ...

    async def post(self, notice: QueuedNotice) -> Posted: ...

    async def find(self, notice: QueuedNotice, channel_id: str) -> str | None:
        """The ts of a message in ``channel_id`` since ``notice.created_at`` carrying its key, if any."""
        ...
