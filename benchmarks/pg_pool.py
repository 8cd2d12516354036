"""What a pooled PostgreSQL query costs with asyncpg's reset on release and without it (``bot.pg_connection``).

Run: ``INVOICEBOT_TEST_POSTGRES_URL=postgres://… .venv/bin/python benchmarks/pg_pool.py``

Prints, for ``SELECT 1`` run through Tortoise outside a transaction (as the web replica's
reads are), CPU microseconds per query in this process and in PostgreSQL's backends, and
wall time, for the pool as configured (``PooledConnection``: no reset query) and for
asyncpg's default connection class; medians of a few rounds, alternating, in one run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncpg.connection import Connection
from tortoise import connections

from benchmarks.burst import postgres_cpu
from bot.db import database

QUERIES, ROUNDS = 3000, 5


async def _round() -> tuple[float, float, float]:
    client = connections.get("default")
    cpu, pg, wall = time.process_time(), postgres_cpu(), time.perf_counter()
    for _ in range(QUERIES):
        await client.execute_query("SELECT 1")
    scale = 1e6 / QUERIES
    return ((time.process_time() - cpu) * scale, (postgres_cpu() - pg) * scale,
            (time.perf_counter() - wall) * scale)


async def main() -> None:
    url = os.environ.get("INVOICEBOT_TEST_POSTGRES_URL", "")
    if not url:
        raise SystemExit("set INVOICEBOT_TEST_POSTGRES_URL to a PostgreSQL server on this machine")
    results: dict[str, list[tuple[float, float, float]]] = {"PooledConnection (no reset)": [],
                                                             "asyncpg default (reset)": []}
    for _ in range(ROUNDS):
        for name in results:
            async with database(url, apply_migrations=False):
                client = connections.get("default")
                if name.startswith("asyncpg"):
                    client.connection_class = Connection
                for _ in range(200):
                    await client.execute_query("SELECT 1")
                results[name].append(await _round())
    for name, rounds in results.items():
        ours, server, wall = (statistics.median(r[k] for r in rounds) for k in range(3))
        print(f"{name:28s}: service {ours:5.0f} µs CPU, PostgreSQL {server:5.0f} µs CPU, {wall:5.0f} µs wall per query")


if __name__ == "__main__":
    asyncio.run(main())
