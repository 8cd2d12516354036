"""Replays refused, retries processed once: a Slack request is executed at most once.

Slack signs every request with an HMAC of ``v0:<timestamp>:<body>`` and bolt accepts a
signature while ``|now - timestamp| <= 5 minutes``. Slack sends no nonce, so inside that
window a captured request (say ``invoice 000001 resend``) could be sent again and would
verify. The signature itself is unique per request, though (it covers the timestamp and a
body that carries a fresh ``trigger_id``), so:

* after bolt has verified the signature — only genuine requests are remembered, so an
  attacker without the signing secret cannot fill the table — and before any listener
  runs, ``ReplayStore.sightings`` inserts the signature into ``slack_request_seen``;
  the unique constraint makes the insert the atomic "seen before?" test, and because it
  is in the database every replica sharing it refuses the same replay;
* a replay of a command, form submission or button press is refused with **401**;
* a repeated Events API delivery carrying ``X-Slack-Retry-Num`` is acknowledged with
  **200** and not executed again (a non-200 would only make Slack retry once more);
* a *retry* — Slack re-sending a request it thinks was not acknowledged, marked with
  ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason`` (Socket Mode: ``retry_attempt``/
  ``retry_reason``, which bolt mirrors as the same headers) — has a new timestamp and
  signature, so every request is also remembered by a stable id (``request_key``: an
  event's ``event_id``; a command's, click's or modal submission's ``trigger_id``, unique
  per user interaction; else team+user+``action_ts`` or ``view.id``+``view.hash``+its
  values). A request whose id was seen is acknowledged with **200** (empty: a modal
  closes) and not executed again — whether or not it says it is a retry, since Slack
  documents the marks for the Events API only. Slack retries an event right away, after
  1 minute and after 5 minutes; id rows are kept ``RETRY_RETENTION_SECONDS``;
* rows whose timestamp has left the window (plus ``CLOCK_SKEW_SECONDS`` for replicas
  whose clocks differ) can never verify again; each replica deletes them at most every
  ``PURGE_INTERVAL_SECONDS``, at most ``PURGE_BATCH`` rows at a time, so the table stays
  at about one window of traffic.

Socket Mode requests carry no signature (the WebSocket is authenticated by the app
token instead): there only the stable ids apply (``ReplayGuard`` is installed in both modes).

Once means *at most* once: the id is taken before the handler runs, so a request whose
handler then crashed is not run again when Slack retries it (the person types it again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.payloads import team_of
from bot.replay_store import ReplayStore

log = logging.getLogger(__name__)

#: Stored keys fit ``slack_request_seen.signature``; a longer id is stored as its SHA-256.
_KEY_LENGTH = 128


def request_key(body: dict[str, Any]) -> str | None:
    """The id every delivery of this request shares (original and retries), or None if it has none.

    Ids are only compared with each other, never trusted for anything else: a forged id
    could at most make a genuine request look like a retry, and only a request that
    passed the signature check (HTTP) or came over the app's own socket is looked at.
    """
    kind = str(body.get("type") or "")
    if kind == "event_callback" and body.get("event_id"):
        return _bounded(f"event:{body['event_id']}")
    if body.get("trigger_id"):  # slash commands, block_actions, view_submission, shortcuts
        return _bounded(f"trigger:{body['trigger_id']}")
    team = team_of(body)
    user = str(body.get("user_id") or (body.get("user") or {}).get("id") or "")
    if kind == "block_actions":
        stamps = ",".join(str(a.get("action_ts") or "") for a in body.get("actions") or [])
        return _bounded(f"action:{team}:{user}:{stamps}") if stamps.strip(",") else None
    view = body.get("view") or {}
    if kind == "view_submission" and view.get("id"):
        # The values too: a corrected resubmission of the same view after errors is a new request.
        values = json.dumps((view.get("state") or {}).get("values") or {}, sort_keys=True)
        digest = hashlib.sha256(values.encode()).hexdigest()[:32]
        return _bounded(f"view:{view['id']}:{view.get('hash', '')}:{digest}")
    return None


def _bounded(key: str) -> str:
    key = f"id:{key}"
    if len(key) <= _KEY_LENGTH:
        return key
    return "id:sha256:" + hashlib.sha256(key.encode()).hexdigest()


class ReplayGuard(AsyncMiddleware):
    """Bolt global middleware refusing replays and retries; bolt runs it after its signature check.

    It runs before any listener, so a request it stops never takes a lane ticket (``bot/lanes.py``).
    """

    def __init__(self, store: ReplayStore) -> None:
        self.store = store

    async def async_process(  # bolt calls it with these keyword names, ``next`` included
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        retry = _header(req, "x-slack-retry-num")
        socket = req.mode == "socket_mode"  # no signature to remember (see module docstring)
        timestamp = int(time.time()) if socket else int(_header(req, "x-slack-request-timestamp"))
        signature = None if socket else _header(req, "x-slack-signature")
        key = request_key(req.body) if isinstance(req.body, dict) else None
        first = await self.store.sightings(timestamp, signature=signature, key=key)  # one statement
        if signature is not None and not first.signature:
            if retry:
                log.info("slack retry of a request already handled acknowledged timestamp=%s", timestamp)
                return BoltResponse(status=200, body="")
            log.warning("slack request replayed within the signature window refused timestamp=%s", timestamp)
            return BoltResponse(status=401, body={"error": "replayed request"})
        if key is None or first.key:
            return await next()
        log.info("slack retry of a request already handled acknowledged key=%s retry=%s reason=%s mode=%s",
                 key, retry or "-", _header(req, "x-slack-retry-reason") or "-", req.mode)
        return BoltResponse(status=200, body="")


def _header(req: AsyncBoltRequest, name: str) -> str:
    values = req.headers.get(name) or [""]
    return values[0]
