"""How a replica claims due integrations of every kind, and gives them back.

**Claim** — one statement selects the enabled integrations (any kind) whose
``next_run_at`` ≤ now and whose lease is free or expired, and sets ``lease_owner =
<replica>, lease_until = now + lease`` on them, returning the ``next_run_at`` it
claimed (the *slot*). Selection and update are one ``WITH chosen AS MATERIALIZED (SELECT …
LIMIT n [FOR UPDATE SKIP LOCKED]) UPDATE … WHERE id <chosen> RETURNING``, so two replicas on
one database never claim one row twice: PostgreSQL's ``FOR UPDATE`` re-checks the due
condition on the newest row version and holds the rows until the update, SQLite runs the
statement under its write lock (``claim_sql``).

**Advance / release** are conditional on ``lease_owner = me AND next_run_at = slot``:
a settings change made while the run was going (a new ``next_run_at``) wins.

**Leases are short and kept alive** (issue 12, item 10): a lease lasts about a minute
and the replica renews every lease it holds every third of that while its runs are in
flight (``heartbeat``). A live run slower than the lease keeps it; a replica that is
killed, frozen or cut off from the database stops renewing, and another replica takes
its integrations about one lease later (a 15-minute lease without a heartbeat made 23
companies wait 945 s after a crash). ``lease_owner = me`` is the fence: only a claim
after expiry changes it, so a run checks it inside its own transaction (``hold``) and
one that lost its lease rolls back (``LeaseLost``) instead of committing. A replica
that starts also frees the leases of a previous process with its host name and pid
(``release_previous_incarnations``): that process cannot be alive.

Why not PostgreSQL advisory locks: they need one connection held per replica for the
session (the pool hands connections out per query), and SQLite has none; a lease row
with a heartbeat works the same on both.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q

from invoicing.sql import Statement, instant
from models import Integration, IntegrationKind

#: Renew held leases this often, as a fraction of the lease: two renewals may fail (a
#: slow database, a busy event loop) before the lease runs out.
HEARTBEAT_FRACTION = 3


class LeaseLost(Exception):
    """The run's lease went to another replica: it must not commit (raised inside its transaction)."""


@dataclass(frozen=True)
class Claim:
    """An integration leased to this replica for its due ``slot`` until ``lease_until``."""

    integration_id: int
    kind: IntegrationKind
    slot: datetime
    lease_until: datetime


def _due(q: Statement, now: datetime) -> str:
    return f"enabled = {q(True)} AND next_run_at <= {q(now)} AND (lease_until IS NULL OR lease_until < {q(now)})"


async def claim_due(replica: str, *, now: datetime, lease: timedelta, limit: int,
                    kinds: Collection[IntegrationKind] | None = None) -> list[Claim]:
    """Lease up to ``limit`` due integrations (earliest slot first) to ``replica``, in one statement.

    ``kinds``: only integrations of these kinds (the ones the caller can run); None, every kind. A kind
    with no scheduled run (Xero pushes through its outbox) is never claimed, even if a row of it is due.
    """
    now = now.astimezone(UTC)  # SQLite compares the stored UTC ISO text
    until = now + lease
    q = Statement()
    sql = claim_sql(q, replica, now=now, until=until, limit=limit, kinds=kinds)
    claims = []
    for row in await q.dicts(sql):
        slot = instant(row["next_run_at"])
        assert slot is not None  # claimed rows are due, so they have a slot
        claims.append(Claim(row["id"], IntegrationKind(row["kind"]), slot, until))
    return sorted(claims, key=lambda c: (c.slot, c.integration_id))


def claim_sql(q: Statement, replica: str, *, now: datetime, until: datetime, limit: int,
              kinds: Collection[IntegrationKind] | None) -> str:
    """``claim_due``'s statement, its values bound into ``q`` (tests read its plan too).

    The selection runs once (MATERIALIZED): as an `IN (SELECT … LIMIT n)` subquery PostgreSQL may run it again
    for each row it updates, and a tick of 50 claimed every due integration. On PostgreSQL the update then finds
    the chosen rows by primary key only, from one array (``= ANY(ARRAY(…))``, computed once): with the due
    condition repeated, or as ``IN (SELECT id FROM chosen)``, a planner whose statistics said few rows were due
    (taken before the slot, or late in a burst) walked every due row by ``next_run_at`` and looked each up among
    the chosen — 20 ms a tick instead of 1. Repeating it adds nothing there: ``FOR UPDATE`` re-checked the
    condition on each row's newest version and holds the row until the statement ends. SQLite runs the
    statement under its write lock and keeps the condition. The parts are bound in the order they appear in the
    text (SQLite's ``?`` placeholders are positional).
    """
    chosen = f"SELECT id FROM integration WHERE {_due(q, now)}"
    if kinds is not None:
        chosen += f" AND kind {q.any_of([k.value for k in kinds], 'text')}"
    chosen += f" ORDER BY next_run_at LIMIT {q(limit)}{q.for_update(skip_locked=True)}"
    update = f"UPDATE integration SET lease_owner = {q(replica)}, lease_until = {q(until)} "
    if q.postgres:
        picked = "WHERE id = ANY(ARRAY(SELECT id FROM chosen))"
    else:
        picked = f"WHERE id IN (SELECT id FROM chosen) AND {_due(q, now)}"
    return f"WITH chosen AS MATERIALIZED ({chosen}) {update}{picked} RETURNING id, kind, next_run_at"


