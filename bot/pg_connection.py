"""The asyncpg connection class of the service's PostgreSQL pool: released without a reset round trip.

asyncpg resets every connection given back to its pool with ``SELECT pg_advisory_unlock_all();
CLOSE ALL; UNLISTEN *; RESET ALL;``: one more round trip and four statements for every query
Tortoise runs outside a transaction, which about doubles what a short query costs the service
and PostgreSQL (``benchmarks/pg_pool.py``). Our pool connections never carry session state that could leak
to the next user: no session-level advisory locks (leases are rows, ``invoicing.scheduling.claims``),
no cursors left open, no ``LISTEN`` (``bot.wakeups`` listens on a connection of its own), no
``SET`` outside a transaction (``SET LOCAL`` ends with it). So the reset query is empty.

What a caller may still rely on: a connection released inside a transaction is rolled back
before anyone else gets it (asyncpg does that before the reset query, whatever the query is).
``tests/bot/test_pg_connection.py`` holds both promises.
"""

from __future__ import annotations

from asyncpg.connection import Connection

__all__ = ["PooledConnection"]


class PooledConnection(Connection):
    def get_reset_query(self) -> str:
        return ""
