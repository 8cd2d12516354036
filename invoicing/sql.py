"""Hand-written SQL: the one place that knows SQL dialects and decodes raw column values.

Most code uses the ORM. A statement is written by hand only where a benchmark showed
the ORM's query building or per-row objects to cost more than the database work
(the order write path, the orders page, token checks, the scheduler's claim, batched runs,
the outboxes' chunked claims, the Slack lists of ``schedule`` and ``deliveries``).
Such statements are built with ``Statement``: values are bound through ``param`` (or
``any_of``), never formatted into the text (but for the code's own constants that a partial
index needs to see, ``constants_in``), and the placeholders follow the
connection's dialect (``$1`` for asyncpg, ``?`` for SQLite). Rows come back raw, so
values of columns whose Python type the driver does not give (SQLite returns
datetimes as ISO text, JSON as text) are decoded with ``instant`` and ``json_value``.
``is_transient_failure`` tells, for either dialect, which errors abort a transaction only
because of a concurrent one (``invoicing.retrying`` runs such a transaction again).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from invoicing.ingest.batches import CHUNK, chunks

#: PostgreSQL's serialization_failure and deadlock_detected: the transaction was rolled back because of
#: another one, and may succeed when run again.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
#: SQLite's "database is locked" (another connection or process holds the lock past the busy timeout,
#: or a WAL snapshot went stale): the statement failed, and the transaction may succeed when run again.
_TRANSIENT_SQLITE = ("SQLITE_BUSY", "SQLITE_LOCKED")

#: What ``Statement.constants_in`` writes into a statement's text.
_CONSTANT = re.compile(r"[a-z_]{1,40}")
#: How Tortoise's ``JSONField`` encodes by default; raw writes must store the same text.
_json_dumps = partial(json.dumps, separators=(",", ":"))


def connection(name: str = "default") -> BaseDBAsyncClient:
    """The current connection (or transaction) of the given Tortoise connection name."""
    conn: BaseDBAsyncClient = connections.get(name)
    return conn


def is_postgres(conn: BaseDBAsyncClient | None = None) -> bool:
    """Whether ``conn`` (default: the current connection) is PostgreSQL rather than SQLite."""
    return (conn if conn is not None else connection()).capabilities.dialect == "postgres"


def any_of_parts(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``values`` in the pieces one ``Statement.any_of`` each takes: all at once on PostgreSQL (one array
    parameter, one statement), ``batches.CHUNK`` at a time on SQLite (an ``IN`` list, whose parameters are
    bounded); nothing when empty."""
    return chunks(values, max(len(values), 1) if is_postgres() else CHUNK)


class Statement:
    """One statement's text being built and its bound parameters, in the connection's dialect."""

    def __init__(self, conn: BaseDBAsyncClient | None = None) -> None:
        self.conn = conn if conn is not None else connection()
        self.postgres = is_postgres(self.conn)
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        """Bind ``value`` and return its placeholder."""
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else "?"

    __call__ = param

    def any_of(self, values: Sequence[Any], pg_type: str) -> str:
        """``= ANY($n::int[])`` (one prepared statement for any length) or ``IN (?, ?, …)``."""
        if self.postgres:
            return f"= ANY({self.param(list(values))}::{pg_type}[])"
        return f"IN ({','.join(self.param(v) for v in values)})"

    def constants_in(self, values: Sequence[str]) -> str:
        """``IN ('a', 'b')`` with the values in the text: only for the code's own constants (an enum's values).

        A partial index (``WHERE status IN (…)``) is used only when the planner can see from the statement
        itself that its rows are the index's; a bound parameter hides that. Anything but lower-case words
        is refused, so no outside text can reach the statement this way.
        """
        if not values or not all(_CONSTANT.fullmatch(value) for value in values):
            raise ValueError(f"not constants: {values!r}")
        return f"IN ({', '.join(repr(str(value)) for value in values)})"

    def for_update(self, *, skip_locked: bool = False) -> str:
        """A row-lock clause on PostgreSQL; empty on SQLite, whose writers hold the database lock."""
        if not self.postgres:
            return ""
        return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` (built with this statement's placeholders) and return its rows as tuples.

        Also for ``INSERT/UPDATE/DELETE … RETURNING``: Tortoise's asyncpg ``execute_query``
        drops the rows of such statements, so they are fetched through its dict variant
        (their RETURNING columns must then have distinct names).
        """
        if self.postgres and sql.lstrip()[:6].upper() in {"INSERT", "UPDATE", "DELETE"}:
            return [tuple(row.values()) for row in await self.conn.execute_query_dict(sql, self.params)]
        _, rows = await self.conn.execute_query(sql, self.params)
        return [tuple(row) for row in rows]

    async def dicts(self, sql: str) -> list[dict[str, Any]]:
        """Run ``sql`` and return its rows as dicts keyed by column name."""
        return list(await self.conn.execute_query_dict(sql, self.params))

    async def execute(self, sql: str) -> int:
        """Run ``sql`` for its effect; returns the number of rows it changed."""
        count, _ = await self.conn.execute_query(sql, self.params)
        return int(count)

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per row of values (the placeholders were made with ``param`` in order)."""
        await self.conn.execute_many(sql, [list(row) for row in rows])


def instant(value: datetime | str | None) -> datetime | None:
    """A datetime column's raw value as an aware UTC datetime (asyncpg: datetime; SQLite: ISO text)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def json_value(value: Any) -> Any:
    """A JSON column's raw value decoded (drivers return text, bytes or already-decoded values)."""
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    return json.loads(value) if isinstance(value, str) else value


def json_text(value: Any) -> str:
    """A value encoded for a JSON column written by hand, as ``JSONField`` would store it."""
    return _json_dumps(value)


def is_transient_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is (or wraps) a failure caused only by a concurrent transaction.

    PostgreSQL: ``deadlock detected`` (40P01) or a serialization failure (40001); asyncpg
    raises them as ``DeadlockDetectedError`` / ``SerializationError``, which Tortoise lets
    through unwrapped. SQLite: ``database is locked`` (``SQLITE_BUSY``/``SQLITE_LOCKED`` and
    their extended codes), which Tortoise wraps in ``OperationalError`` or, from ``BEGIN``,
    ``TransactionManagementError``. The wrapped error is found through ``__cause__``,
    an unsuppressed ``__context__`` or the wrapper's first argument. Anything else (a
    constraint violation, a refusal of ours) is not transient.
    """
    return any(
        getattr(error, "sqlstate", None) in _TRANSIENT_SQLSTATES
        or (isinstance(error, sqlite3.OperationalError) and (
            getattr(error, "sqlite_errorname", "").startswith(_TRANSIENT_SQLITE) or "database is locked" in str(error)))
        for error in _causes(exc)
    )


def is_unique_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is (or wraps) a unique-key violation (PostgreSQL 23505, SQLite UNIQUE).

    Not transient in general: callers whose transaction only *creates if missing* pass it
    to ``retrying.atomic_retry(also=…)``, because running again finds the winner's row.
    """
    return any(
        getattr(error, "sqlstate", None) == "23505"
        or (isinstance(error, sqlite3.IntegrityError) and "UNIQUE constraint failed" in str(error))
        for error in _causes(exc)
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every error it wraps: ``__cause__``, an unsuppressed ``__context__``, the first argument."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        linked = [error.__cause__, None if error.__suppress_context__ else error.__context__, *error.args[:1]]
        pending += [e for e in linked if isinstance(e, BaseException)]
