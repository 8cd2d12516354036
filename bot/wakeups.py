"""Wake-ups between processes: a web replica tells the workers that something is due now.

``serve --role web`` answers Slack and the feed and runs no background loop; the work its
commands commit (a manual run's e-mail, a resend, a settings change that moves a schedule)
is done by ``--role worker`` processes. Without a wake-up a worker would notice it only at
its next poll (``bot.app``: 30 s). On PostgreSQL the web replica sends ``NOTIFY`` on one
channel after its commit and every listening process wakes the named loop at once; the
payload is a topic (``outbox``, ``scheduler``), never data.

What a caller may rely on:

* A wake-up is a hint. It is sent after the commit it announces, so a listener that wakes
  finds the rows; one that is lost (a listener reconnecting, a replica starting) costs at
  most one poll interval, never a row: the loops still poll.
* ``publish`` never raises: a failed ``NOTIFY`` is logged and the poll catches up.
* On SQLite there is no channel: ``publish`` does nothing and ``listen`` returns at once
  (one process per database file is the embedded default; see README "Operations").
* The listener reconnects after a lost connection (backoff up to 30 s) and stops with ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from tortoise import connections

log = logging.getLogger(__name__)

CHANNEL = "invoicebot_wake"
#: The topics a wake-up names; any other payload is ignored by listeners.
TOPICS = frozenset({"outbox", "scheduler"})
RECONNECT_MAX_SECONDS = 30.0


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


class Wakeups:
    """Publish and listen on the wake-up channel of the database at ``url``."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._enabled = _is_postgres(url)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()  # set while a listener connection is open (tests wait on it)

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def publish(self, topic: str) -> None:
        """``NOTIFY`` the topic on the service's own connection (after the caller's commit)."""
        if not self._enabled or topic not in TOPICS:
            return
        try:
            await connections.get("default").execute_query("SELECT pg_notify($1, $2)", [CHANNEL, topic])
        except Exception:  # a hint only: the listeners' poll catches up
            log.warning("wake-up not sent topic=%s", topic, exc_info=True)

    def listen(self, on_wake: Callable[[str], None]) -> None:
        """Start listening in the background; ``on_wake(topic)`` runs on the loop for each wake-up."""
        if self._enabled and self._task is None:
            self._task = asyncio.create_task(self._listen(on_wake), name="wakeups")

    async def _listen(self, on_wake: Callable[[str], None]) -> None:
        import asyncpg

        def received(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload in TOPICS:
                on_wake(payload)

        delay = 1.0
        while not self._stopping.is_set():
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._url.replace("postgres://", "postgresql://", 1))
                await conn.add_listener(CHANNEL, received)
                self.connected.set()
                delay = 1.0
                for topic in sorted(TOPICS):  # anything published while we were away: look now
                    on_wake(topic)
                while not self._stopping.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=5.0)
            except Exception:  # database restarting: try again, the loops poll meanwhile
                log.warning("wake-up listener lost its connection; retrying in %.0f s", delay, exc_info=True)
            finally:
                self.connected.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=5)
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(RECONNECT_MAX_SECONDS, delay * 2)

    async def close(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
