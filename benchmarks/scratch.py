"""A throwaway PostgreSQL database for one benchmark run: created on entry, dropped on exit (also on failure)."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.db import database_url_with_name, normalise_url, postgres_admin


@contextlib.asynccontextmanager
async def scratch_postgres(server_url: str) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database on the server at ``server_url`` (which must allow
    ``CREATE DATABASE``); it is dropped, with any connection still open to it, when the block ends."""
    base = normalise_url(server_url)
    name = f"invoicebot_bench_{uuid.uuid4().hex[:8]}"
    await postgres_admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield database_url_with_name(base, name)
    finally:
        await postgres_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
