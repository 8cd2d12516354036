"""Benchmark of the scheduler's tick: due-selection + claim, and next-run computation.

Run: ``.venv/bin/python benchmarks/scheduler.py [--postgres URL]``
(``INVOICEBOT_TEST_POSTGRES_URL`` is used when ``--postgres`` is not given; the URL
must allow ``CREATE DATABASE`` — a scratch database is created and dropped).

Setup: 10,000 enabled integrations, 100 of them due, seeded with bulk inserts.
Figures (median of ``--rounds`` ticks; leases are reset between ticks, untimed):

* one tick's selection + claim (``Scheduler.claim_due``: one UPDATE … RETURNING
  that selects the due rows through the ``next_run_at`` index and leases them),
  against a bare ``SELECT`` of the same rows on the same connection;
* next-run computation per integration (``due_run``: catch-up check, cutoff and
  following slot) for the presets and a cron, in several time zones.

Targets of the issue: ≤ 5 ms per tick and ≤ 2× the bare query.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tortoise import connections

from bot.db import database, throwaway_database
from bot.scheduler import Scheduler
from invoicing.scheduling.schedule import due_run, parse_schedule
from models import Company, Integration, IntegrationKind, Tenant

INTEGRATIONS = 10_000
DUE = 100
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TICK_TARGET_MS = 5.0
RATIO_TARGET = 2.0
ZONES = ("Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC")

_BARE = {
    "sqlite": "SELECT id, next_run_at FROM integration WHERE enabled = ?1 AND next_run_at <= ?2 "
              "AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_run_at LIMIT ?3",
    "postgres": "SELECT id, next_run_at FROM integration WHERE enabled = $1 AND next_run_at <= $2 "
                "AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_run_at LIMIT $3",
}


_DUE_SQL = "enabled = {p3} AND next_run_at <= {p4} AND (lease_until IS NULL OR lease_until < {p4})"
_CLAIM_TEMPLATE = (
    "UPDATE integration SET lease_owner = {p1}, lease_until = {p2} "
    "WHERE id IN (SELECT id FROM integration WHERE " + _DUE_SQL + " ORDER BY next_run_at LIMIT {p5}{lock}) "
    "AND " + _DUE_SQL + " RETURNING id, kind, next_run_at"
)
#: The claim statement written out by hand, as the floor of what ``claims.claim_due`` can cost.
_BARE_CLAIM = {
    "postgres": _CLAIM_TEMPLATE.format(p1="$1", p2="$2", p3="$3", p4="$4", p5="$5", lock=" FOR UPDATE SKIP LOCKED"),
    "sqlite": _CLAIM_TEMPLATE.format(p1="?1", p2="?2", p3="?3", p4="?4", p5="?5", lock=""),
}


async def seed() -> None:
    """10,000 companies with enabled integrations; 100 due in the last hour, the rest later this week."""
    tenant = await Tenant.create(name="bench")
    await Company.bulk_create(
        [Company(tenant_id=tenant.id, short_name=f"c{i:05d}", name=f"Company {i}", currency="GBP",
                 timezone=ZONES[i % len(ZONES)]) for i in range(INTEGRATIONS)],
        batch_size=2000,
    )
    ids = await Company.all().order_by("id").values_list("id", flat=True)
    step = INTEGRATIONS // DUE
    await Integration.bulk_create(
        [Integration(company_id=cid, kind=IntegrationKind.PDF_EMAILER, enabled=True,
                            next_run_at=NOW - timedelta(seconds=30 * (n // step + 1)) if n % step == 0
                            else NOW + timedelta(minutes=1 + n % (7 * 24 * 60)))
         for n, cid in enumerate(ids)],
        batch_size=2000,
    )


async def medians_ms(
    actions: dict[str, Callable[[], Awaitable[object]]], reset: Callable[[], Awaitable[object]], rounds: int
) -> dict[str, float]:
    """Median time of each action, interleaved round by round so that table bloat from
    the lease writes (and noise from other processes) weighs on every action alike."""
    timings: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(rounds):
        for name, action in actions.items():
            await reset()
            start = time.perf_counter()
            await action()
            timings[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in timings.items()}


async def bench_backend(label: str, url: str, rounds: int) -> bool:
    async with database(url):
        started = time.perf_counter()
        await seed()
        print(f"[{label}] seeded {INTEGRATIONS:,} integrations ({DUE} due) in {time.perf_counter() - started:.1f} s")
        conn = connections.get("default")
        bare_sql = _BARE[conn.capabilities.dialect]
        scheduler = Scheduler(clock=lambda: NOW, batch_size=DUE, replica="bench")

        async def release() -> None:
            await Integration.filter(lease_owner__not_isnull=True).update(lease_owner=None, lease_until=None)
            if conn.capabilities.dialect == "postgres":
                # Steady state: autovacuum keeps up with a real tick rate, not with this loop.
                await conn.execute_script("VACUUM integration")

        async def claim() -> None:
            claimed = await scheduler.claim_due()
            assert len(claimed) == DUE, len(claimed)

        async def bare() -> None:
            rows = await conn.execute_query_dict(bare_sql, [True, NOW, DUE])
            assert len(rows) == DUE, len(rows)

        async def bare_claim() -> None:
            rows = await conn.execute_query_dict(_BARE_CLAIM[conn.capabilities.dialect],
                                                 ["bench", NOW + timedelta(minutes=15), True, NOW, DUE])
            assert len(rows) == DUE, len(rows)

        actions = {"tick": claim, "bare": bare, "bare_claim": bare_claim}
        await medians_ms(actions, release, 5)  # warm caches and prepared statements
        figures = await medians_ms(actions, release, rounds)
        tick_ms, bare_ms, floor_ms = figures["tick"], figures["bare"], figures["bare_claim"]
        ratio = tick_ms / bare_ms
        met = tick_ms <= TICK_TARGET_MS and ratio <= RATIO_TARGET
        print(f"[{label}] tick select+claim of {DUE} due: {tick_ms:.2f} ms (median of {rounds}); "
              f"bare SELECT of the same rows: {bare_ms:.2f} ms; ratio {ratio:.2f}x")
        print(f"[{label}]   for reference: the claim's UPDATE … RETURNING as bare SQL: {floor_ms:.2f} ms "
              f"(tick / it = {tick_ms / floor_ms:.2f}x) — writing {DUE} leases and committing is the cost")
        print(f"[{label}] target ≤ {TICK_TARGET_MS:g} ms and ≤ {RATIO_TARGET:g}x the bare SELECT: "
              f"{'target met' if met else 'target missed'}")
        return met


def bench_next_run() -> None:
    """Microseconds per integration for the catch-up check + next slot, as a tick computes it."""
    cases = {"weekly": "weekly", "hourly": "hourly", "daily": "daily", "monthly": "monthly",
             "cron 30 6 * * 1-5": "30 6 * * 1-5", "cron */15 * * * *": "*/15 * * * *"}
    for label, text in cases.items():
        schedule = parse_schedule(text)
        n = 2000
        start = time.perf_counter()
        for i in range(n):
            tz = ZONES[i % len(ZONES)]
            slot = NOW - timedelta(minutes=i % 50)
            due_run(schedule, tz, slot=slot, now=NOW, grace=timedelta(minutes=10))
        per = (time.perf_counter() - start) / n * 1e6
        print(f"next-run computation ({label}): {per:.0f} µs per integration "
              f"({per * DUE / 1000:.1f} ms for the {DUE} due of a tick, run after each run, outside the claim)")
    schedule = parse_schedule("hourly")
    start = time.perf_counter()
    due_run(schedule, "Europe/London", slot=NOW - timedelta(days=30), now=NOW, grace=timedelta(minutes=10))
    print(f"catch-up after 30 days down (hourly): {(time.perf_counter() - start) * 1e6:.0f} µs")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("INVOICEBOT_TEST_POSTGRES_URL", ""),
                        help="PostgreSQL server URL allowed to CREATE DATABASE "
                             "(default: $INVOICEBOT_TEST_POSTGRES_URL)")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(await bench_backend("sqlite", f"sqlite://{tmp}/bench.db", args.rounds))
    if args.postgres:
        async with throwaway_database(args.postgres, "invoicebot_bench") as (url, _):
            results.append(await bench_backend("postgres", url, args.rounds))
    else:
        print("[postgres] skipped (no --postgres URL and no INVOICEBOT_TEST_POSTGRES_URL)")
    bench_next_run()
    print("overall:", "target met" if all(results) else "target missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
