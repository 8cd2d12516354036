"""HTTP routes of ``invoicebot serve``: Slack events, health check (and the order feed)."""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from tortoise.context import get_current_context


def add_slack_routes(app: web.Application, bolt: AsyncApp, path: str = "/slack/events") -> None:
    """Slack posts commands, interactivity and events here; bolt verifies the signature
    (signing secret, 5-minute timestamp window) and answers 401 otherwise."""

    async def handle(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app.router.add_post(path, handle)


def add_health_route(app: web.Application) -> None:
    async def healthz(_: web.Request) -> web.Response:
        ok = get_current_context() is not None
        return web.json_response({"ok": ok}, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
