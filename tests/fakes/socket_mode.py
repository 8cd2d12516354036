"""A local fake of Slack's Socket Mode endpoint (aiohttp websockets).

The fake Web API answers ``apps.connections.open`` with ``FakeSocketMode.url``; the app
connects there, gets a ``hello``, and the test pushes envelopes as Slack would
(``slash_commands``, ``interactive``, ``events_api``, with ``retry_attempt`` /
``retry_reason``) and awaits the app's ack for an ``envelope_id`` (``{"envelope_id": …,
"payload"?: …}``), the way Slack waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class FakeSocketMode:
    base_url: str = ""
    #: Every ack the app sent, by envelope id.
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: int = 0
    _ws: web.WebSocketResponse | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url.replace('http://', 'ws://')}/link/?ticket=test"

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.connections += 1
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A1"}, "debug_info": {"host": "fake"}}))
        self._connected.set()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "envelope_id" in data:
                async with self._changed:
                    self.acks[str(data["envelope_id"])] = data
                    self._changed.notify_all()
        return ws

    async def wait_connected(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = "",
                   accepts_response_payload: bool = False) -> str:
        """Push one envelope; returns its ``envelope_id``."""
        assert self._ws is not None, "the app is not connected"
        envelope_id = f"env-{next(self._ids)}"
        await self._ws.send_str(json.dumps({
            "envelope_id": envelope_id, "type": kind, "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt, "retry_reason": retry_reason,
        }))
        return envelope_id

    async def ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The app's ack of ``envelope_id`` (waits for it, like Slack's 3-s timer, only longer)."""
        async def arrived() -> dict[str, Any]:
            async with self._changed:
                await self._changed.wait_for(lambda: envelope_id in self.acks)
            return self.acks[envelope_id]

        return await asyncio.wait_for(arrived(), timeout)

    async def start(self) -> FakeSocketMode:
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
