"""Where the replay guard remembers Slack requests: one statement per request, off the main lock on SQLite.

A request is remembered by its verified signature (a replay is refused) and by its stable
id (a retry is not run again) — see ``bot.replays``. ``ReplayStore.sightings`` inserts both
keys in **one** ``INSERT … ON CONFLICT DO NOTHING RETURNING`` and reports which were new,
so the guard costs one round trip before the ack. Exactly one of several simultaneous
callers sees a key as new (the unique constraint decides), on every replica that shares
the store.

Two stores, same behaviour:

* ``ReplayStore`` — the ``slack_request_seen`` table of the service database (through
  Tortoise). What PostgreSQL deployments use: replicas share it.
* ``SqliteFileReplayStore`` — a small SQLite file of its own beside the embedded database,
  on its own connection. On the embedded SQLite every write of the service queues behind
  one connection lock, so during a scheduled run the insert before each ack would wait for
  the run's transactions; a file of its own never does. SQLite deployments are one process
  (no replicas), so nothing else needs to see it; it is durable, so a replay after a restart
  is still refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite
from tortoise import connections

#: slack_sdk's ``SignatureVerifier`` accepts a timestamp this far from now, either way.
WINDOW_SECONDS = 5 * 60
#: Extra time a row is kept, for replicas whose clocks disagree by up to this much.
CLOCK_SKEW_SECONDS = 60
PURGE_INTERVAL_SECONDS = 30.0
PURGE_BATCH = 1000
#: How long a request id is remembered: Slack's last retry comes about 5 minutes after the first try.
RETRY_RETENTION_SECONDS = 15 * 60

_TABLE = "slack_request_seen"
#: (key, request timestamp, seen at, retain until or None)
_Row = tuple[str, int, datetime, int | None]


@dataclass(frozen=True)
class Sightings:
    """Whether the signature / the stable id were seen for the first time (True when not given)."""

    signature: bool
    key: bool


class ReplayStore:
    """Remembers requests in the service database's ``slack_request_seen`` table (``models.SeenRequest``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._next_purge = 0.0

    async def sightings(self, timestamp: int, *, signature: str | None, key: str | None) -> Sightings:
        """Remember a verified ``signature`` (for the window) and a stable ``key`` (for
        ``RETRY_RETENTION_SECONDS``) in one statement; which of them were new."""
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL_SECONDS
            await self.purge(now)
        seen_at = datetime.fromtimestamp(now, UTC)
        rows: list[_Row] = []
        if signature is not None:
            rows.append((signature, timestamp, seen_at, None))
        if key is not None:
            rows.append((key, timestamp, seen_at, int(now) + RETRY_RETENTION_SECONDS))
        new = await self._insert(rows) if rows else set()
        return Sightings(signature=signature is None or signature in new, key=key is None or key in new)

    async def first_sighting(self, timestamp: int, signature: str) -> bool:
        """True the first time this (verified) signature is presented, False for every replay."""
        return (await self.sightings(timestamp, signature=signature, key=None)).signature

    async def first_delivery(self, key: str, timestamp: int) -> bool:
        """True the first time a request with this stable id (``request_key``) is seen, False for a retry."""
        return (await self.sightings(timestamp, signature=None, key=key)).key

    async def purge(self, now: float | None = None) -> int:
        """Delete up to ``PURGE_BATCH`` rows that can no longer match; return how many."""
        current = int(self._clock() if now is None else now)
        return await self._delete(current - WINDOW_SECONDS - CLOCK_SKEW_SECONDS, current)

    async def close(self) -> None:
        """Release what the store holds (nothing for the service database)."""

    async def _insert(self, rows: Sequence[_Row]) -> set[str]:
        conn = connections.get("default")
        postgres = conn.capabilities.dialect == "postgres"
        sql, params = _insert_sql(rows, postgres=postgres)
        result = await conn.execute_query_dict(sql, params)  # a fetch: the RETURNING rows (on asyncpg too)
        return {str(r["signature"]) for r in result}

    async def _delete(self, oldest: int, current: int) -> int:
        conn = connections.get("default")
        mark = ("$1", "$2", "$3") if conn.capabilities.dialect == "postgres" else ("?", "?", "?")
        count, _ = await conn.execute_query(_delete_sql(*mark), [oldest, current, PURGE_BATCH])
        return count


class SqliteFileReplayStore(ReplayStore):
    """The same store in a SQLite file of its own (``:memory:`` for tests), on its own connection."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # Requests arriving together at start must share one connection: each opening its own ran
        # ``journal_mode=WAL`` side by side, which fails with "database is locked".
        self._opening = asyncio.Lock()

    async def _connection(self) -> aiosqlite.Connection:
        if self._db is not None:
            return self._db
        async with self._opening:
            if self._db is not None:
                return self._db
            db = await aiosqlite.connect(self._path, isolation_level=None)  # autocommit: one statement each
            await db.execute("PRAGMA busy_timeout=5000")  # first: another process may hold the file
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} (id INTEGER PRIMARY KEY, "
                             "signature VARCHAR(128) NOT NULL UNIQUE, timestamp BIGINT NOT NULL, "
                             "seen_at TIMESTAMP NOT NULL, retain_until BIGINT)")
            await db.execute(f"CREATE INDEX IF NOT EXISTS {_TABLE}_timestamp ON {_TABLE} (timestamp)")
            self._db = db
        return self._db

    async def _insert(self, rows: Sequence[_Row]) -> set[str]:
        sql, params = _insert_sql(rows, postgres=False)
        db = await self._connection()
        async with db.execute(sql, params) as cursor:
            return {str(r[0]) for r in await cursor.fetchall()}

    async def _delete(self, oldest: int, current: int) -> int:
        db = await self._connection()
        async with db.execute(_delete_sql("?", "?", "?"), [oldest, current, PURGE_BATCH]) as cursor:
            return max(0, cursor.rowcount)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None


def _insert_sql(rows: Sequence[_Row], *, postgres: bool) -> tuple[str, list[object]]:
    params: list[object] = []
    values = []
    for row in rows:
        marks = [f"${len(params) + i + 1}" if postgres else "?" for i in range(4)]
        values.append(f"({', '.join(marks)})")
        params += [row[0], row[1], row[2] if postgres else row[2].isoformat(" "), row[3]]
    return (f"INSERT INTO {_TABLE} (signature, timestamp, seen_at, retain_until) VALUES {', '.join(values)} "
            "ON CONFLICT (signature) DO NOTHING RETURNING signature", params)


def _delete_sql(oldest: str, current: str, batch: str) -> str:
    """Rows whose signature left the window, or whose id is past ``retain_until`` (a batch, oldest first)."""
    return (f"DELETE FROM {_TABLE} WHERE id IN (SELECT id FROM {_TABLE} WHERE (retain_until IS NULL AND "
            f"timestamp < {oldest}) OR retain_until < {current} ORDER BY id LIMIT {batch})")
