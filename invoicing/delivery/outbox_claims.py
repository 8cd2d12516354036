"""The outbox's batched state changes of ``delivery`` rows: claim, record as sent, renew, release.

Each is one conditional UPDATE over a chunk of rows, written with ``invoicing.sql.Statement``
(the ORM would build one statement per row), and reports which rows it changed: a row
that is not reported belongs to someone else now (another worker claimed it, or re-queued
it after our lease ran out) and must be left alone. ``claim_chunk``, ``renew_chunk`` and
``release_chunk`` each commit one transaction (``claim_chunk`` records the previous chunk's
sent messages in the one that claims the next); ``record`` and the bare statements run in
the caller's.

Times are bound as aware UTC datetimes; SQLite compares the stored UTC ISO text.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from invoicing.sql import Statement
from models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one delivery in one ``Outbox.deliver_due`` call (for Slack notifications).

    ``status`` is ``sent``, ``failed`` or ``pending`` (will be retried); ``error`` is
    the last server reply or failure reason, ``""`` when there was none.
    """

    delivery_id: int
    invoice_number: str
    status: DeliveryStatus
    error: str
    attempts: int


@dataclass(frozen=True)
class Sent:
    """A message the transport accepted at ``at`` (aware UTC), whose ``sent`` is not recorded yet."""

    delivery: Delivery
    number: str
    at: datetime


@dataclass
class Chunk:
    """Rows one worker claimed together (in due order), held under one lease until ``lease``."""

    rows: list[Delivery]
    lease: datetime
    renew_at: datetime
    #: Outcomes of the sends recorded in the claim's transaction (the previous chunk's).
    recorded: list[DeliveryOutcome]
    #: Rows whose lease was lost before they were handed over: not to be sent.
    lost: set[int] = field(default_factory=set)


async def claim_chunk(candidates: Sequence[Delivery], accepted: Sequence[Sent], *, now: datetime,
                      grace: timedelta) -> Chunk:
    """Record ``accepted`` as sent and claim those of ``candidates`` still due, in one transaction.

    Committed before any byte of the chunk goes to SMTP. Until recorded, an accepted
    message is ``sending``: a crash before this commit re-sends it after the lease
    (at-least-once, as for any crash after the hand-over), with the same Message-ID.
    The claimed rows' ``attempts`` are updated in place; the lease is renewed at half the grace.
    """
    lease = now + grace
    async with in_transaction():
        recorded = await record(accepted)
        claimed = await claim([d.id for d in candidates], now=now, lease_until=lease)
    rows = []
    for delivery in candidates:
        if delivery.id in claimed:
            delivery.attempts = claimed[delivery.id]
            rows.append(delivery)
        else:
            log.info("delivery claimed by another worker delivery=%d", delivery.id)
    return Chunk(rows, lease, now + grace / 2, list(recorded.values()))


async def record(accepted: Sequence[Sent]) -> dict[int, DeliveryOutcome]:
    """``sending → sent`` for ``accepted`` (in the caller's transaction); the outcomes of those recorded."""
    recorded = await record_sent(accepted)
    outcomes = {}
    for sent in accepted:
        delivery = sent.delivery
        if delivery.id not in recorded:
            # Another worker got there first (our lease ran out): its record wins and we report nothing.
            log.warning("delivery changed under us delivery=%d expected=sending wanted=sent", delivery.id)
            continue
        log.info("delivery sent delivery=%d invoice=%s message_id=%s attempts=%d",
                 delivery.id, sent.number, delivery.message_id, delivery.attempts)
        outcomes[delivery.id] = DeliveryOutcome(delivery.id, sent.number, DeliveryStatus.SENT, "", delivery.attempts)
    return outcomes


async def renew_chunk(chunk: Chunk, waiting: Sequence[Delivery], accepted: Sequence[Sent], *, now: datetime,
                      grace: timedelta) -> dict[int, DeliveryOutcome]:
    """Extend the lease of the chunk's rows not yet handed over, recording ``accepted`` in the same transaction
    (their outcomes are returned).

    A row not renewed is no longer ours (re-queued after the lease, maybe claimed again)
    and is marked lost: it is not to be sent from this chunk.
    """
    lease = now + grace
    ids = [d.id for d in waiting if d.id not in chunk.lost]
    async with in_transaction():
        outcomes = await record(accepted)
        held = await renew(ids, lease_until=chunk.lease, new_lease_until=lease)
    for lost in set(ids) - held:
        log.warning("delivery lease lost before sending delivery=%d", lost)
    chunk.lost.update(set(ids) - held)
    chunk.lease, chunk.renew_at = lease, now + grace / 2
    return outcomes


