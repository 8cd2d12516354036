"""The PostgreSQL pool's connections: no reset round trip on release, an open transaction still rolled back."""

from __future__ import annotations

import asyncpg
import pytest
from tortoise import connections

from bot.db import tortoise_config
from bot.pg_connection import PooledConnection
from tests.conftest import Db


def test_the_postgres_pool_uses_the_connection_class_without_a_reset_query():
    config = tortoise_config("postgresql://u:p@db.example:5433/invoicebot?maxsize=7")["connections"]["default"]
    assert config["engine"] == "tortoise.backends.asyncpg"
    assert config["credentials"]["connection_class"] is PooledConnection
    assert config["credentials"]["maxsize"] == "7"  # the URL's own options are kept
    assert tortoise_config("sqlite://:memory:")["connections"]["default"]["engine"] == "bot.sqlite_backend"


async def test_a_released_connection_is_not_reset_but_an_open_transaction_is_rolled_back(db: Db):
    if db.backend != "postgres":
        pytest.skip("asyncpg's pool only")
    client = connections.get("default")
    await client.execute_query("SELECT 1")  # Tortoise opens its pool on first use
    assert client._pool._connection_class is PooledConnection
    url = db.url.replace("postgres://", "postgresql://", 1)
    async with asyncpg.create_pool(url, min_size=1, max_size=1, connection_class=PooledConnection) as pool:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE scratch (n int)")
            await conn.execute("SET application_name = 'left behind'")  # session state: kept, no RESET ALL
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO scratch VALUES (1)")
            pid = conn.get_server_pid()
        # Released mid-transaction (a caller that failed to finish): rolled back before the next user.
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM scratch") == 0
            assert await conn.fetchval("SHOW application_name") == "left behind"
