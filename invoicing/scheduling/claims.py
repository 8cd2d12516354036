"""How a replica claims due integrations of every kind, and gives them back.

**Claim** — one statement selects the enabled integrations (any kind) whose
``next_run_at`` ≤ now and whose lease is free or expired, and sets ``lease_owner =
<replica>, lease_until = now + lease`` on them, returning the ``next_run_at`` it
claimed (the *slot*). Selection and conditional update are one ``UPDATE … WHERE id
IN (SELECT … [FOR UPDATE SKIP LOCKED]) AND <due and lease free> RETURNING``, so two
replicas on one database never claim one row twice: PostgreSQL re-checks the outer
condition on the newest row version, SQLite runs the statement under its write lock.

**Advance / release** are conditional on ``lease_owner = me AND next_run_at = slot``:
a settings change made while the run was going (a new ``next_run_at``) wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q

from invoicing.sql import Statement, instant
from models import Integration, IntegrationKind


@dataclass(frozen=True)
class Claim:
    """An integration leased to this replica for its due ``slot`` until ``lease_until``."""

    integration_id: int
    kind: IntegrationKind
    slot: datetime
    lease_until: datetime


def _due(q: Statement, now: datetime) -> str:
    return f"enabled = {q(True)} AND next_run_at <= {q(now)} AND (lease_until IS NULL OR lease_until < {q(now)})"


async def claim_due(replica: str, *, now: datetime, lease: timedelta, limit: int) -> list[Claim]:
    """Lease up to ``limit`` due integrations (earliest slot first) to ``replica``, in one statement."""
    now = now.astimezone(UTC)  # SQLite compares the stored UTC ISO text
    until = now + lease
    q = Statement()
    sql = (f"UPDATE integration SET lease_owner = {q(replica)}, lease_until = {q(until)} "
           f"WHERE id IN (SELECT id FROM integration WHERE {_due(q, now)} ORDER BY next_run_at "
           f"LIMIT {q(limit)}{q.for_update(skip_locked=True)}) AND {_due(q, now)} RETURNING id, kind, next_run_at")
    claims = []
    for row in await q.dicts(sql):
        slot = instant(row["next_run_at"])
        assert slot is not None  # claimed rows are due, so they have a slot
        claims.append(Claim(row["id"], IntegrationKind(row["kind"]), slot, until))
    return sorted(claims, key=lambda c: (c.slot, c.integration_id))


async def earliest_due(now: datetime) -> datetime | None:
    """The earliest pending slot among integrations not leased at ``now`` (to sleep until it)."""
    earliest = await (
        Integration.filter(enabled=True, next_run_at__not_isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_run_at").limit(1).values_list("next_run_at", flat=True)
    )
    return instant(earliest[0]) if earliest else None  # type: ignore[arg-type]  # values_list(flat=True)


async def renew(claim: Claim, replica: str, *, until: datetime) -> bool:
    """Extend a lease still held for the same slot; False when it was lost (expired and re-claimed, or changed)."""
    renewed = await Integration.filter(id=claim.integration_id, lease_owner=replica, next_run_at=claim.slot).update(
        lease_until=until)
    return bool(renewed)


async def advance(claim: Claim, replica: str, next_run_at: datetime | None) -> bool:
    """Set the next slot and release the lease; False (nothing written) when settings changed meanwhile."""
    advanced = await Integration.filter(id=claim.integration_id, lease_owner=replica, next_run_at=claim.slot).update(
        next_run_at=next_run_at, lease_owner=None, lease_until=None)
    return bool(advanced)


async def release(claim: Claim, replica: str) -> None:
    """Give the lease back now (run not started, or cancelled) so another replica may take the slot."""
    await Integration.filter(id=claim.integration_id, lease_owner=replica).update(lease_owner=None, lease_until=None)
