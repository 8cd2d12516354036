"""End-to-end throughput: select, number, persist, render, send — invoices per second.

Run: ``.venv/bin/python benchmarks/e2e.py [--companies 500] [--orders 20] [--postgres URL]``
(PostgreSQL also when ``INVOICEBOT_TEST_POSTGRES_URL`` is set).

One tenant with N companies × M dispatched orders each. Timed: every company's
``run_company`` (PostgreSQL: 8 at a time; SQLite: one at a time, as its single
writer allows) while the outbox delivers every invoice as it commits — PDF rendered by the real
renderer in a 2-process pool (2 cores), e-mail sent over one reused SMTP
connection to a local aiosmtpd sink in a child process. Target: ≥ 50 invoices/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.db import database, throwaway_database
from invoicing.delivery.fonts.faces import preload
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.pdf import render_invoice_pdf
from invoicing.delivery.transport import SmtpTransport
from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.parties.companies import create_company
from invoicing.parties.tenants import create_tenant
from models import (
    Company,
    Delivery,
    DeliveryStatus,
    Order,
    OrderItem,
    OrderStatus,
    Tenant,
)

TARGET = 50.0
NOW = datetime(2026, 11, 8, 0, 5, tzinfo=UTC)
SELLER = {"legal_name": "Inkwell Print & Ship Ltd", "address_line1": "Unit 4", "city": "Leeds",
          "postcode": "LS10 1AB", "country": "GB", "vat_number": "GB980780684", "company_number": "08123456"}
SKUS = [("MUG", "4.20", "1.10", "20"), ("TEE", "7.85", "1.60", "20"), ("KIDS", "5.10", "1.60", "0"),
        ("POSTER", "3.333", "2.25", "20")]

_pool: ProcessPoolExecutor | None = None


def pooled_render(document) -> bytes:
    """Render in a worker process (the outbox calls this from a thread, so it may block)."""
    assert _pool is not None
    return _pool.submit(render_invoice_pdf, document).result()


async def seed(companies: int, orders: int) -> Tenant:
    tenant = await create_tenant("bench", currency="GBP")
    tenant.update_from_dict(SELLER)
    await tenant.save()
    for sku, cost, shipping, tax in SKUS:
        await set_product(tenant, sku, name=f"Product {sku}", prices=[PriceInput(None, cost, shipping, tax)])
    for n in range(companies):
        await create_company(tenant, f"shop{n:04d}", name=f"Shop {n} Ltd", country="GB", currency="GBP",
                             timezone="Europe/London", accounting={
                                 "legal_name": f"Shop {n} Ltd", "address_line1": f"{n} Market Street",
                                 "city": "Manchester", "postcode": "M1 1AE", "email": f"ap@shop{n}.example"})
    ids = [c.id for c in await Company.filter(tenant_id=tenant.id).order_by("id")]
    rows = [Order(company_id=cid, external_ref=f"SO-{cid}-{k}", status=OrderStatus.DISPATCHED,
                  dispatched_at=NOW - timedelta(hours=1 + k)) for cid in ids for k in range(orders)]
    await Order.bulk_create(rows, batch_size=2000)
    order_ids = await Order.filter(company__tenant_id=tenant.id).values_list("id", flat=True)
    items = [OrderItem(order_id=oid, position=0, sku=SKUS[oid % len(SKUS)][0], quantity=1 + oid % 3)
             for oid in order_ids]
    await OrderItem.bulk_create(items, batch_size=2000)
    return tenant


async def measure(url: str, label: str, companies: int, orders: int, smtp_port: int) -> float:
    async with database(url):
        tenant = await seed(companies, orders)
        shorts = [c.short_name for c in await Company.filter(tenant_id=tenant.id).order_by("id")]
        concurrency = 8 if url.startswith("postgres") else 1
        gate = asyncio.Semaphore(concurrency)
        transport = SmtpTransport("127.0.0.1", smtp_port, security="none", local_hostname="localhost")
        outbox = Outbox(transport, pooled_render, "invoices@inkwell.example", clock=lambda: NOW)

        async def one(short: str) -> None:
            async with gate:
                await run_by_name(tenant, short, cutoff=NOW, clock=lambda: NOW, mail_domain="inkwell.example")

        async def deliver_while_running(runs: asyncio.Task[object]) -> int:
            # As in `serve`: the outbox sends what committed runs queued while later runs go on.
            sent = 0
            while True:
                outcomes = await outbox.deliver_due(limit=50)
                sent += sum(1 for o in outcomes if o.status == DeliveryStatus.SENT)
                if not outcomes:
                    if runs.done():
                        return sent
                    await asyncio.sleep(0.005)

        started = time.perf_counter()
        runs = asyncio.ensure_future(asyncio.gather(*(one(s) for s in shorts)))
        sender = asyncio.create_task(deliver_while_running(runs))
        await runs
        ran = time.perf_counter()
        sent = await sender
        done = time.perf_counter()
        await transport.close()
        assert sent == companies == await Delivery.filter(status=DeliveryStatus.SENT).count()
    rate = companies / (done - started)
    verdict = "target met" if rate >= TARGET else "target missed"
    print(f"{label:10s} {companies} invoices × {orders} orders: all runs committed after {ran - started:5.2f} s, "
          f"last e-mail sent after {done - started:5.2f} s: {rate:6.1f} invoices/s "
          f"(target ≥ {TARGET:.0f}/s) {verdict}")
    return rate


async def main(companies: int, orders: int, postgres: str | None) -> None:
    global _pool
    _pool = ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1), initializer=preload)
    list(_pool.map(int, range(2)))  # start the workers (and their font preload) before timing
    sink = subprocess.Popen([sys.executable, str(Path(__file__).with_name("smtp.py")), "--sink"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    port = int(sink.stdout.readline())
    try:
        with tempfile.TemporaryDirectory() as folder:
            await measure(f"sqlite://{Path(folder) / 'e2e.db'}", "SQLite", companies, orders, port)
        if postgres:
            async with throwaway_database(postgres, "invoicebot_e2e") as (url, _):
                await measure(url, "PostgreSQL", companies, orders, port)
        else:
            print("PostgreSQL: skipped (give --postgres URL or set INVOICEBOT_TEST_POSTGRES_URL)")
    finally:
        sink.stdin.close()
        sink.wait(timeout=30)
        _pool.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=500)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("INVOICEBOT_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    asyncio.run(main(args.companies, args.orders, args.postgres))
