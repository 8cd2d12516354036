"""Posting a claimed chunk of Slack notices: one lane per channel, and what each attempt makes of its row.

Nothing here writes to the database except the lease renewal: each attempt yields a
``Done`` (the row's next state, ``notice_claims.Finish``, and what to log once it is
written), and ``invoicing.delivery.slack_notices`` writes a chunk's results together.
The rules are the worker's (its module docstring): 429 gives the attempt back and
holds the channel until Retry-After, other transient errors back off, permanent ones
fail, and a row whose earlier outcome is unknown is looked up before it is posted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from invoicing.backoff import retry_delay
from invoicing.clock import Clock
from invoicing.delivery.notice_channel import NoticeChannel, PermanentNoticeError, Posted, TransientNoticeError
from invoicing.delivery.notice_claims import Finish, QueuedNotice, renew
from models import NoticeStatus, SlackNotice

log = logging.getLogger("invoicing.delivery.slack_notices")

#: Slack channel ids (public C…, private G…, DM D…); a name such as ``#billing`` is not one.
_ID_PREFIXES = ("C", "G", "D")
#: Rows given back behind a 429 are due this much apart after Retry-After, keeping their order.
_STEP = timedelta(microseconds=1)


@dataclass(frozen=True)
class Done:
    """What became of one claimed row: its next state and what to log once that is written.

    ``reported``: it belongs in ``deliver_due``'s outcomes (a row given back unposted does not)."""

    finish: Finish
    reported: bool = True
    error: str = ""
    level: int = logging.INFO
    message: str = ""
    args: tuple[object, ...] = ()


class Lease:
    """The lease on a claimed chunk: renewed for all its rows once a third of it has passed.

    Renewal happens before a post (``hold``), so a row's post starts with at least two
    thirds of the lease left; a row whose lease was lost meanwhile is not posted."""

    def __init__(self, chunk: Sequence[QueuedNotice], claimed_at: datetime, length: timedelta, clock: Clock) -> None:
        self._held = list(chunk)
        self._lost: set[int] = set()
        self._renewed_at = claimed_at
        self._length = length
        self._clock = clock
        self._lock = asyncio.Lock()

    def _due(self) -> bool:
        return self._clock() - self._renewed_at >= self._length / 3

    async def hold(self, notice: QueuedNotice) -> bool:
        """Whether ``notice`` is still this worker's to post (renewing the chunk's lease when due)."""
        if self._due():
            async with self._lock:
                if self._due():
                    now = self._clock()
                    held = [n for n in self._held if n.id not in self._lost]
                    kept = await renew(held, until=now + self._length)
                    self._lost.update(n.id for n in held if n.id not in kept)
                    self._renewed_at = now
        if notice.id in self._lost:
            log.warning("notice lease lost, not posted notice=%d key=%s", notice.id, notice.dedupe_key)
            return False
        return True