async def earliest_due(now: datetime, kinds: Collection[IntegrationKind] | None = None) -> datetime | None:
    """When to tick next: the earliest pending slot not leased at ``now``, or a due lease's expiry.

    The expiry counts so that a crashed replica's integrations are taken about one
    lease after its last renewal, not at the next ``max_sleep``; while the holder is
    alive its heartbeat moves the expiry on, and this replica wakes, claims nothing
    and sleeps again (one tick per heartbeat, at most). ``kinds`` as for ``claim_due``: a due row of
    a kind nobody claims must not wake the loop again and again.
    """
    only = Q(kind__in=list(kinds)) if kinds is not None else Q()
    free = await (
        Integration.filter(only, enabled=True, next_run_at__not_isnull=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_run_at").limit(1).values_list("next_run_at", flat=True)
    )
    leased = await (
        Integration.filter(only, enabled=True, next_run_at__lte=now, lease_until__gte=now)
        .order_by("lease_until").limit(1).values_list("lease_until", flat=True)
    )
    moments = [m for m in (instant(v) for v in (*free, *leased)) if m is not None]  # type: ignore[arg-type]
    return min(moments, default=None)


async def heartbeat(replica: str, integration_ids: Collection[int], *, until: datetime) -> int:
    """Extend to ``until`` the leases ``replica`` still holds among ``integration_ids``; returns how many.

    Rows locked by a run's transaction are skipped (PostgreSQL ``SKIP LOCKED``) rather
    than waited for: nobody can claim a locked row, and ``hold`` extended its lease when
    the run took the lock. A lease lost meanwhile stays lost (``lease_owner`` is not ours).
    """
    if not integration_ids:
        return 0
    q = Statement()  # placeholders are bound in the order they appear (SQLite's ``?``)
    sql = (f"UPDATE integration SET lease_until = {q(until.astimezone(UTC))} "
           f"WHERE id IN (SELECT id FROM integration WHERE lease_owner = {q(replica)} "
           f"AND id {q.any_of(list(integration_ids), 'int')}{q.for_update(skip_locked=True)}) "
           f"AND lease_owner = {q(replica)} RETURNING id")
    return len(await q.rows(sql))


async def hold(claim: Claim, replica: str, *, until: datetime) -> None:
    """Inside the run's transaction, after its row lock: extend the lease or raise ``LeaseLost``.

    Under the row lock no other replica can claim the row until this transaction
    ends, so a run that passes here commits only while its lease is ours. Only the
    owner is checked: a settings change made since the claim (a new ``next_run_at``)
    lets the run in progress finish and wins at ``advance``.
    """
    held = await Integration.filter(id=claim.integration_id, lease_owner=replica).update(lease_until=until)
    if not held:
        raise LeaseLost(f"integration {claim.integration_id} is no longer leased to {replica}")


async def release_previous_incarnations(replica: str, prefix: str) -> int:
    """Free the leases held by earlier processes whose id starts with ``prefix`` (``host-pid-``).

    Only a process with the same host name and pid can produce that prefix, and while
    ``replica`` (which has it too) runs, no other such process does — provided each
    live replica has its own host name (one per container or machine, as usual).
    """
    owners = await (Integration.filter(lease_owner__startswith=prefix).exclude(lease_owner=replica)
                    .distinct().values_list("lease_owner", flat=True))
    stale = [owner for owner in owners if isinstance(owner, str) and owner.startswith(prefix)]  # LIKE wildcards
    if not stale:
        return 0
    return await Integration.filter(lease_owner__in=stale).update(lease_owner=None, lease_until=None)


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


# --- the same, for a batch of claims (the scheduler's batched runs) ---------------------------------


async def renew_many(batch: Collection[Claim], replica: str, *, until: datetime) -> set[int]:
    """``renew`` for every claim of ``batch`` in one statement; the integration ids whose lease is still ours."""
    slots = {claim.integration_id: claim.slot for claim in batch}
    held = await _extend(slots, replica, until=until)
    return {integration_id for integration_id, slot in held.items() if slot == slots[integration_id]}


async def hold_many(integration_ids: Collection[int], replica: str, *, until: datetime) -> set[int]:
    """``hold`` for several integrations (inside the batch's transaction, after its row locks): extends
    the leases still ours and returns their ids; the others were lost and must not be written for."""
    return set(await _extend(integration_ids, replica, until=until))


async def _extend(integration_ids: Collection[int], replica: str, *, until: datetime) -> dict[int, datetime | None]:
    """Move to ``until`` the leases ``replica`` holds among ``integration_ids``: their slots, by id."""
    if not integration_ids:
        return {}
    q = Statement()
    rows = await q.rows(f"UPDATE integration SET lease_until = {q(until.astimezone(UTC))} "
                        f"WHERE id {q.any_of(list(integration_ids), 'int')} AND lease_owner = {q(replica)} "
                        f"RETURNING id, next_run_at")
    return {int(row[0]): instant(row[1]) for row in rows}


async def advance_many(advances: Collection[tuple[Claim, datetime | None]], replica: str) -> set[int]:
    """``advance`` for several claims: one statement per distinct (slot, next slot) pair — in a burst,
    one in all. Returns the integration ids advanced; the others changed meanwhile (settings win)."""
    groups: dict[tuple[datetime, datetime | None], list[int]] = {}
    for claim, next_run_at in advances:
        groups.setdefault((claim.slot, next_run_at), []).append(claim.integration_id)
    advanced: set[int] = set()
    for (slot, next_run_at), ids in groups.items():
        q = Statement()
        rows = await q.rows(
            f"UPDATE integration SET next_run_at = {q(next_run_at and next_run_at.astimezone(UTC))}, "
            f"lease_owner = NULL, lease_until = NULL WHERE id {q.any_of(ids, 'int')} "
            f"AND lease_owner = {q(replica)} AND next_run_at = {q(slot.astimezone(UTC))} RETURNING id")
        advanced.update(int(row[0]) for row in rows)
    return advanced
