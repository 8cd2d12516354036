"""Per-workspace serial lanes: one workspace's changes are applied in the order they arrived.

Slack requests are acknowledged at once and handled afterwards (our own task after the ack: bot/slack.py), so
two commands typed quickly would run concurrently and the second could miss the first's
effect (``company add zeta`` then ``accounting zeta set …`` → "No company 'zeta'"). A lane
per workspace (Slack team id) puts them back in order.

What a caller may rely on:

* ``take(team, mutates=…)`` is synchronous: call it in the ack function, *before*
  ``ack()``. The order of ``take`` calls in this process is the arrival order.
* A mutation starts after every mutation of the same workspace that arrived before it
  has finished. A read starts after every earlier mutation has finished too (a read typed
  after a change sees it), but reads never wait for reads and nothing waits for a read.
* A turn ends when its holder leaves ``turn()`` or ``hold_timeout`` seconds after it
  began, whichever comes first: a handler that hangs (or whose listener never ran) delays
  its lane by at most that, and is logged at warning. The handler itself is not cancelled
  (a run's transaction is not cut in the middle); after the timeout, later requests may
  overlap with it.
* ``turn(…, wait=s)`` gives up with ``LaneBusy`` if the turn has not begun within ``s``
  seconds (a modal submission must be acknowledged within Slack's 3 s); the ticket is
  then spent and holds nobody up.

Order is in-process only. Slack sends a workspace's requests to whichever replica its
load balancer picks, so with several replicas serving Slack traffic two commands of one
workspace may still race; ordering then needs sticky routing by team id (the team is in
the request body, so the balancer would have to read it) or a single replica for
``/slack/events`` (Socket Mode with one connection gives that by construction). A
database-backed lane (an advisory lock per tenant, taken in arrival order) would not
restore order either: arrival order across replicas is not observable.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: How long one request may hold its workspace's lane before later ones go ahead.
HOLD_TIMEOUT_SECONDS = 60.0


class LaneBusy(TimeoutError):
    """The turn did not begin within the wait the caller allowed; nothing was run."""


@dataclass
class _Ticket:
    id: int
    team: str
    mutates: bool
    #: ``done`` of the mutation that arrived last before this one (None: nothing to wait for).
    after: asyncio.Event | None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Lanes:
    """The lanes of one process (one per bolt app); workspaces are independent of each other."""

    def __init__(self, *, hold_timeout: float = HOLD_TIMEOUT_SECONDS) -> None:
        self.hold_timeout = hold_timeout
        self._ids = itertools.count(1)
        self._tickets: dict[int, _Ticket] = {}
        self._last_mutation: dict[str, _Ticket] = {}
        self._watchers: set[asyncio.Task[Any]] = set()

    def take(self, team: str, *, mutates: bool) -> int:
        """Queue a request of ``team`` now; returns the ticket id to pass to ``turn``.

        Must be called from the event loop, without an ``await`` between the request's
        arrival and this call, so that the ticket order is the arrival order.
        """
        previous = self._last_mutation.get(team)
        after = previous.done if previous is not None else None
        ticket = _Ticket(next(self._ids), team, mutates, after)
        self._tickets[ticket.id] = ticket
        if mutates:
            self._last_mutation[team] = ticket
        watcher = asyncio.get_running_loop().create_task(self._watch(ticket), name=f"lane-{ticket.id}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return ticket.id

    async def _watch(self, ticket: _Ticket) -> None:
        """Begin the ticket's turn when its predecessor is done; end it when released or timed out."""
        try:
            if ticket.after is not None:
                await ticket.after.wait()
            ticket.started.set()
            try:
                await asyncio.wait_for(ticket.finished.wait(), self.hold_timeout)
            except TimeoutError:
                log.warning("lane turn timed out team=%s ticket=%d mutates=%s after=%.0fs: later requests go ahead",
                            ticket.team, ticket.id, ticket.mutates, self.hold_timeout)
        finally:
            ticket.done.set()
            self._tickets.pop(ticket.id, None)
            if self._last_mutation.get(ticket.team) is ticket:
                del self._last_mutation[ticket.team]

    @contextlib.asynccontextmanager
    async def turn(self, ticket_id: int | None, *, wait: float | None = None) -> AsyncIterator[None]:
        """Wait for the ticket's turn, run the body, then let the next request go.

        A ticket this process does not know (None, or already ended by the timeout) runs
        at once, unordered: the lane never blocks a request it cannot account for.
        """
        ticket = self._tickets.get(ticket_id) if ticket_id is not None else None
        if ticket is None:
            if ticket_id is not None:
                log.warning("lane ticket unknown or expired ticket=%s: running unordered", ticket_id)
            yield
            return
        try:
            try:
                await asyncio.wait_for(ticket.started.wait(), wait)
            except TimeoutError:
                raise LaneBusy(f"the lane of {ticket.team} is busy") from None
            yield
        finally:
            ticket.finished.set()

    def pending(self, team: str) -> int:
        """Requests of ``team`` queued or running now (for logs and tests)."""
        return sum(1 for t in self._tickets.values() if t.team == team)
