"""A transaction the database aborted because of another one runs again, whole (invoicing.retrying).

Real failures, not simulated ones: on PostgreSQL two transactions that lock two rows in
opposite orders, so the server picks a deadlock victim; on SQLite a second connection (as
another process would) holding the write lock past the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError
from tortoise.transactions import in_transaction

from bot.db import database
from invoicing.errors import Conflict
from invoicing.retrying import ATTEMPTS, atomic_retry, transaction_attempts
from invoicing.sql import Statement, is_transient_failure
from models import Tenant
from tests import factories as f


class _DeadlockVictim(Exception):
    """What the sqlstate of asyncpg's DeadlockDetectedError looks like to the classifier."""

    sqlstate = "40P01"


def test_deadlocks_serialization_failures_and_a_locked_sqlite_are_transient_nothing_else():
    locked = sqlite3.OperationalError("database is locked")
    try:
        raise OperationalError(locked)
    except OperationalError as wrapped:
        assert is_transient_failure(wrapped)  # as Tortoise raises it: the sqlite3 error as argument and context
    assert is_transient_failure(TransactionManagementError(locked))  # from a failed BEGIN
    assert is_transient_failure(_DeadlockVictim())
    try:
        raise OperationalError("run failed") from _DeadlockVictim()
    except OperationalError as chained:
        assert is_transient_failure(chained)
    assert not is_transient_failure(IntegrityError(sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not is_transient_failure(OperationalError(sqlite3.OperationalError("no such table: order")))
    assert not is_transient_failure(Conflict("already invoiced"))


async def _lock(tenant_id: int) -> None:
    q = Statement()
    await q.rows(f"SELECT id FROM tenant WHERE id = {q(tenant_id)}{q.for_update()}")


async def test_a_deadlock_victim_runs_again_and_both_transactions_commit(db):
    if db.backend != "postgres":
        pytest.skip("row locks and deadlock detection are PostgreSQL's")
    first, second = await f.tenant("one"), await f.tenant("two")
    calls: Counter[str] = Counter()
    both_hold_one = asyncio.Barrier(2)

    async def work(name: str, a: Tenant, b: Tenant) -> str:
        calls[name] += 1
        await _lock(a.id)
        if calls[name] == 1:
            await both_hold_one.wait()  # first attempt: each holds one row and wants the other's
        await _lock(b.id)
        await Tenant.filter(id=a.id).update(name=f"{a.name}-{name}")
        return name

    async def inline(name: str, a: Tenant, b: Tenant) -> str:
        async for attempt in transaction_attempts():
            async with attempt:
                return await work(name, a, b)
        raise AssertionError("unreachable")

    results = await asyncio.wait_for(asyncio.gather(
        atomic_retry(lambda _: work("forward", first, second)), inline("backward", second, first)), 30)
    assert results == ["forward", "backward"]
    assert sorted(calls.values()) == [1, 2]  # the victim ran again, once
    assert sorted(await Tenant.all().values_list("name", flat=True)) == ["one-forward", "two-backward"]


def _hold_write_lock(path: Path, holding: threading.Event, release: threading.Event) -> None:
    """Another process's writer: takes the file's write lock and keeps it until told to let go."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE tenant SET name = name")
        holding.set()
        release.wait(10)
        other.execute("COMMIT")
    finally:
        other.close()


@pytest.mark.parametrize("spelling", ["atomic_retry", "transaction_attempts"])
async def test_a_write_that_meets_another_writer_past_the_busy_timeout_runs_again(tmp_path, spelling):
    path = tmp_path / "invoicebot.db"
    async with database(f"sqlite://{path}?busy_timeout=100"):
        tenant = await f.tenant()
        holding, release = threading.Event(), threading.Event()
        other = threading.Thread(target=_hold_write_lock, args=(path, holding, release))
        other.start()
        await asyncio.to_thread(holding.wait, 5)
        asyncio.get_running_loop().call_later(0.25, release.set)  # longer than one busy timeout
        calls = 0

        async def work() -> None:
            nonlocal calls
            calls += 1
            await Tenant.filter(id=tenant.id).update(name="renamed")

        try:
            if spelling == "atomic_retry":
                await atomic_retry(lambda _: work())
            else:
                async for attempt in transaction_attempts():
                    async with attempt:
                        await work()
        finally:
            release.set()
            await asyncio.to_thread(other.join, 5)
        assert (await Tenant.get(id=tenant.id)).name == "renamed"
        assert calls == 1  # BEGIN IMMEDIATE waited and was retried; the block itself ran once
        async with in_transaction():  # a failed BEGIN left the process's transaction lock free
            assert await Tenant.filter(id=tenant.id).exists()


async def test_other_errors_and_nested_transactions_are_not_retried(db):
    tenant = await f.tenant()
    calls = 0

    async def refuse(_: object) -> None:
        nonlocal calls
        calls += 1
        await Tenant.filter(id=tenant.id).update(name="changed")
        raise Conflict("refused")

    with pytest.raises(Conflict):
        await atomic_retry(refuse)
    assert calls == 1 and (await Tenant.get(id=tenant.id)).name == "inkwell"  # rolled back, not run again

    async def victim(_: object) -> None:
        nonlocal calls
        calls += 1
        raise OperationalError(sqlite3.OperationalError("database is locked"))

    calls = 0
    with pytest.raises(OperationalError):
        await atomic_retry(victim)
    assert calls == ATTEMPTS  # bounded

    calls = 0
    with pytest.raises(OperationalError):
        async with in_transaction():
            await atomic_retry(victim)
    assert calls == 1  # inside an enclosing transaction only the enclosing one may run again
