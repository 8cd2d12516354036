"""Configuration row locks never block writes that merely reference the locked row.

``SELECT … FOR UPDATE`` on a tenant (admins, seller details) conflicts with the
``FOR KEY SHARE`` lock PostgreSQL's foreign-key check takes on it for every insert
that references the tenant: each audit entry, order, invoice. With three
transactions that produced a deadlock cycle in the config race trial (``admins add``
holding the tenant, ``emailer set`` holding its integration and inserting its audit
entry). We never change primary keys, so every configuration lock is ``FOR NO KEY
UPDATE``, which such inserts do not wait for.
"""

from __future__ import annotations

import asyncio

import pytest
from tortoise.transactions import in_transaction

from invoicing import audit
from invoicing.clock import utc_now
from invoicing.integrations.pdf_emailer import settings as emailer
from invoicing.parties.accounting import lock_party
from invoicing.parties.tenants import add_admin
from tests import factories as f


async def _holding(lock, held: asyncio.Event, release: asyncio.Event) -> None:
    async with in_transaction():
        await lock()
        held.set()
        await release.wait()


@pytest.mark.parametrize("what", ["tenant", "company"])
async def test_an_audited_change_proceeds_while_another_transaction_holds_the_row_lock(db, what):
    if db.backend != "postgres":
        pytest.skip("SQLite has one writer at a time; row lock strength is a PostgreSQL matter")
    t = await f.tenant()
    c = await f.company(t)
    held, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_holding(lambda: lock_party(t if what == "tenant" else c), held, release))
    await held.wait()
    try:
        # Inserts that reference the locked row (audit entries of the tenant; the emailer's
        # own locked row is another table) must not queue behind the holder.
        await asyncio.wait_for(audit.record(t.id, actor="cli", action="probe", target="seller"), timeout=3)
        await asyncio.wait_for(emailer.configure(c, now=utc_now(), actor="cli", schedule="weekly"), timeout=3)
    finally:
        release.set()
        await holder


async def test_admin_changes_racing_emailer_changes_never_deadlock(db):
    t = await f.tenant()
    companies = [await f.company(t, f"co{n}") for n in range(3)]
    changes = []
    for n in range(30):
        changes.append(add_admin(await type(t).get(id=t.id), f"UADM{n:02d}", actor="slack:UBOSS"))
        company = companies[n % 3]
        changes.append(emailer.configure(company, now=utc_now(), actor="slack:UBOSS", bcc=f"copy{n}@audit.example"))
    results = await asyncio.gather(*changes, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