class Attempts:
    """Posts a channel's claimed rows in order; remembers channels Slack rate limited until when."""

    def __init__(self, channel: NoticeChannel, clock: Clock, *, max_attempts: int, base_backoff: float,
                 max_backoff: float, default_retry_after: float, lanes: int) -> None:
        self._channel = channel
        self._clock = clock
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._default_retry_after = default_retry_after
        self._lanes = asyncio.Semaphore(max(1, lanes))
        self._throttled: dict[str, datetime] = {}

    async def lane(self, rows: Sequence[QueuedNotice], lease: Lease, done: list[Done]) -> None:
        """Post ``rows`` (one channel's, in order) one after another, appending what became of each to ``done``."""
        async with self._lanes:
            for i, notice in enumerate(rows):
                until = self._throttled_until(notice.channel)
                if until is not None:  # Slack refused this channel: its later rows wait, in order
                    done.extend(_given_back(rows[i:], until))
                    log.info("notice channel rate limited, %d notice(s) wait channel=%s until=%s",
                             len(rows) - i, notice.channel, until.isoformat())
                    return
                if not await lease.hold(notice):
                    continue
                item, retry_at = await self._attempt(notice)
                done.append(item)
                if retry_at is not None:
                    self._throttled[notice.channel] = retry_at

    def _throttled_until(self, channel: str) -> datetime | None:
        until = self._throttled.get(channel)
        if until is not None and until <= self._clock():
            del self._throttled[channel]
            return None
        return until

    async def _attempt(self, notice: QueuedNotice) -> tuple[Done, datetime | None]:
        """Post (or find) one notice; the second value is when a 429 lets the channel be posted to again."""
        try:
            if notice.outcome_unknown:
                found = await self._find(notice)
                if found is not None:
                    return self._sent(notice, found, "found already posted"), None
            posted = await self._channel.post(notice)
        except TransientNoticeError as exc:
            return self._retry_later(notice, exc)
        except PermanentNoticeError as exc:
            return self._failed(notice, exc.reason), None
        return self._sent(notice, posted, ""), None

    async def _find(self, notice: QueuedNotice) -> Posted | None:
        """The message an earlier attempt posted, or None (also when the history cannot be read)."""
        channel_id = await self._channel_id(notice)
        if not channel_id:
            log.warning("notice re-posted without a history check (no channel id known) notice=%d channel=%s",
                        notice.id, notice.channel)
            return None
        try:
            ts = await self._channel.find(notice, channel_id)
        except PermanentNoticeError as exc:
            log.warning("notice re-posted without a history check notice=%d channel=%s error=%s",
                        notice.id, channel_id, exc.reason)
            return None
        return Posted(channel_id, ts) if ts else None

    @staticmethod
    async def _channel_id(notice: QueuedNotice) -> str:
        if notice.channel_id:
            return notice.channel_id
        if notice.channel.startswith(_ID_PREFIXES):
            return notice.channel
        # A channel configured by name: the id Slack answered with for an earlier notice to it.
        known = await SlackNotice.filter(tenant_id=notice.tenant_id, channel=notice.channel) \
            .exclude(channel_id="").order_by("-id").first().values_list("channel_id", flat=True)
        return str(known) if known else ""

    def _retry_later(self, notice: QueuedNotice, exc: TransientNoticeError) -> tuple[Done, datetime | None]:
        now = self._clock()
        if exc.rate_limited:  # not posted, and not the notice's fault: the attempt is given back
            delay = exc.retry_after if exc.retry_after is not None else self._default_retry_after
            retry_at = now + timedelta(seconds=delay)
            move = Finish(notice.id, notice.attempts, NoticeStatus.PENDING, notice.attempts - 1, retry_at,
                          notice.outcome_unknown, last_error=exc.reason)
            return Done(move, error=exc.reason, message="notice rate limited notice=%d channel=%s retry_in=%.1fs",
                        args=(notice.id, notice.channel, delay)), retry_at
        if notice.attempts >= self._max_attempts:
            return self._failed(notice, f"{exc.reason} (gave up after {notice.attempts} attempts)"), None
        delay = retry_delay(notice.attempts, base=self._base_backoff, cap=self._max_backoff)
        delay = max(delay, exc.retry_after or 0.0)
        move = Finish(notice.id, notice.attempts, NoticeStatus.PENDING, notice.attempts, now + timedelta(seconds=delay),
                      notice.outcome_unknown or exc.maybe_posted, last_error=exc.reason)
        return Done(move, error=exc.reason,
                    message="notice deferred notice=%d channel=%s attempts=%d retry_in=%.0fs reason=%s",
                    args=(notice.id, notice.channel, notice.attempts, delay, exc.reason)), None

    @staticmethod
    def _failed(notice: QueuedNotice, reason: str) -> Done:
        move = Finish(notice.id, notice.attempts, NoticeStatus.FAILED, notice.attempts, None, notice.outcome_unknown,
                      last_error=reason)
        return Done(move, error=reason, level=logging.WARNING,
                    message="notice failed notice=%d channel=%s attempts=%d reason=%s",
                    args=(notice.id, notice.channel, notice.attempts, reason))

    def _sent(self, notice: QueuedNotice, posted: Posted, note: str) -> Done:
        move = Finish(notice.id, notice.attempts, NoticeStatus.SENT, notice.attempts, None, notice.outcome_unknown,
                      last_error=note or None, sent_at=self._clock(), message_ts=posted.ts,
                      channel_id=posted.channel_id)
        return Done(move, message="notice sent notice=%d key=%s channel=%s ts=%s attempts=%d%s",
                    args=(notice.id, notice.dedupe_key, posted.channel_id, posted.ts, notice.attempts,
                          f" note={note}" if note else ""))


def _given_back(rows: Sequence[QueuedNotice], until: datetime) -> list[Done]:
    """Rows not posted because their channel is rate limited: pending again just after ``until``, in
    their order, with the attempt of this claim given back (reason and outcome_unknown kept)."""
    return [Done(Finish(n.id, n.attempts, NoticeStatus.PENDING, n.attempts - 1, until + _STEP * k, n.outcome_unknown),
                 reported=False) for k, n in enumerate(rows, 1)]