async def release_chunk(chunk: Chunk, rows: Sequence[Delivery]) -> None:
    """Give back claimed rows that were not handed over: pending, due as before, no attempt counted."""
    waiting = {d.id: d.next_attempt_at for d in rows if d.id not in chunk.lost}
    if not waiting:
        return
    async with in_transaction():
        released = await release(waiting, lease_until=chunk.lease)
    for delivery in rows:
        if delivery.id in released:
            delivery.attempts -= 1
    log.info("deliveries left for the next pass, mail server unreachable count=%d", len(released))


async def claim(ids: Sequence[int], *, now: datetime, lease_until: datetime) -> dict[int, int]:
    """``pending → sending`` for those of ``ids`` still pending and due at ``now``; ``{id: attempts}`` of the claimed.

    Counts the attempt and sets ``next_attempt_at`` to ``lease_until`` (the lease). A row
    another worker claimed first is not due any more and is not returned.
    """
    if not ids:
        return {}
    q = Statement()
    sql = (f"UPDATE delivery SET status = {q(DeliveryStatus.SENDING.value)}, attempts = attempts + 1, "
           f"next_attempt_at = {q(_utc(lease_until))} "
           f"WHERE id {q.any_of(list(ids), 'int')} AND status = {q(DeliveryStatus.PENDING.value)} "
           f"AND (next_attempt_at IS NULL OR next_attempt_at <= {q(_utc(now))}) RETURNING id, attempts")
    return {int(row[0]): int(row[1]) for row in await q.rows(sql)}


async def record_sent(accepted: Sequence[Sent]) -> set[int]:
    """``sending → sent`` with each message's ``sent_at``; the ids recorded (rows still ``sending``)."""
    if not accepted:
        return set()
    q = Statement()  # placeholders are bound in the order they appear (SQLite's ``?``)
    sql = f"UPDATE delivery SET status = {q(DeliveryStatus.SENT.value)}, "
    sql += (f"sent_at = {_per_row(q, {a.delivery.id: a.at for a in accepted})}, next_attempt_at = NULL "
           f"WHERE id {q.any_of([a.delivery.id for a in accepted], 'int')} "
           f"AND status = {q(DeliveryStatus.SENDING.value)} RETURNING id")
    return {int(row[0]) for row in await q.rows(sql)}


async def renew(ids: Collection[int], *, lease_until: datetime, new_lease_until: datetime) -> set[int]:
    """Move the lease of those of ``ids`` still held under ``lease_until`` to ``new_lease_until``; the ids renewed.

    A lease is identified by its expiry: a row re-queued after it and claimed again has a
    later one, so it is not renewed here.
    """
    if not ids:
        return set()
    q = Statement()
    sql = (f"UPDATE delivery SET next_attempt_at = {q(_utc(new_lease_until))} "
           f"WHERE id {q.any_of(list(ids), 'int')} AND status = {q(DeliveryStatus.SENDING.value)} "
           f"AND next_attempt_at = {q(_utc(lease_until))} RETURNING id")
    return {int(row[0]) for row in await q.rows(sql)}


async def release(due_at: Mapping[int, datetime | None], *, lease_until: datetime) -> set[int]:
    """Give back claimed rows that were never handed to the transport: ``pending`` again, the claim's attempt
    not counted, ``next_attempt_at`` back to ``due_at[id]`` (what it was before the claim); the ids released.

    Only rows still held under ``lease_until`` are released.
    """
    if not due_at:
        return set()
    q = Statement()  # placeholders are bound in the order they appear (SQLite's ``?``)
    sql = f"UPDATE delivery SET status = {q(DeliveryStatus.PENDING.value)}, attempts = attempts - 1, "
    sql += (f"next_attempt_at = {_per_row(q, due_at)} "
           f"WHERE id {q.any_of(list(due_at), 'int')} AND status = {q(DeliveryStatus.SENDING.value)} "
           f"AND next_attempt_at = {q(_utc(lease_until))} RETURNING id")
    return {int(row[0]) for row in await q.rows(sql)}


def _per_row(q: Statement, values: Mapping[int, datetime | None]) -> str:
    """``CASE id WHEN … THEN … END``: one timestamp per row in one statement (typed for asyncpg)."""
    cast = "::timestamptz" if q.postgres else ""
    whens = " ".join(f"WHEN {q(i)} THEN {q(_utc(at) if at is not None else None)}{cast}" for i, at in values.items())
    return f"CASE id {whens} END"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
