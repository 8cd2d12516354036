"""The embedded SQLite backend: Tortoise's SQLite client, with write transactions that wait for the lock.

Tortoise's engine module protocol: ``bot.db.tortoise_config`` names this module as the
engine of ``sqlite://`` URLs and Tortoise instantiates ``client_class``.

Why not Tortoise's own client: it begins every transaction with a plain (deferred)
``BEGIN``, which takes no lock until the first write. A transaction that reads first (every
feed upsert does) and then writes must upgrade to the write lock; when another *process*
(``invoicebot run``, ``invoicebot token create``) has written meanwhile, SQLite in WAL mode
refuses the upgrade at once with "database is locked", whatever the busy timeout, because
the transaction's snapshot is stale. Here a transaction begins with ``BEGIN IMMEDIATE``: it
takes the write lock up front, waiting up to ``BUSY_TIMEOUT_MS`` for the other writer to
finish, and is never upgraded. Inside one process nothing changes: Tortoise already runs the
transactions of a process one at a time on its single connection.

Also: a failed ``BEGIN`` (the lock still busy after the timeout) releases the process's
transaction lock and connection context again (Tortoise's own context keeps them, so every
later transaction of the process would wait forever); the error it raises is transient for
``invoicing.retrying``, which runs the transaction again a bounded number of times.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tortoise.backends.base.client import NestedTransactionContext, TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

#: How long a statement or ``BEGIN IMMEDIATE`` waits for another process's write lock (milliseconds).
#: Longer than any short CLI write; a longer wait ends in "database is locked", which callers retry.
BUSY_TIMEOUT_MS = 5000
#: WAL: readers never wait for the writer, and a writer waits only for the other writer.
JOURNAL_MODE = "WAL"


class _ImmediateTransactionContext(SqliteTransactionContext):
    """Tortoise's SQLite transaction context, undone cleanly when ``BEGIN`` fails."""

    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        client: TransactionalDBClient = self.connection
        return client


class _ImmediateTransactionWrapper(SqliteTransactionWrapper):
    """A transaction on the process's connection that holds the write lock from its first statement."""

    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(_ImmediateTransactionWrapper(self))


class ImmediateSqliteClient(SqliteClient):
    """Tortoise's SQLite client with ``BEGIN IMMEDIATE`` transactions, WAL and a stated busy timeout."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        kwargs.setdefault("journal_mode", JOURNAL_MODE)
        kwargs.setdefault("busy_timeout", BUSY_TIMEOUT_MS)
        super().__init__(file_path, **kwargs)

    def _in_transaction(self) -> TransactionContext:
        return _ImmediateTransactionContext(_ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
