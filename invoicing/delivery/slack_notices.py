"""The Slack notice worker: turns committed ``SlackNotice`` rows into messages in their channels.

The same state machine as the e-mail outbox (``invoicing.delivery.outbox``)::

    pending ──claim──▶ sending ──post──▶ sent (message ts kept)
       ▲                  │ 429: back to pending after Retry-After (no attempt used)
       │                  │ 5xx / timeout / no connection: back to pending with backoff
       └──────────────────┤ a permanent error (channel_not_found, not_in_channel,
                          │ invalid_auth…) or the last allowed attempt: failed, reason kept
                          └ crash: lease expires, ``recover_unknown`` re-queues it

**Chunks.** A pass claims its rows a chunk at a time (``chunk`` rows, oldest due
first) with one conditional UPDATE committed before any of them is posted; only the
rows that UPDATE changed are this worker's, so two workers or replicas never post one
row concurrently. What became of a chunk's rows (sent with its ts, deferred, failed)
is written in one UPDATE, in the same transaction as the next chunk's claim (the last
chunk's alone), and only where the row is still held under this claim
(``invoicing.delivery.notice_claims``). While ``sending``, ``next_attempt_at`` is the
lease (``lease_seconds``, longer than a lookup plus a post); before each post the
worker renews the lease of the whole chunk once a third of it has passed, so a slow
chunk keeps its rows, and a row whose lease was lost anyway is skipped.

**At-least-once, deduplicated.** Every post carries the row's ``dedupe_key`` as Slack
message metadata. When an earlier attempt's outcome is unknown (the worker died
mid-chunk, the request timed out, Slack answered 5xx) the row is marked
``outcome_unknown``; before posting it again the worker looks for its key in the
channel's history since the row was created and, if found, records that message as
sent instead of posting twice. If the history cannot be read (no channel id known
yet, a missing scope), it posts anyway: a lost notice is worse than a duplicate.

**What a crash costs.** A worker that dies mid-chunk has recorded nothing of that
chunk: after the lease every row of it (at most ``chunk``) is re-queued as outcome
unknown and checked in its channel's history before it is posted again, so the rows it
had posted are found there, not posted twice. Rows it had not claimed are untouched.
A pass that fails or is cancelled mid-chunk first records what its posts did.

**Order.** Within a chunk, a channel's rows are posted one after another in
``next_attempt_at``, id order (channels in parallel, ``lanes`` at a time), and the
next chunk is claimed when the chunk is done, so a channel's rows are also posted in
that order across the chunks of a pass. Nothing orders two workers' passes.

**Rate limits.** A 429 means Slack did not post; the row waits ``Retry-After`` and
the attempt is given back, so no number of 429s drops a notice. The channel's later
rows in the chunk are given back unposted (no attempt used) to just after that time,
keeping their order, and this worker posts nothing more to that channel until then.
Other transient failures back off ``min(max_backoff, base × 2^(attempts-1))`` seconds
(at least Retry-After when sent) and fail after ``max_attempts``.

The Slack calls themselves are the ``NoticeChannel`` passed in (``bot/notifier.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from invoicing.clock import Clock, utc_now
from invoicing.delivery.notice_attempts import Attempts, Done, Lease
from invoicing.delivery.notice_channel import NoticeChannel
from invoicing.delivery.notice_claims import Finish, QueuedNotice, claim_due, finish, recover_expired
from invoicing.retrying import atomic_retry
from models import NoticeStatus, SlackNotice

log = logging.getLogger(__name__)


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
        chunk: int = 25,
    ) -> None:
        self._channel = channel
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self._chunk = max(1, chunk)
        self._attempts = Attempts(channel, clock, max_attempts=max_attempts, base_backoff=base_backoff_seconds,
                                  max_backoff=max_backoff, default_retry_after=default_retry_after, lanes=lanes)

    async def deliver_due(self, limit: int = 100) -> list[NoticeOutcome]:
        """Post up to ``limit`` due notices, oldest first; channels in parallel, each channel in order."""
        outcomes: list[NoticeOutcome] = []
        done: list[Done] = []  # the previous chunk's results, written with the next claim
        left, first = limit, True
        async with self._channel.session():
            while left > 0:
                size = min(self._chunk, left)
                now = self._clock()
                recovered, written, chunk = await atomic_retry(
                    functools.partial(self._write_and_claim, done, now, size, first))
                _log_recovered(recovered)
                outcomes += _settled(done, written)
                done, first = [], False
                if not chunk:
                    return outcomes
                left -= len(chunk)
                done = await self._work(chunk, now)
                if len(chunk) < size:
                    break  # nothing more was due
            return outcomes + await _write(done)

    async def deliver_key(self, key: str) -> NoticeOutcome | None:
        """Post the notice with ``dedupe_key`` ``key`` now if it is due; None if there is none or another has it."""
        now = self._clock()
        async with self._channel.session():
            chunk = await claim_due(now=now, lease_until=now + self._lease, limit=1, key=key)
            if not chunk:
                return None
            outcomes = await _write(await self._work(chunk, now))
        return outcomes[0] if outcomes else None

    async def next_due_at(self) -> datetime | None:
        """When the next pass has work: the earliest retry time or lease expiry (None: nothing waits)."""
        first = await SlackNotice.filter(status__in=[NoticeStatus.PENDING, NoticeStatus.SENDING],
                                         next_attempt_at__not_isnull=True) \
            .order_by("next_attempt_at").first().values_list("next_attempt_at", flat=True)
        return first if isinstance(first, datetime) else None

    async def recover_unknown(self) -> int:
        """Re-queue ``sending`` rows whose lease expired (a worker stopped mid-chunk); return how many.

        ``deliver_due`` does this first, in the transaction of its first claim."""
        recovered = await recover_expired(self._clock())
        _log_recovered(recovered)
        return len(recovered)

    async def _write_and_claim(self, done: list[Done], now: datetime, size: int, recover: bool,
                               _: BaseDBAsyncClient) -> tuple[list[tuple[int, str, int]], set[int], list[QueuedNotice]]:
        """One transaction: (on a pass's first claim) recover expired leases, write the previous chunk, claim."""
        recovered = await recover_expired(now) if recover else []
        written = await finish([d.finish for d in done])
        return recovered, written, await claim_due(now=now, lease_until=now + self._lease, limit=size)

    async def _work(self, chunk: list[QueuedNotice], claimed_at: datetime) -> list[Done]:
        """Post a claimed chunk; what became of each row (not written yet). On a failure or cancellation,
        what the posts did is written first, so only the rows still in doubt wait for the lease."""
        lanes: dict[str, list[QueuedNotice]] = {}
        for notice in chunk:
            lanes.setdefault(notice.channel, []).append(notice)
        lease = Lease(chunk, claimed_at, self._lease, self._clock)
        done: list[Done] = []
        try:
            results = await asyncio.gather(*(self._attempts.lane(rows, lease, done) for rows in lanes.values()),
                                           return_exceptions=True)
        except BaseException:
            await _write(done)
            raise
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await _write(done)
            raise errors[0]
        return done


async def _write(done: list[Done]) -> list[NoticeOutcome]:
    """Write a chunk's results in a transaction of their own (the last chunk of a pass, or after a failure)."""
    if not done:
        return []
    return _settled(done, await atomic_retry(lambda _: finish([d.finish for d in done])))


def _settled(done: list[Done], written: set[int]) -> list[NoticeOutcome]:
    """The outcomes of the rows written (logged); a row not written had changed under us."""
    outcomes = []
    for item in done:
        move: Finish = item.finish
        if move.notice_id not in written:
            log.warning("notice changed under us notice=%d wanted=%s", move.notice_id, move.status)
            continue
        if item.message:
            log.log(item.level, item.message, *item.args)
        if item.reported:
            outcomes.append(NoticeOutcome(move.notice_id, move.status, item.error, move.attempts))
    return outcomes


def _log_recovered(recovered: list[tuple[int, str, int]]) -> None:
    for notice_id, key, attempts in recovered:
        log.warning("notice outcome unknown notice=%d key=%s attempts=%d", notice_id, key, attempts)


def _due(now: datetime) -> Q:
    """The due condition of ``claim_due`` as an ORM filter (benchmarks/queue_history.py times its index use)."""
    return Q(status=NoticeStatus.PENDING) & (Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))

