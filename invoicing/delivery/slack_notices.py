"""The Slack notice worker: turns committed ``SlackNotice`` rows into messages in their channels.

The same state machine as the e-mail outbox (``invoicing.delivery.outbox``)::

    pending ──claim──▶ sending ──post──▶ sent (message ts kept)
       ▲                  │ 429: back to pending after Retry-After (no attempt used)
       │                  │ 5xx / timeout / no connection: back to pending with backoff
       └──────────────────┤ a permanent error (channel_not_found, not_in_channel,
                          │ invalid_auth…) or the last allowed attempt: failed, reason kept
                          └ crash: lease expires, ``recover_unknown`` re-queues it

**Claim.** ``pending → sending`` is a conditional UPDATE committed before the post;
only the worker whose UPDATE changed the row posts it. While ``sending``,
``next_attempt_at`` is the lease (``lease_seconds``, longer than a lookup plus a post).

**At-least-once, deduplicated.** Every post carries the row's ``dedupe_key`` as Slack
message metadata. When an earlier attempt's outcome is unknown (the worker died
mid-post, the request timed out, Slack answered 5xx) the row is marked
``outcome_unknown``; before posting it again the worker looks for its key in the
channel's history since the row was created and, if found, records that message as
sent instead of posting twice. If the history cannot be read (no channel id known
yet, a missing scope), it posts anyway: a lost notice is worse than a duplicate.

**Rate limits.** A 429 means Slack did not post; the row waits ``Retry-After`` and
the attempt is given back, so no number of 429s drops a notice. The rest of that
channel's rows wait for the next pass. Other transient failures back off
``min(max_backoff, base × 2^(attempts-1))`` seconds (at least Retry-After when sent)
and fail after ``max_attempts``.

The Slack calls themselves are the ``NoticeChannel`` passed in (``bot/notifier.py``);
it raises ``TransientNoticeError`` or ``PermanentNoticeError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tortoise.expressions import F, Q

from invoicing.backoff import retry_delay
from invoicing.clock import Clock, utc_now
from invoicing.errors import InvoiceBotError
from models import NoticeStatus, SlackNotice

log = logging.getLogger(__name__)

UNKNOWN_OUTCOME = "outcome of the last post unknown; the channel is checked before posting again"
#: Slack channel ids (public C…, private G…, DM D…); a name such as ``#billing`` is not one.
_ID_PREFIXES = ("C", "G", "D")


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

    async def post(self, notice: SlackNotice) -> Posted: ...

    async def find(self, notice: SlackNotice, channel_id: str) -> str | None:
        """The ts of a message in ``channel_id`` since ``notice.created_at`` carrying its key, if any."""
        ...


@dataclass(frozen=True)
class NoticeOutcome:
    """What happened to one notice in one ``deliver_due`` call."""

    notice_id: int
    status: NoticeStatus
    error: str
    attempts: int


class NoticeOutbox:
    """Posts due Slack notices through ``channel``; safe to run in several workers at once."""

    def __init__(
        self,
        channel: NoticeChannel,
        clock: Clock = utc_now,
        *,
        max_attempts: int = 10,
        base_backoff_seconds: float = 10,
        max_backoff: float = 1800,
        lease_seconds: float = 120,
        default_retry_after: float = 5,
        lanes: int = 4,
    ) -> None:
        self._channel = channel
        self._clock = clock
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff_seconds
        self._max_backoff = max_backoff
        self._lease = timedelta(seconds=lease_seconds)
        self._default_retry_after = default_retry_after
        self._lanes = asyncio.Semaphore(max(1, lanes))

    async def deliver_due(self, limit: int = 100) -> list[NoticeOutcome]:
        """Post up to ``limit`` due notices, oldest first; channels in parallel, each channel in order."""
        await self.recover_unknown()
        due = await SlackNotice.filter(_due(self._clock())).order_by("next_attempt_at", "id").limit(limit)
        by_channel: dict[str, list[SlackNotice]] = {}
        for notice in due:
            by_channel.setdefault(notice.channel, []).append(notice)
        results = await asyncio.gather(*(self._channel_lane(rows) for rows in by_channel.values()))
        return [outcome for lane in results for outcome in lane]

    async def deliver_key(self, key: str) -> NoticeOutcome | None:
        """Post the notice with ``dedupe_key`` ``key`` now if it is due; None if there is none or another has it."""
        notice = await SlackNotice.get_or_none(_due(self._clock()), dedupe_key=key)
        if notice is None:
            return None
        outcome, _ = await self._deliver(notice)
        return outcome

    async def next_due_at(self) -> datetime | None:
        """When the next pass has work: the earliest retry time or lease expiry (None: nothing waits)."""
        first = await SlackNotice.filter(status__in=[NoticeStatus.PENDING, NoticeStatus.SENDING]) \
            .exclude(next_attempt_at=None).order_by("next_attempt_at").first()
        return first.next_attempt_at if first is not None else None

    async def recover_unknown(self) -> int:
        """Re-queue ``sending`` rows whose lease expired (a worker stopped mid-post); return how many."""
        now = self._clock()
        stale = await SlackNotice.filter(status=NoticeStatus.SENDING, next_attempt_at__lte=now)
        recovered = 0
        for row in stale:
            updated = await SlackNotice.filter(id=row.id, status=NoticeStatus.SENDING, next_attempt_at__lte=now) \
                .update(status=NoticeStatus.PENDING, next_attempt_at=now, outcome_unknown=True,
                        last_error=UNKNOWN_OUTCOME)
            if updated:
                recovered += 1
                log.warning("notice outcome unknown notice=%d key=%s attempts=%d", row.id, row.dedupe_key,
                            row.attempts)
        return recovered

    async def _channel_lane(self, rows: Iterable[SlackNotice]) -> list[NoticeOutcome]:
        outcomes: list[NoticeOutcome] = []
        async with self._lanes:
            for notice in rows:
                outcome, rate_limited = await self._deliver(notice)
                if outcome is not None:
                    outcomes.append(outcome)
                if rate_limited:  # the channel is throttled: its other rows wait for the next pass
                    break
        return outcomes

    async def _deliver(self, notice: SlackNotice) -> tuple[NoticeOutcome | None, bool]:
        if not await self._claim(notice):
            log.info("notice claimed by another worker notice=%d", notice.id)
            return None, False
        try:
            if notice.outcome_unknown:
                found = await self._find(notice)
                if found is not None:
                    return await self._finish_sent(notice, found, "found already posted"), False
            posted = await self._channel.post(notice)
        except TransientNoticeError as exc:
            return await self._retry_later(notice, exc), exc.rate_limited
        except PermanentNoticeError as exc:
            return await self._finish_failed(notice, exc.reason), False
        return await self._finish_sent(notice, posted, ""), False

    async def _find(self, notice: SlackNotice) -> Posted | None:
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

    async def _channel_id(self, notice: SlackNotice) -> str:
        if notice.channel_id:
            return notice.channel_id
        if notice.channel.startswith(_ID_PREFIXES):
            return notice.channel
        # A channel configured by name: the id Slack answered with for an earlier notice to it.
        known = await SlackNotice.filter(tenant_id=notice.tenant_id, channel=notice.channel) \
            .exclude(channel_id="").order_by("-id").first().values_list("channel_id", flat=True)
        return str(known) if known else ""

    async def _claim(self, notice: SlackNotice) -> bool:
        now = self._clock()
        claimed = await SlackNotice.filter(_due(now), id=notice.id).update(
            status=NoticeStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + self._lease)
        if claimed:
            notice.attempts += 1
        return claimed == 1

    async def _retry_later(self, notice: SlackNotice, exc: TransientNoticeError) -> NoticeOutcome | None:
        now = self._clock()
        if exc.rate_limited:  # not posted, and not the notice's fault: the attempt is given back
            delay = exc.retry_after if exc.retry_after is not None else self._default_retry_after
            if not await self._move(notice, status=NoticeStatus.PENDING, attempts=F("attempts") - 1,
                                    next_attempt_at=now + timedelta(seconds=delay), last_error=exc.reason):
                return None
            notice.attempts -= 1
            log.info("notice rate limited notice=%d channel=%s retry_in=%.1fs", notice.id, notice.channel, delay)
            return NoticeOutcome(notice.id, NoticeStatus.PENDING, exc.reason, notice.attempts)
        if notice.attempts >= self._max_attempts:
            return await self._finish_failed(notice, f"{exc.reason} (gave up after {notice.attempts} attempts)")
        delay = retry_delay(notice.attempts, base=self._base_backoff, cap=self._max_backoff)
        delay = max(delay, exc.retry_after or 0.0)
        if not await self._move(notice, status=NoticeStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay),
                                last_error=exc.reason, outcome_unknown=notice.outcome_unknown or exc.maybe_posted):
            return None
        log.info("notice deferred notice=%d channel=%s attempts=%d retry_in=%.0fs reason=%s",
                 notice.id, notice.channel, notice.attempts, delay, exc.reason)
        return NoticeOutcome(notice.id, NoticeStatus.PENDING, exc.reason, notice.attempts)

    async def _finish_failed(self, notice: SlackNotice, reason: str) -> NoticeOutcome | None:
        if not await self._move(notice, status=NoticeStatus.FAILED, next_attempt_at=None, last_error=reason):
            return None
        log.warning("notice failed notice=%d channel=%s attempts=%d reason=%s", notice.id, notice.channel,
                    notice.attempts, reason)
        return NoticeOutcome(notice.id, NoticeStatus.FAILED, reason, notice.attempts)

    async def _finish_sent(self, notice: SlackNotice, posted: Posted, note: str) -> NoticeOutcome | None:
        changes: dict[str, object] = {"status": NoticeStatus.SENT, "next_attempt_at": None, "sent_at": self._clock(),
                                      "message_ts": posted.ts, "channel_id": posted.channel_id[:20]}
        if note:
            changes["last_error"] = note
        if not await self._move(notice, **changes):
            return None
        log.info("notice sent notice=%d key=%s channel=%s ts=%s attempts=%d%s", notice.id, notice.dedupe_key,
                 posted.channel_id, posted.ts, notice.attempts, f" note={note}" if note else "")
        return NoticeOutcome(notice.id, NoticeStatus.SENT, "", notice.attempts)

    async def _move(self, notice: SlackNotice, **changes: object) -> bool:
        """Apply ``changes`` only while the row is still ``sending`` (still ours)."""
        updated = await SlackNotice.filter(id=notice.id, status=NoticeStatus.SENDING).update(**changes)
        if not updated:
            log.warning("notice changed under us notice=%d wanted=%s", notice.id, changes.get("status"))
        return bool(updated)


def _due(now: datetime) -> Q:
    return Q(status=NoticeStatus.PENDING) & (Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
