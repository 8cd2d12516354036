"""Replay refusal for Slack HTTP requests: a validly signed request is executed once.

Slack signs every request with an HMAC of ``v0:<timestamp>:<body>`` and bolt accepts a
signature while ``|now - timestamp| <= 5 minutes``. Slack sends no nonce, so inside that
window a captured request (say ``invoice 000001 resend``) could be sent again and would
verify. The signature itself is unique per request, though (it covers the timestamp and a
body that carries a fresh ``trigger_id``), so:

* after bolt has verified the signature — only genuine requests are remembered, so an
  attacker without the signing secret cannot fill the table — and before any listener
  runs, ``ReplayStore.first_sighting`` inserts the signature into ``slack_request_seen``;
  the unique constraint makes the insert the atomic "seen before?" test, and because it
  is in the database every replica sharing it refuses the same replay;
* a replay of a command, form submission or button press is refused with **401**;
* a repeated Events API delivery carrying ``X-Slack-Retry-Num`` is acknowledged with
  **200** and not executed again (a non-200 would only make Slack retry once more);
* rows whose timestamp has left the window (plus ``CLOCK_SKEW_SECONDS`` for replicas
  whose clocks differ) can never verify again; each replica deletes them at most every
  ``PURGE_INTERVAL_SECONDS``, at most ``PURGE_BATCH`` rows at a time, so the table stays
  at about one window of traffic.

Socket Mode requests carry no signature (the WebSocket is authenticated by the app
token instead), so this applies to HTTP mode only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from tortoise.exceptions import IntegrityError

from models import SeenRequest

log = logging.getLogger(__name__)

#: slack_sdk's ``SignatureVerifier`` accepts a timestamp this far from now, either way.
WINDOW_SECONDS = 5 * 60
#: Extra time a row is kept, for replicas whose clocks disagree by up to this much.
CLOCK_SKEW_SECONDS = 60
PURGE_INTERVAL_SECONDS = 30.0
PURGE_BATCH = 1000


class ReplayStore:
    """Remembers verified (timestamp, signature) pairs in the database for the window."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._next_purge = 0.0

    async def first_sighting(self, timestamp: int, signature: str) -> bool:
        """True the first time this signature is presented, False for every replay.

        Call only with a signature already verified for ``timestamp``; safe under
        concurrency (exactly one of several simultaneous callers gets True).
        """
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL_SECONDS
            await self.purge(now)
        try:
            await SeenRequest.create(signature=signature, timestamp=timestamp,
                                     seen_at=datetime.fromtimestamp(now, UTC))
        except IntegrityError:
            return False
        return True

    async def purge(self, now: float | None = None) -> int:
        """Delete up to ``PURGE_BATCH`` rows that can no longer verify; return how many."""
        oldest = int(self._clock() if now is None else now) - WINDOW_SECONDS - CLOCK_SKEW_SECONDS
        ids = await SeenRequest.filter(timestamp__lt=oldest).order_by("id").limit(PURGE_BATCH).values_list(
            "id", flat=True)
        if not ids:
            return 0
        return await SeenRequest.filter(id__in=list(ids)).delete()


class ReplayGuard(AsyncMiddleware):
    """Bolt global middleware refusing replays; bolt runs it after its signature check."""

    def __init__(self, store: ReplayStore) -> None:
        self.store = store

    async def async_process(  # bolt calls it with these keyword names, ``next`` included
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        if req.mode == "socket_mode":  # no signature to remember (see module docstring)
            return await next()
        timestamp = _header(req, "x-slack-request-timestamp")
        signature = _header(req, "x-slack-signature")
        if await self.store.first_sighting(int(timestamp), signature):
            return await next()
        if _header(req, "x-slack-retry-num"):
            log.info("slack retry of a request already handled acknowledged timestamp=%s", timestamp)
            return BoltResponse(status=200, body="")
        log.warning("slack request replayed within the signature window refused timestamp=%s", timestamp)
        return BoltResponse(status=401, body={"error": "replayed request"})


def _header(req: AsyncBoltRequest, name: str) -> str:
    values = req.headers.get(name) or [""]
    return values[0]
