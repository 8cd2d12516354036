"""Database lifecycle: Tortoise config from a URL, migrations, open/close.

The same code serves SQLite (embedded default) and PostgreSQL; the URL decides. SQLite
connections use ``bot.sqlite_backend`` (write transactions take the lock up front, so the
server and a CLI process can write the same file).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.exceptions import ConfigurationError
from tortoise.migrations.api import migrate as tortoise_migrate

from models import MODEL_MODULES


def normalise_url(url: str) -> str:
    """Tortoise spells PostgreSQL as ``postgres://``; accept the common ``postgresql://`` too."""
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def _connection_config(url: str) -> str | dict[str, Any]:
    """Tortoise's own reading of the URL (host, pool size, pragmas from the query string), with for
    SQLite our client (``bot.sqlite_backend``: ``BEGIN IMMEDIATE``, WAL, busy timeout) and for
    PostgreSQL over asyncpg our pooled connection class (``PooledConnection``)."""
    try:
        config = expand_db_url(url)
    except ConfigurationError:  # not ours to judge here: Tortoise reports a bad URL when it opens it
        return url
    if url.startswith("sqlite://"):
        return {**config, "engine": "bot.sqlite_backend"}
    if config.get("engine") != "tortoise.backends.asyncpg":
        return url
    from bot.pg_connection import PooledConnection

    return {**config, "credentials": {**config["credentials"], "connection_class": PooledConnection}}


def tortoise_config(url: str) -> dict[str, Any]:
    """The Tortoise configuration for ``url``; pure (creates nothing, connects nowhere)."""
    url = normalise_url(url)
    return {
        "connections": {"default": _connection_config(url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


#: For ``tortoise makemigrations`` during development (see pyproject ``[tool.tortoise]``).
#: A plain value: importing this module creates no directory and opens nothing.
TORTOISE_ORM = tortoise_config("sqlite://./invoicebot-data/invoicebot.db")


def _prepare(url: str) -> None:
    """Create the directory of an embedded SQLite database (at connect time, never at import)."""
    url = normalise_url(url)
    if url.startswith("sqlite://") and not url.startswith("sqlite://:memory:"):
        Path(url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)


async def migrate(url: str) -> None:
    """Apply every pending migration to the database at ``url`` (idempotent)."""
    _prepare(url)
    async with TortoiseContext():
        await tortoise_migrate(config=tortoise_config(url))
        await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def database(
    url: str, *, apply_migrations: bool = True, global_fallback: bool = True
) -> AsyncIterator[TortoiseContext]:
    """Open the database for the duration of the block (migrating it first by default).

    ``global_fallback`` makes the connection visible to tasks started outside this
    context (aiohttp request handlers, background tasks); only one may be open so.
    """
    if apply_migrations:
        await migrate(url)
    # Tortoise caches prepared INSERT/UPDATE SQL per connection *name*, not per
    # dialect; a process that opens SQLite and then PostgreSQL (tests, benchmarks)
    # would otherwise reuse SQLite's "?" placeholders on asyncpg.
    EXECUTOR_CACHE.clear()
    _prepare(url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url), _enable_global_fallback=global_fallback)
        yield ctx


async def postgres_admin(url: str, sql: str) -> None:
    """Run one administrative statement (``CREATE DATABASE``…) on the server at ``url``.

    Outside any transaction, as such statements require; used by tests, benchmarks
    and trials that make throwaway databases.
    """
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database_url_with_name(url: str, name: str) -> str:
    """``postgres://u@h:5432/postgres`` → ``postgres://u@h:5432/<name>``."""
    return f"{url.rsplit('/', 1)[0]}/{name}"


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str, prefix: str) -> AsyncIterator[tuple[str, str]]:
    """A new, empty database ``<prefix>_<random>`` on the PostgreSQL server at ``server_url`` (which must allow
    ``CREATE DATABASE``), as ``(url, name)``; dropped on the way out, with any connection still open to it, also
    when the block fails. For tests, benchmarks and trials."""
    base = normalise_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await postgres_admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield database_url_with_name(base, name), name
    finally:
        await postgres_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
