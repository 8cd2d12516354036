"""Invoice numbers: sequential, gapless and unique per tenant, under concurrency and failure."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Invoice, InvoiceLine, InvoiceRun, Order, RunOutcome, Tenant
from tests import factories as f
from tests.factories import T0


async def test_fifty_concurrent_runs_across_ten_companies_yield_gapless_unique_numbers(db):
    t = await f.tenant()
    await f.price(t, "MUG", "5.00")
    shorts = [f"shop{i}" for i in range(10)]
    for short in shorts:
        c = await f.company(t, short)
        for hours in range(1, 6):
            await f.order(c, dispatched_at=T0 - timedelta(hours=hours, minutes=30))
    rng = random.Random(7)
    jobs = [(short, T0 - timedelta(hours=k)) for short in shorts for k in range(5)]
    rng.shuffle(jobs)
    reports = await asyncio.gather(
        *(run_by_name(t, short, cutoff=cutoff, clock=lambda: T0) for short, cutoff in jobs)
    )

    invoiced = [r for r in reports if r.outcome == RunOutcome.INVOICED]
    numbers = sorted(inv.number for inv in await Invoice.filter(tenant_id=t.id))
    assert numbers == list(range(1, len(invoiced) + 1))  # no gap, no duplicate
    assert len(numbers) >= 10  # every company got at least one invoice
    assert (await Tenant.get(id=t.id)).last_invoice_number == len(numbers)
    assert sum(r.orders_invoiced for r in reports) == 50
    assert await Order.filter(invoice_id=None).count() == 0
    refs = [line.order_ref for line in await InvoiceLine.all()]
    assert len(refs) == len(set(refs)) == 50  # every order on exactly one invoice
    assert await InvoiceRun.all().count() == 50


async def test_concurrent_runs_of_one_company_issue_one_invoice(db):
    t = await f.tenant()
    await f.price(t, "MUG", "5.00")
    c = await f.company(t)
    for _ in range(5):
        await f.order(c)
    reports = await asyncio.gather(*(run_by_name(t, "acme", clock=lambda: T0) for _ in range(8)))
    assert sorted(r.outcome for r in reports).count(RunOutcome.INVOICED) == 1
    assert [i.number for i in await Invoice.all()] == [1]
    assert await Order.filter(invoice_id=None).count() == 0


async def test_two_tenants_have_independent_sequences(db):
    first = await f.tenant("first")
    second = await f.tenant("second")
    for t in (first, second):
        await f.price(t, "MUG", "5.00")
    a = await f.company(first, "acme")
    b = await f.company(second, "acme")
    await f.order(a)
    await f.order(b)
    await f.order(b, ref="ORD-B2", dispatched_at=T0 - timedelta(hours=2))
    r1 = await run_by_name(first, "acme", cutoff=T0, clock=lambda: T0)
    r2 = await run_by_name(second, "acme", cutoff=T0 - timedelta(hours=3), clock=lambda: T0)
    r3 = await run_by_name(second, "acme", cutoff=T0, clock=lambda: T0)
    assert (r1.invoice_number, r2.invoice_number, r3.invoice_number) == ("000001", "000001", "000002")


async def test_the_prefix_and_padding_shape_the_printed_number(db):
    t = await f.tenant()
    t.invoice_prefix, t.number_padding = "INK-", 4
    await t.save()
    await f.price(t, "MUG", "5.00")
    c = await f.company(t)
    await f.order(c)
    report = await run_by_name(t, "acme", clock=lambda: T0)
    assert report.invoice_number == "INK-0001"
    assert (await Invoice.get(id=report.invoice_id)).number == 1
