"""Claims: a tick leases at most its batch of due integrations, however many are due."""

from __future__ import annotations

from datetime import timedelta

from benchmarks.burst_world import seed_world
from invoicing.scheduling.claims import claim_due
from models import Integration, IntegrationKind
from tests.factories import T0


async def test_a_claim_leases_at_most_its_limit_when_many_more_are_due(db):
    # PostgreSQL may run an `IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` subquery again for each row
    # it updates: the burst's tick claimed all 1,000 due companies with a limit of 50.
    await seed_world(1000, 1)  # the burst's world (set-based clones, analysed): the plan that re-ran it
    await Integration.filter(kind=IntegrationKind.PDF_EMAILER).update(enabled=True, next_run_at=T0)
    claims = await claim_due("r1", now=T0 + timedelta(minutes=1), lease=timedelta(seconds=60), limit=50)
    assert len(claims) == 50
    assert await Integration.filter(lease_owner="r1").count() == 50
    more = await claim_due("r2", now=T0 + timedelta(minutes=1), lease=timedelta(seconds=60), limit=5000)
    assert len(more) == 950 and not {c.integration_id for c in claims} & {c.integration_id for c in more}
