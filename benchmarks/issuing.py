"""Issuing alone: the scheduler's ticks over N due companies, batched runs against single runs, same world.

Run: ``.venv/bin/python benchmarks/issuing.py [--companies 1000] [--postgres URL]`` (PostgreSQL when
``--postgres`` or ``INVOICEBOT_TEST_POSTGRES_URL`` is given, else SQLite in a temporary folder).

For each path a fresh database with the burst's world (``burst_world``: one tenant, N companies × 20
dispatched orders, every PDF Emailer due at one slot); then ``Scheduler.tick()`` in this process until
nothing is due — claims, runs, run records, e-mails queued, notices queued, advance — but no outbox, no
render, no Slack. Printed: invoices/s and CPU ms per invoice of this process (the database's own CPU is
not in it), and the batched path's figures as ratios of the single-run path's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.burst_world import seed_world
from bot.db import database, throwaway_database
from bot.scheduler import Scheduler
from models import Integration, IntegrationKind, Invoice

ORDERS = 20


@contextlib.asynccontextmanager
async def _scratch(postgres: str | None) -> AsyncIterator[str]:
    if postgres:
        async with throwaway_database(postgres, "invoicebot_issuing") as (url, _):
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite://{Path(folder) / 'issuing.db'}"


async def measure(postgres: str | None, companies: int, *, batched: bool) -> tuple[float, float]:
    """(invoices/s, CPU ms per invoice) of one path over a fresh world."""
    async with _scratch(postgres) as url, database(url):
        await seed_world(companies, ORDERS)
        slot = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        await Integration.filter(kind=IntegrationKind.PDF_EMAILER).update(enabled=True, next_run_at=slot)
        scheduler = Scheduler(**({} if batched else {"batch_runners": {}}))
        cpu, wall = time.process_time(), time.perf_counter()
        while await scheduler.tick():
            pass
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        issued = await Invoice.all().count()
        assert issued == companies, f"{issued} invoices for {companies} companies"
        return issued / wall, cpu * 1000 / issued


async def main(postgres: str | None, companies: int) -> None:
    backend = "PostgreSQL" if postgres else "SQLite"
    single = await measure(postgres, companies, batched=False)
    batched = await measure(postgres, companies, batched=True)
    print(f"{backend}, {companies:,} companies × {ORDERS} orders due at one slot, issuing only:")
    print(f"  single runs:  {single[0]:6.0f} invoices/s, {single[1]:5.2f} ms CPU per invoice")
    print(f"  batched runs: {batched[0]:6.0f} invoices/s, {batched[1]:5.2f} ms CPU per invoice "
          f"({batched[0] / single[0]:.1f}× the rate, {batched[1] / single[1]:.2f}× the CPU)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("INVOICEBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when a PostgreSQL URL is set")
    parser.add_argument("--companies", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(None if args.sqlite else args.postgres, args.companies))
