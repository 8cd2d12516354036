"""Fixtures shared by the whole suite: a real database per test, on SQLite and PostgreSQL.

Every test that takes ``db`` runs once per backend. SQLite is always available;
PostgreSQL runs when ``INVOICEBOT_TEST_POSTGRES_URL`` points at a server whose
user may create databases (``.ci/run`` starts a throwaway cluster and sets it).
Each test gets a fresh database: a copy of a migrated template (SQLite file copy,
PostgreSQL ``CREATE DATABASE … TEMPLATE``), so migrations run once per session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.db import database, database_url_with_name, migrate, postgres_admin

POSTGRES_URL = os.environ.get("INVOICEBOT_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


@dataclass(frozen=True)
class Db:
    backend: str
    url: str


def _pg_url(database_name: str) -> str:
    return database_url_with_name(POSTGRES_URL, database_name)


async def _pg_admin(sql: str) -> None:
    await postgres_admin(POSTGRES_URL, sql)


def _run_blocking(coro) -> None:
    """Run a coroutine to completion on a private loop in a worker thread.

    Session fixtures are first requested from inside a test's running loop, where
    ``asyncio.run`` is not allowed.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _run_blocking(migrate(f"sqlite://{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template() -> str:
    name = f"invoicebot_tpl_{uuid.uuid4().hex[:8]}"
    _run_blocking(_pg_admin(f'CREATE DATABASE "{name}"'))
    _run_blocking(migrate(_pg_url(name)))
    yield name
    _run_blocking(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    """A fresh, migrated, empty database (not opened)."""
    if request.param == "sqlite":
        path = tmp_path / "invoicebot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield Db("sqlite", f"sqlite://{path}")
        return
    template = request.getfixturevalue("postgres_template")
    name = f"invoicebot_t_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield Db("postgres", _pg_url(name))
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db(db_url: Db) -> AsyncIterator[Db]:
    """The fresh database, opened for the test (Tortoise models usable directly)."""
    async with database(db_url.url, apply_migrations=False):
        yield db_url


@pytest.fixture
async def transports() -> AsyncIterator[list]:
    """Mail transports a test opens; closed at the end so no connection outlives its server."""
    opened: list = []
    yield opened
    for transport in opened:
        await transport.close()
