"""Claims: a tick leases at most its batch of due integrations, however many are due."""

from __future__ import annotations

from datetime import timedelta

import pytest

from benchmarks.burst_world import seed_world
from invoicing.scheduling.claims import claim_due, claim_sql
from invoicing.sql import Statement, is_postgres
from models import Integration, IntegrationKind
from tests.factories import T0
from tests.plans import scans


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


async def test_a_claim_finds_the_chosen_rows_by_key_whatever_the_statistics_say(db):
    """Statistics taken while nothing was due (before the slot; or late in a burst, when most companies have
    moved on to next week): the update must still find the chosen rows by primary key, not walk every due row
    and look each up in the chosen ones (20 ms a tick at 5,000 companies, instead of 1)."""
    if not is_postgres():
        pytest.skip("plans are PostgreSQL's")
    await seed_world(300, 1)
    await Integration.filter(kind=IntegrationKind.PDF_EMAILER).update(enabled=True, next_run_at=T0 + timedelta(days=7))
    await Statement().execute("ALTER TABLE integration SET (autovacuum_enabled = false)")
    await Statement().execute("ANALYZE integration")
    await Integration.filter(kind=IntegrationKind.PDF_EMAILER).update(next_run_at=T0)
    now = T0 + timedelta(minutes=1)
    q = Statement()
    sql = claim_sql(q, "r1", now=now, until=now + timedelta(minutes=1), limit=50,
                    kinds=[IntegrationKind.PDF_EMAILER, IntegrationKind.XML_EXPORT])
    reads = await scans(q, sql)
    outer = [scan for scan in reads if not scan.within("CTE")]
    indexes = [scan.index for scan in outer if scan.node != "Bitmap Heap Scan"]  # its Bitmap Index Scan names it
    assert indexes and all(index == "integration_pkey" for index in indexes), reads
    assert len(await claim_due("r1", now=now, lease=timedelta(seconds=60), limit=50)) == 50
