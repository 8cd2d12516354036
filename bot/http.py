"""HTTP routes of ``invoicebot serve``: Slack events, health check (and the order feed)."""

from __future__ import annotations

import logging
import re

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from tortoise.context import get_current_context

from bot.replays import ReplayGuard, ReplayStore
from bot.slack_web import SlackApp

log = logging.getLogger(__name__)

#: What Slack sends as ``X-Slack-Request-Timestamp``: Unix seconds, ASCII digits. Anything else
#: cannot have been signed by Slack (and slack_sdk's ``int()`` would raise on it, or read "١٢٣").
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
#: ``v0=`` + hex as Slack sends it; printable ASCII at least, since ``hmac.compare_digest``
#: raises TypeError on a non-ASCII string instead of answering "no match".
_SIGNATURE = re.compile(r"[\x21-\x7e]{1,256}")


#: Top-level parts of a Slack payload that bolt (and our view handler) read as objects.
_OBJECTS = ("event", "view", "container", "message", "state")
#: Parts Slack sends as an id or as an object with an ``id`` (bolt handles both, nothing else).
_ID_OR_OBJECT = ("team", "user", "channel", "enterprise")
#: Ids bolt passes on as strings (to ``auth.test``, the installation store…): anything else is not Slack's.
_IDS = ("team_id", "user_id", "channel_id", "enterprise_id", "api_app_id", "trigger_id")
#: Parts Slack sends as lists of objects.
_LISTS = ("authorizations", "actions")


def _shape_error(body: object) -> str | None:
    """The first part of a parsed body that cannot be what Slack sends, or None.

    Slack's payloads are objects whose well-known parts have fixed shapes; bolt reads
    them without checking (``body["view"].get(…)``), so a signed but odd body (``{"view":
    null}``) would crash inside bolt as a 500. Refused as 400 before bolt sees it.
    """
    if not isinstance(body, dict):
        return "the body"
    for key in _OBJECTS:
        if key in body and not isinstance(body[key], dict):
            return key
    for key in _ID_OR_OBJECT:
        if body.get(key) is not None and not isinstance(body[key], str | dict):
            return key
        if isinstance(body.get(key), dict) and not isinstance(body[key].get("id", ""), str | None):
            return f"{key}.id"
    for key in _IDS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return key
    for key in _LISTS:
        if key in body and not (isinstance(body[key], list) and all(isinstance(i, dict) for i in body[key])):
            return key
    view = body.get("view")
    if isinstance(view, dict):
        state = view.get("state", {})
        if not isinstance(state, dict) or not isinstance(state.get("values", {}), dict):
            return "view.state"
        if any(not isinstance(view.get(key, ""), str) for key in ("type", "callback_id", "id", "team_id")):
            return "view"
    return None


def add_slack_routes(
    app: web.Application, bolt: AsyncApp, path: str = "/slack/events", *, replays: ReplayStore | None = None
) -> None:
    """Mount ``bolt`` at ``path``. Call once per bolt app: it also installs the replay guard.

    What Slack (and an attacker) may rely on — never a 500 for what the request contains:

    * a missing or non-numeric timestamp, a missing, malformed or wrong signature, or
      one outside the 5-minute window → **401** (their shape is checked here, the
      signature by bolt);
    * a body that is not UTF-8, or not the form/JSON Slack sends → **400**, before it
      reaches any listener;
    * a validly signed request seen before → 401, or 200 for an Events API retry
      (``bot.replays``; ``replays`` is the store to use, one on the database by default);
    * an unexpected failure → 500 with a short JSON body; the traceback goes to the log only.

    Command replies of a ``SlackApp`` share one HTTP session from here on; it is closed when
    ``app`` is cleaned up.
    """
    bolt.use(ReplayGuard(replays or ReplayStore()))
    if isinstance(bolt, SlackApp):
        replies = bolt.replies
        replies.keep_open()

        async def close_replies(_: web.Application) -> None:
            await replies.close()

        app.on_cleanup.append(close_replies)

    async def handle(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not (_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature)):
            return web.json_response({"error": "invalid request"}, status=401)
        raw = await request.read()
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return web.json_response({"error": "the request body is not UTF-8"}, status=400)
        try:
            # Bolt parses the body (JSON or form) while building the request, before it
            # verifies the signature; a parse failure is malformed input, not our fault.
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string,
                                            headers=dict(request.headers.items()))
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            log.info("malformed slack request refused error=%s", type(exc).__name__)
            return web.json_response({"error": "the request body is not a Slack request"}, status=400)
        wrong = _shape_error(bolt_request.body)
        if wrong is not None:
            log.info("malformed slack request refused part=%s", wrong)
            return web.json_response({"error": "the request body is not a Slack request"}, status=400)
        try:
            return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        except Exception:
            log.exception("slack request failed path=%s", request.path)
            return web.json_response({"error": "internal error"}, status=500)

    app.router.add_post(path, handle)


def add_health_route(app: web.Application) -> None:
    async def healthz(_: web.Request) -> web.Response:
        ok = get_current_context() is not None
        return web.json_response({"ok": ok}, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
