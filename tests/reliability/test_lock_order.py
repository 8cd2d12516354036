"""Feed batches racing invoice runs (issue 12, item 4): one lock order, no deadlock, no 500.

The run locks a company's candidate orders and the feed locks the orders it updates. If the
two took those row locks in different orders (the run by dispatch time, the feed by id), a
batch and a run holding one lock each would wait for each other until PostgreSQL aborts one
with ``deadlock detected``: a 500 for the OMS, a failed run for ops. The orders here are
laid out so that dispatch time runs against id order (the newest order was dispatched
first), as happens whenever the OMS reports dispatches out of creation order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.feed import FEED_PREFIX, create_feed_app
from invoicing.ingest.order_sync import ItemInput, OrderInput, clean_order, upsert_orders
from invoicing.ingest.tokens import create_token
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.integrations.pdf_emailer.settings import configure
from models import InvoiceLine, InvoiceRun, Order, OrderItem, RunOutcome, Tenant
from tests import factories as f
from tests.bot.test_feed import request_feed
from tests.factories import T0

COMPANIES = ("acme", "bolt", "cask")
ORDERS_PER_COMPANY = 120
BATCHES = 80
BATCH_SIZE = 40
RUNS = 40
#: Runs of one company invoice the orders dispatched before their cutoff: slices of this many minutes.
SLICE_MINUTES = 10
BASE = T0 - timedelta(days=1)
#: Rounds of two runs racing two settings changes of one company.
ROUNDS = 25


def dispatched_at(k: int) -> str:
    """Order ``k`` of a company was dispatched ``ORDERS_PER_COMPANY - k`` minutes after BASE: later id, earlier."""
    return (BASE + timedelta(minutes=ORDERS_PER_COMPANY - k)).isoformat().replace("+00:00", "Z")


def held(k: int) -> bool:
    """Every other order is on hold: never invoiced, so every run locks (and skips) it again."""
    return k % 2 == 1


def order_body(company: str, k: int, *, recipient: str = "Jane Doe") -> dict[str, Any]:
    return {
        "company": company, "ref": f"{company}-{k:04d}",
        "items": [{"sku": "MUG", "quantity": 1 + k % 3}], "status": "dispatched", "dispatched_at": dispatched_at(k),
        "on_hold": held(k), "error": None,
        "ship_to": {"name": recipient, "line1": "1 High St", "city": "Leeds", "postcode": "LS1 1AA", "country": "GB"},
    }


async def _seed() -> Tenant:
    tenant = await f.tenant()
    for name in COMPANIES:
        await f.company(tenant, name)
    await f.price(tenant, "MUG", "5.00", shipping="1.50", tax="20")
    orders = []
    for name in COMPANIES:
        for k in range(ORDERS_PER_COMPANY):  # created in k order: ids ascend with k, dispatch times descend
            body = order_body(name, k)
            orders.append(clean_order(OrderInput(
                name, body["ref"], [ItemInput(**item) for item in body["items"]], body["status"],
                BASE + timedelta(minutes=ORDERS_PER_COMPANY - k), on_hold=held(k), ship_to=body["ship_to"])))
    await upsert_orders(tenant, orders)
    return tenant


@pytest.fixture
async def racing_feed(db) -> AsyncIterator[tuple[Tenant, TestServer, ClientSession, str]]:
    tenant = await _seed()
    root = web.Application()
    root.add_subapp(FEED_PREFIX, create_feed_app())
    async with TestServer(root, host="127.0.0.1") as server, ClientSession() as session:
        yield tenant, server, session, (await create_token(tenant)).token


async def test_feed_batches_racing_runs_never_deadlock_and_invoice_each_order_once(racing_feed, caplog):
    caplog.set_level(logging.WARNING, logger="invoicing.retrying")
    tenant, server, session, token = racing_feed
    rng = random.Random(12)
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    async def batch(n: int) -> None:
        picks = rng.sample([(c, k) for c in rng.sample(COMPANIES, 2) for k in range(ORDERS_PER_COMPANY)], BATCH_SIZE)
        body = {"orders": [order_body(c, k, recipient=f"Recipient {n}") for c, k in picks]}
        reply = await request_feed(session, server, "POST", "/orders:batch", body, token=token)
        statuses[reply.status] += 1
        if reply.status != 200:
            failures.append(f"batch {n}: {reply.status} {reply.body!r}")

    async def run(n: int) -> None:
        company = COMPANIES[n % len(COMPANIES)]
        cutoff = BASE + timedelta(minutes=SLICE_MINUTES * (n // len(COMPANIES) + 1))
        try:
            await run_by_name(tenant, company, cutoff=cutoff, clock=lambda: T0)
        except Exception as exc:  # noqa: BLE001 - every failure is what this test counts
            failures.append(f"run {n} of {company}: {type(exc).__name__}: {exc}")

    jobs = [batch(n) for n in range(BATCHES)] + [run(n) for n in range(RUNS)]
    rng.shuffle(jobs)
    await asyncio.wait_for(asyncio.gather(*jobs), timeout=120)

    assert failures == [], f"{len(failures)} failure(s): {failures[:5]}"
    assert statuses == {200: BATCHES}
    lines = await InvoiceLine.all().values_list("order_id_ref", flat=True)
    assert len(lines) == len(set(lines)), "an order is on two invoice lines"
    invoiced = await Order.exclude(invoice_id=None).values_list("on_hold", flat=True)
    assert not any(invoiced), "an order on hold was invoiced"
    # The last cutoffs cover every dispatch time: every order not on hold is invoiced, once.
    assert len(invoiced) == len(lines) == len(COMPANIES) * ORDERS_PER_COMPANY // 2
    assert not await InvoiceRun.filter(outcome=RunOutcome.FAILED).exists()
    # The lock order alone prevents the deadlocks; the retry is only the safety net.
    assert [r.getMessage() for r in caplog.records if r.name == "invoicing.retrying"] == []


async def test_emailer_settings_racing_runs_never_deadlock(db, caplog):
    """``emailer <co> set channel=…`` locks the company, then its integration row; a run holds that row
    and then writes an invoice that references the company. The company lock of a settings change must
    not block that insert (a key-share lock), or each waits for the other."""
    caplog.set_level(logging.WARNING, logger="invoicing.retrying")
    tenant = await f.tenant()
    company = await f.company(tenant)
    await f.price(tenant, "MUG", "5.00", shipping="1.50", tax="20")
    failures: list[str] = []

    async def run() -> None:
        try:
            await run_by_name(tenant, "acme", clock=lambda: T0)
        except Exception as exc:  # noqa: BLE001 - every failure is what this test counts
            failures.append(f"run: {type(exc).__name__}: {exc}")

    async def change_channel(n: int) -> None:
        try:
            await configure(company, now=T0, actor="U1", channel=f"#billing-{n}", include_errors=n % 2 == 0)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"emailer set: {type(exc).__name__}: {exc}")

    for n in range(ROUNDS):
        await f.order(company, ref=f"SO-{n}")
        await asyncio.wait_for(asyncio.gather(run(), change_channel(n), run(), change_channel(n + ROUNDS)), 30)
    assert failures == [], f"{len(failures)} failure(s): {failures[:3]}"
    assert await Order.filter(invoice_id=None).count() == 0
    assert [r.getMessage() for r in caplog.records if r.name == "invoicing.retrying"] == []


async def test_batches_creating_the_same_new_orders_at_once_both_succeed(db):
    """Two batches that both create order ``X`` race to insert it: the loser meets the unique
    key, and instead of a 409 it runs again, finds the winner's row and updates it."""
    tenant = await f.tenant()
    await f.company(tenant, "acme")

    def batch(status: str) -> list:
        return [clean_order(OrderInput("acme", f"NEW-{n}", [ItemInput(sku="MUG", quantity=1)], status))
                for n in range(50)]

    for round_ in range(10):
        statuses = ["received", "in_production"] if round_ % 2 else ["in_production", "received"]
        results = await asyncio.gather(*(upsert_orders(tenant, batch(s)) for s in statuses),
                                       return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert await Order.filter(company__tenant_id=tenant.id).count() == 50
        await OrderItem.filter(order__company__tenant_id=tenant.id).delete()
        await Order.filter(company__tenant_id=tenant.id).delete()
