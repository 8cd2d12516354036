"""The replay stores on their own: one statement per request, exactly-once under concurrency, durable, purged.

``ReplayStore`` is the service database's table (PostgreSQL in production, run here on both
backends); ``SqliteFileReplayStore`` is the embedded deployment's file of its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tortoise import connections

from bot.app import replay_store
from bot.replay_store import RETRY_RETENTION_SECONDS, WINDOW_SECONDS, ReplayStore, SqliteFileReplayStore
from models import SeenRequest

NOW = 1_800_000_000.0


@pytest.fixture(params=["database", "file"])
async def store(request, db, tmp_path: Path):
    made = ReplayStore(clock=lambda: NOW) if request.param == "database" else SqliteFileReplayStore(
        str(tmp_path / "seen.sqlite3"), clock=lambda: NOW)
    yield made
    await made.close()


async def test_signature_and_id_are_remembered_in_one_call_and_each_is_new_once(store: ReplayStore):
    first = await store.sightings(int(NOW), signature="v0=aa", key="id:trigger:1")
    assert (first.signature, first.key) == (True, True)
    replay = await store.sightings(int(NOW), signature="v0=aa", key="id:trigger:1")
    assert (replay.signature, replay.key) == (False, False)
    retry = await store.sightings(int(NOW) + 60, signature="v0=bb", key="id:trigger:1")  # re-signed by Slack
    assert (retry.signature, retry.key) == (True, False)
    nothing = await store.sightings(int(NOW), signature=None, key=None)
    assert (nothing.signature, nothing.key) == (True, True)


async def test_exactly_one_of_twenty_simultaneous_callers_sees_a_request_as_new(store: ReplayStore):
    results = await asyncio.gather(*(store.sightings(int(NOW), signature="v0=same", key="id:event:Ev1")
                                     for _ in range(20)))
    assert sum(r.signature for r in results) == 1 and sum(r.key for r in results) == 1


async def test_expired_rows_are_purged_and_fresh_ones_kept(store: ReplayStore):
    await store.sightings(int(NOW) - WINDOW_SECONDS - 120, signature="v0=old", key=None)
    await store.sightings(int(NOW), signature="v0=new", key="id:trigger:9")
    assert await store.purge(NOW) == 1
    assert await store.purge(NOW + RETRY_RETENTION_SECONDS + 1) >= 1  # the id's retention ran out too
    assert await store.first_delivery("id:trigger:9", int(NOW)) is True


async def test_the_file_store_survives_a_restart_and_never_touches_the_service_database(db, tmp_path: Path):
    path = str(tmp_path / "seen.sqlite3")
    before = SqliteFileReplayStore(path, clock=lambda: NOW)
    assert await before.first_sighting(int(NOW), "v0=captured") is True
    await before.close()
    after = SqliteFileReplayStore(path, clock=lambda: NOW)
    try:
        assert await after.first_sighting(int(NOW), "v0=captured") is False  # a replay after a restart
    finally:
        await after.close()
    assert await SeenRequest.all().count() == 0


async def test_the_service_database_store_is_one_statement(db, monkeypatch: pytest.MonkeyPatch):
    conn = connections.get("default")
    statements: list[str] = []
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
        original = getattr(type(conn), name)

        async def counting(self, query, values=None, _original=original):  # counts; the query still runs
            statements.append(query)
            return await _original(self, query, values)

        monkeypatch.setattr(type(conn), name, counting)
    store = ReplayStore(clock=lambda: NOW)
    await store.purge(NOW)
    statements.clear()
    store._next_purge = NOW + 1  # the periodic purge is not part of a request's cost
    await store.sightings(int(NOW), signature="v0=one", key="id:trigger:one")
    assert len(statements) == 1 and statements[0].startswith("INSERT")


def test_the_embedded_database_gets_a_file_of_its_own_and_postgresql_the_shared_table(tmp_path: Path):
    assert type(replay_store("postgres://u@h/db")) is ReplayStore
    side = replay_store(f"sqlite://{tmp_path}/invoicebot.db")
    assert isinstance(side, SqliteFileReplayStore) and side._path == f"{tmp_path}/invoicebot.db-slack-seen"
    assert replay_store("sqlite://:memory:")._path == ":memory:"  # type: ignore[attr-defined]
