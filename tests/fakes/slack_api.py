"""A local fake of the Slack Web API (aiohttp) that records every call it receives.

Tests point ``AsyncWebClient(base_url=fake.api_url)`` at it and assert on what was
posted, the way bolt-python's own tests use a mock server. Responses can be
scripted per method (e.g. a 429 with Retry-After first).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    body: bytes = b""


@dataclass
class FakeSlack:
    admins: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    scripted: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = field(default_factory=dict)
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/response/{name}"

    def script(self, method: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Answer the next call of ``method`` with this response (then back to normal)."""
        self.scripted.setdefault(method, []).append((status, body, headers or {}))

    def received(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10) -> list[Call]:
        """Wait until ``method`` was called ``count`` times (listeners run after the ack)."""
        async def enough() -> list[Call]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.received(method)) >= count)
            return self.received(method)

        return await asyncio.wait_for(enough(), timeout)

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        if request.content_type == "application/json":
            params = json.loads(raw or b"{}")
        else:
            params = dict(parse_qsl(raw.decode()))
        params.update(request.query)
        for key in ("blocks", "view"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        await self._record(Call(method, params))
        if self.scripted.get(method):
            status, body, headers = self.scripted[method].pop(0)
            return web.json_response(body, status=status, headers=headers)
        return web.json_response(self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "team_id": "T1", "bot_id": "B1", "user": "invoicebot"}
        if method in {"chat.postMessage", "chat.postEphemeral"}:
            return {"ok": True, "channel": params.get("channel"), "ts": f"{len(self.calls)}.000100"}
        if method == "users.info":
            user = params.get("user", "")
            return {"ok": True, "user": {"id": user, "is_admin": user in self.admins, "is_owner": False}}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V1"}}
        if method == "files.getUploadURLExternal":
            return {"ok": True, "upload_url": f"{self.base_url}/upload/F1", "file_id": "F1"}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": "F1", "title": params.get("files", "")}]}
        if method == "files.info":
            return {"ok": True, "file": {"id": "F1"}}
        return {"ok": True}

    async def _upload(self, request: web.Request) -> web.Response:
        await self._record(Call("upload", {"file_id": request.match_info["file_id"]}, await request.read()))
        return web.Response(text="OK")

    async def _response(self, request: web.Request) -> web.Response:
        await self._record(Call("response_url", await request.json()))
        return web.Response(text="ok")

    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def text_of(params: dict[str, Any]) -> str:
    """All the text a person sees in a Slack message (fallback text and block texts)."""
    parts = [params.get("text") or ""]
    for block in params.get("blocks") or []:
        if "text" in block:
            parts.append(block["text"]["text"] if isinstance(block["text"], dict) else block["text"])
        for fld in block.get("fields", []):
            parts.append(fld["text"])
        for el in block.get("elements", []):
            parts.append(el.get("text", ""))
    return "\n".join(parts)
