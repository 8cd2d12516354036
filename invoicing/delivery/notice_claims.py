"""The statements of the Slack notice worker: claim a chunk, renew its lease, write what became of each row.

Each is one hand-written statement for any number of rows (``invoicing.sql.Statement``),
so a chunk of notices costs a few statements, not a few per notice.

**Claim** (``claim_due``) is one ``UPDATE … FROM (SELECT … ORDER BY next_attempt_at, id
LIMIT n [FOR UPDATE SKIP LOCKED]) … RETURNING``: due ``pending`` rows become ``sending``,
``attempts + 1``, ``next_attempt_at = lease``, and only the rows it changed come back. Two
workers never get one row: PostgreSQL locks the selected rows (a concurrent claimer skips
them) and re-checks the due condition on the newest row version; SQLite runs the
statement under its write lock.

**A claim is named by its row's attempt count.** Every claim raises ``attempts``, and a
row recovered after its lease (``recover_expired``) keeps the raised count, so a later
claim of it has a higher one. ``renew`` and ``finish`` therefore change a row only while
it is ``sending`` *with the attempt count this worker claimed it at*: a worker whose lease
ran out and whose row was claimed again cannot overwrite the newer claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from invoicing.sql import Statement, instant, json_value
from models import NoticeKind, NoticeStatus

#: What ``recover_expired`` writes as the reason of a row whose worker stopped mid-chunk.
UNKNOWN_OUTCOME = "outcome of the last post unknown; the channel is checked before posting again"
#: Sorts a row without ``next_attempt_at`` (never scheduled) first, as SQLite orders NULL.
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class QueuedNotice:
    """A claimed notice: what posting it needs, and ``attempts`` as claimed (this attempt counted)."""

    id: int
    tenant_id: int
    channel: str
    channel_id: str
    kind: NoticeKind
    payload: dict[str, Any]
    dedupe_key: str
    attempts: int
    outcome_unknown: bool
    created_at: datetime
    #: ``next_attempt_at`` before the claim: the order a channel's notices are posted in.
    due: datetime | None


@dataclass(frozen=True)
class Finish:
    """The state a claimed row moves to. ``None`` in ``last_error``, ``sent_at``, ``message_ts``,
    ``channel_id`` keeps the stored value; ``next_attempt_at`` is always written (``None``: no retry)."""

    notice_id: int
    claimed_attempts: int
    status: NoticeStatus
    attempts: int
    next_attempt_at: datetime | None
    outcome_unknown: bool
    last_error: str | None = None
    sent_at: datetime | None = None
    message_ts: str | None = None
    channel_id: str | None = None


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None  # SQLite compares the stored UTC ISO text


def _table(q: Statement, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> str:
    """A table ``v(<columns>)`` holding ``rows``, for ``UPDATE … FROM``: one array per column through
    ``unnest`` on PostgreSQL (one prepared statement for any row count), ``VALUES`` on SQLite."""
    names = [name for name, _ in columns]
    if q.postgres:
        arrays = ", ".join(f"{q([row[i] for row in rows])}::{pg_type}[]" for i, (_, pg_type) in enumerate(columns))
        return f"unnest({arrays}) AS v({', '.join(names)})"
    renamed = ", ".join(f"column{i + 1} AS {name}" for i, name in enumerate(names))
    values = ", ".join(f"({', '.join(q(value) for value in row)})" for row in rows)
    return f"(SELECT {renamed} FROM (VALUES {values})) AS v"


def _due(q: Statement, now: datetime) -> str:
    return (f"slack_notice.status = {q(NoticeStatus.PENDING.value)} "
            f"AND (slack_notice.next_attempt_at <= {q(now)} OR slack_notice.next_attempt_at IS NULL)")


async def recover_expired(now: datetime) -> list[tuple[int, str, int]]:
    """Put ``sending`` rows whose lease ran out back to ``pending``, outcome unknown, due now.

    Returns ``(id, dedupe_key, attempts)`` of each row recovered (by this call only)."""
    now = _utc(now) or now
    q = Statement()
    sql = (f"UPDATE slack_notice SET status = {q(NoticeStatus.PENDING.value)}, next_attempt_at = {q(now)}, "
           f"outcome_unknown = {q(True)}, last_error = {q(UNKNOWN_OUTCOME)} "
           f"WHERE status = {q(NoticeStatus.SENDING.value)} AND next_attempt_at <= {q(now)} "
           f"RETURNING id, dedupe_key, attempts")
    return [(int(row[0]), str(row[1]), int(row[2])) for row in await q.rows(sql)]


_RETURNED = ("id", "tenant_id", "channel", "channel_id", "kind", "payload", "dedupe_key", "attempts", "outcome_unknown",
             "created_at")


async def claim_due(*, now: datetime, lease_until: datetime, limit: int, key: str | None = None) -> list[QueuedNotice]:
    """Claim up to ``limit`` due notices (only the one with ``dedupe_key`` ``key`` when given) until
    ``lease_until``; returned in posting order (``next_attempt_at``, then id).

    On SQLite the rows are chosen by a ``SELECT`` before the ``UPDATE`` (whose ``RETURNING`` cannot
    show the ``next_attempt_at`` it replaced); the ``UPDATE`` re-checks the due condition, so a row
    another process took in between is just not returned (inside a transaction, which holds
    SQLite's write lock from its start, none can)."""
    now, lease_until = _utc(now) or now, _utc(lease_until) or lease_until
    q = Statement()
    only = f" AND dedupe_key = {q(key)}" if key is not None else ""
    select = (f"SELECT id, next_attempt_at FROM slack_notice WHERE {_due(q, now)}{only} "
              f"ORDER BY next_attempt_at, id LIMIT {q(limit)}{q.for_update(skip_locked=True)}")
    returned = ", ".join(f"slack_notice.{column}" for column in _RETURNED)
    if q.postgres:  # one statement: the replaced next_attempt_at comes back from the locked selection,
        # selected once (MATERIALIZED: as a subquery the planner may run it again per row, claiming more)
        claimed = await q.dicts(  # (``dicts``: ``rows`` fetches RETURNING rows only of a statement led by UPDATE)
            f"WITH c(claimed_id, due) AS MATERIALIZED ({select}) "
            f"UPDATE slack_notice SET {_claimed(q, lease_until)} FROM c "
            f"WHERE slack_notice.id = c.claimed_id AND {_due(q, now)} RETURNING {returned}, c.due")
        return _queued([tuple(row.values()) for row in claimed], {})
    chosen = {int(row[0]): instant(row[1]) for row in await q.rows(select)}
    if not chosen:
        return []
    q = Statement()
    rows = await q.rows(f"UPDATE slack_notice SET {_claimed(q, lease_until)} WHERE id {q.any_of(list(chosen), 'int')} "
                        f"AND {_due(q, now)} RETURNING {returned}")
    return _queued(rows, chosen)


def _claimed(q: Statement, lease_until: datetime) -> str:
    return f"status = {q(NoticeStatus.SENDING.value)}, attempts = attempts + 1, next_attempt_at = {q(lease_until)}"


def _queued(rows: list[tuple[Any, ...]], due: dict[int, datetime | None]) -> list[QueuedNotice]:
    """Claimed rows as values, in posting order; ``due`` by id where the rows do not end with it."""
    claimed = []
    for row in rows:
        created_at = instant(row[9])
        assert created_at is not None  # NOT NULL column
        claimed.append(QueuedNotice(
            id=int(row[0]), tenant_id=int(row[1]), channel=str(row[2]), channel_id=str(row[3] or ""),
            kind=NoticeKind(row[4]), payload=json_value(row[5]) or {}, dedupe_key=str(row[6]),
            attempts=int(row[7]), outcome_unknown=bool(row[8]), created_at=created_at,
            due=instant(row[10]) if len(row) > 10 else due.get(int(row[0]))))
    return sorted(claimed, key=lambda n: (n.due or _NEVER, n.id))


async def renew(held: Sequence[QueuedNotice], *, until: datetime) -> set[int]:
    """Extend the lease of the rows in ``held`` still claimed as they were; returns their ids."""
    if not held:
        return set()
    q = Statement()
    sql = (f"UPDATE slack_notice SET next_attempt_at = {q(_utc(until))} "
           f"FROM {_table(q, (('id', 'int'), ('claimed', 'int')), [(n.id, n.attempts) for n in held])} "
           f"WHERE {_still_held(q)} RETURNING slack_notice.id")
    return {int(row[0]) for row in await q.rows(sql)}


def _still_held(q: Statement) -> str:
    """The row of ``v.id`` is still ``sending`` under the claim that counted ``v.claimed`` attempts."""
    return (f"slack_notice.id = v.id AND slack_notice.attempts = v.claimed "
            f"AND slack_notice.status = {q(NoticeStatus.SENDING.value)}")


_FINISH_COLUMNS = (("id", "int"), ("claimed", "int"), ("status", "text"), ("attempts", "int"),
                   ("next_at", "timestamptz"), ("unknown", "bool"), ("error", "text"), ("sent_at", "timestamptz"),
                   ("ts", "text"), ("channel_id", "text"))


async def finish(moves: Sequence[Finish]) -> set[int]:
    """Write each row's new state, only where the row is still claimed as it was; returns the ids written."""
    if not moves:
        return set()
    q = Statement()
    rows = [(m.notice_id, m.claimed_attempts, m.status.value, m.attempts, _utc(m.next_attempt_at), m.outcome_unknown,
             m.last_error, _utc(m.sent_at), m.message_ts, m.channel_id[:20] if m.channel_id is not None else None)
            for m in moves]
    sql = (f"UPDATE slack_notice SET status = v.status, attempts = v.attempts, next_attempt_at = v.next_at, "
           f"outcome_unknown = v.unknown, last_error = COALESCE(v.error, slack_notice.last_error), "
           f"sent_at = COALESCE(v.sent_at, slack_notice.sent_at), "
           f"message_ts = COALESCE(v.ts, slack_notice.message_ts), "
           f"channel_id = COALESCE(v.channel_id, slack_notice.channel_id) "
           f"FROM {_table(q, _FINISH_COLUMNS, rows)} WHERE {_still_held(q)} RETURNING slack_notice.id")
    return {int(row[0]) for row in await q.rows(sql)}
