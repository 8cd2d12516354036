"""Benchmark: does an outbox pass get slower as the sent history grows?

Run: ``.venv/bin/python benchmarks/queue_history.py [--postgres URL] [--history 200000] [--rounds 50]``
(``INVOICEBOT_TEST_POSTGRES_URL`` is used when ``--postgres`` is not given; the URL must allow
``CREATE DATABASE`` — a scratch database is created and dropped).

Every commit of a run wakes the e-mail outbox and the Slack notice worker, and each pass starts
by selecting what is due: pending rows whose attempt time has come, oldest first, at most 100.
The tables keep every row ever sent (one delivery per invoice, a notice or two per run), so a
due-selection that has to look at the sent rows costs a little more with every invoice issued:
quadratic over a burst, and a slow outbox on a tenant with years of history.

Setup: 100 pending rows in each queue, behind 1,000 sent ones; then the sent history grows to
``--history`` rows (bulk SQL, statistics refreshed) and the same selections are timed again.
Printed: the median of each selection at both sizes and the ratio. Target: ≤ 2× (the
selection reads the due rows through an index on ``(status, next_attempt_at)``, whatever the
history).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tortoise import connections

from benchmarks.scheduler import medians_ms
from bot.db import database, throwaway_database
from invoicing.delivery.outbox import _due as delivery_due
from invoicing.delivery.slack_notices import _due as notice_due
from models import Delivery, SlackNotice

PENDING = 100
SMALL = 1_000
RATIO_TARGET = 2.0


def _series(dialect: str, start: int, stop: int) -> str:
    """A table ``g(n)`` of the integers start..stop in either dialect."""
    if dialect == "postgres":
        return f"generate_series({start}, {stop}) AS g(n)"
    return (f"(WITH RECURSIVE s(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM s WHERE n < {stop}) "
            "SELECT n FROM s) AS g")


async def add_rows(start: int, stop: int, *, status: str) -> None:
    """Rows start..stop of both queues: ``sent`` (no attempt time, as the workers leave them) or ``pending``."""
    conn = connections.get("default")
    dialect = conn.capabilities.dialect
    created = "'2026-01-01 00:00:00+00:00'"  # in the past: the pending rows are due
    attempt = "NULL" if status == "sent" else created
    series = _series(dialect, start, stop)
    # The rows name an invoice and a tenant that need not exist: only the queues' selections are timed.
    off = "SET session_replication_role = replica" if dialect == "postgres" else "PRAGMA foreign_keys = OFF"
    on = "SET session_replication_role = DEFAULT" if dialect == "postgres" else "PRAGMA foreign_keys = ON"
    # One script: on PostgreSQL each execute_script may take another pooled connection.
    await conn.execute_script(
        f"{off};\n"
        "INSERT INTO delivery (tenant_id, invoice_id, kind, status, message_id, to_addr, bcc, attempts, "
        f"next_attempt_at, last_error, created_at) SELECT 1, 1, 'initial', '{status}', 'm' || n, "
        f"'buyer@example.com', '[]', 1, {attempt}, '', {created} FROM {series};\n"
        "INSERT INTO slack_notice (tenant_id, channel, channel_id, kind, payload, dedupe_key, status, attempts, "
        "outcome_unknown, next_attempt_at, last_error, created_at, message_ts) "
        f"SELECT 1, '#billing', 'C0BILLING', 'run_issued', '{{}}', 'k' || n, '{status}', 1, false, {attempt}, '', "
        f"{created}, '' FROM {series};\n{on}")
    await conn.execute_script("ANALYZE")


async def _unchanged() -> None:
    """The selections write nothing: no state to reset between rounds."""


async def bench_backend(label: str, url: str, history: int, rounds: int) -> bool:
    async with database(url):
        now = datetime.now(UTC)

        async def deliveries() -> None:
            rows = await Delivery.filter(delivery_due(now)).order_by("next_attempt_at", "id").limit(PENDING)
            assert len(rows) == PENDING, len(rows)

        async def notices() -> None:
            rows = await SlackNotice.filter(notice_due(now)).order_by("next_attempt_at", "id").limit(PENDING)
            assert len(rows) == PENDING, len(rows)

        actions = {"e-mail outbox": deliveries, "Slack notices": notices}
        await add_rows(1, SMALL, status="sent")
        await add_rows(SMALL + 1, SMALL + PENDING, status="pending")
        await medians_ms(actions, _unchanged, 5)
        small = await medians_ms(actions, _unchanged, rounds)
        started = time.perf_counter()
        await add_rows(SMALL + PENDING + 1, history + PENDING, status="sent")
        print(f"[{label}] sent history grown to {history:,} rows per queue in {time.perf_counter() - started:.1f} s")
        await medians_ms(actions, _unchanged, 5)
        large = await medians_ms(actions, _unchanged, rounds)
        met = True
        for name in actions:
            ratio = large[name] / small[name]
            met = met and ratio <= RATIO_TARGET
            print(f"[{label}] {name}: due-selection of {PENDING} behind {SMALL:,} sent: {small[name]:.2f} ms; "
                  f"behind {history:,}: {large[name]:.2f} ms; ratio {ratio:.2f}x")
        print(f"[{label}] target ≤ {RATIO_TARGET:g}x: {'target met' if met else 'target missed'}")
        return met


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("INVOICEBOT_TEST_POSTGRES_URL", ""),
                        help="PostgreSQL server URL allowed to CREATE DATABASE "
                             "(default: $INVOICEBOT_TEST_POSTGRES_URL)")
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(await bench_backend("sqlite", f"sqlite://{tmp}/bench.db", args.history, args.rounds))
    if args.postgres:
        async with throwaway_database(args.postgres, "invoicebot_bench") as (url, _):
            results.append(await bench_backend("postgres", url, args.history, args.rounds))
    else:
        print("[postgres] skipped (no --postgres URL and no INVOICEBOT_TEST_POSTGRES_URL)")
    print("overall:", "target met" if all(results) else "target missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
