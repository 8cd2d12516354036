"""A local fake of the Slack Web API (aiohttp) that records every call it receives.

Tests point ``AsyncWebClient(base_url=fake.api_url)`` at it and assert on what was
posted, the way bolt-python's own tests use a mock server. Responses can be
scripted per method (e.g. a 429 with Retry-After first, a 500, a reply that comes
too late for the client's timeout) and a scripted failure may still post the
message (``posted=True``: Slack did it but the answer was lost), which is what a
client retrying blindly would double.

Messages posted with ``chat.postMessage`` are kept per channel with their
``metadata`` (``chat.update`` replaces them; an unknown ts is ``message_not_found``;
``conversations.open`` answers ``D<user>``) and served back by ``conversations.history`` (newest first, ``oldest``,
``include_all_metadata``, ``limit`` and cursor paging), as Slack does.
``response_url`` calls may be scripted too (method name ``response_url``).

Run as a program (``python -m tests.fakes.slack_api --record posts.jsonl [--max-delay S]``)
it serves on a free port, prints ``port=N``, appends every message it kept to the
JSON-lines file and exits when its stdin closes (trials use it as Slack for
``invoicebot serve``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.block_kit import problems_of


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    body: bytes = b""
    #: For ``response_url`` calls: the name in the URL (``response_url(name)``), to tell replies apart.
    path: str = ""


@dataclass(frozen=True)
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    delay: float = 0.0  # seconds before answering (longer than the client's timeout = a timeout)
    posted: bool = False  # chat.postMessage: keep the message although the answer is a failure


@dataclass
class FakeSlack:
    admins: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    scripted: dict[str, list[Scripted]] = field(default_factory=dict)
    # channel → messages posted there, oldest first: {"ts", "text", "blocks", "metadata"?}
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    record_path: Path | None = None
    # chat.postMessage answers up to this many seconds after it kept the message (a slow Slack).
    answer_delay: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    base_url: str = ""
    #: What ``apps.connections.open`` answers (a ``tests.fakes.socket_mode`` server's URL).
    socket_url: str = ""
    #: Payloads refused as Slack would (``invalid_blocks``): (method, problems). Checked at ``stop``.
    invalid: list[tuple[str, list[str]]] = field(default_factory=list)
    #: ``stop`` raises if a payload was invalid (tests that send bad payloads on purpose turn it off).
    strict: bool = True
    _ts: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/response/{name}"

    def script(self, method: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None, *,
               delay: float = 0.0, posted: bool = False, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with this response (then back to normal)."""
        for _ in range(times):
            self.scripted.setdefault(method, []).append(Scripted(status, body, headers or {}, delay, posted))

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages that really landed (in ``channel``, or anywhere), oldest first."""
        if channel is not None:
            return list(self.history.get(channel, []))
        return sorted((m for msgs in self.history.values() for m in msgs), key=lambda m: float(m["ts"]))

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
        for key in ("blocks", "view", "metadata"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        await self._record(Call(method, params))
        invalid = problems_of(method, params)
        if invalid:  # as Slack does: the call fails, nothing is posted
            self.invalid.append((method, invalid))
            return web.json_response({"ok": False, "error": "invalid_blocks", "errors": invalid})
        if self.scripted.get(method):
            scripted = self.scripted[method].pop(0)
            if scripted.posted and method == "chat.postMessage":
                self._keep(params)
            if scripted.delay:
                await asyncio.sleep(scripted.delay)
            return web.json_response(scripted.body, status=scripted.status, headers=scripted.headers)
        answer = self._answer(method, params)
        if self.answer_delay and method == "chat.postMessage":
            await asyncio.sleep(self.rng.uniform(0, self.answer_delay))
        return web.json_response(answer)

    def _keep(self, params: dict[str, Any]) -> dict[str, Any]:
        """Store a posted message as Slack would; its ts grows strictly (``<epoch>.<serial>``)."""
        self._ts += 1
        channel = str(params.get("channel"))
        message = {"ts": f"{int(time.time())}.{self._ts:06d}", "text": params.get("text") or "",
                   "blocks": params.get("blocks") or [], "channel": channel}
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        self.history.setdefault(channel, []).append(message)
        if self.record_path is not None:
            with self.record_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps({**message, "t": time.time()}) + "\n")
        return message

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        messages = self.history.get(str(params.get("channel")), [])
        oldest = float(params.get("oldest") or 0)
        with_meta = str(params.get("include_all_metadata", "")).lower() in {"1", "true"}
        newest_first = [m for m in reversed(messages) if float(m["ts"]) > oldest]
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = newest_first[start:start + limit]
        shown = [{k: v for k, v in m.items() if with_meta or k != "metadata"} for m in page]
        more = start + limit < len(newest_first)
        return {"ok": True, "messages": shown, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        """``chat.update``: replace text and blocks of a message that was posted here, as Slack does."""
        channel, ts = str(params.get("channel")), str(params.get("ts"))
        for message in self.history.get(channel, []):
            if message["ts"] == ts:
                message.update(text=params.get("text") or "", blocks=params.get("blocks") or [])
                return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """The message ``ts`` in ``channel`` as it is now (after any ``chat.update``)."""
        return next(m for m in self.history.get(channel, []) if m["ts"] == ts)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "team_id": "T1", "bot_id": "B1", "user": "invoicebot"}
        if method == "apps.connections.open":
            if not self.socket_url:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_url}
        if method == "chat.postMessage":
            return {"ok": True, "channel": params.get("channel"), "ts": self._keep(params)["ts"]}
        if method == "chat.postEphemeral":
            return {"ok": True, "channel": params.get("channel"), "ts": f"{len(self.calls)}.000100"}
        if method == "conversations.history":
            return self._history(params)
        if method == "chat.update":
            return self._update(params)
        if method == "conversations.open":  # a DM with one user: Slack answers with a D… channel id
            return {"ok": True, "channel": {"id": f"D{str(params.get('users', '')).split(',')[0]}"}}
        if method == "users.info":
            user = params.get("user", "")
            return {"ok": True, "user": {"id": user, "is_admin": user in self.admins, "is_owner": False}}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V1"}}
        if method == "views.publish":  # the App Home of ``user_id``
            if not params.get("user_id") or not isinstance(params.get("view"), dict):
                return {"ok": False, "error": "invalid_arguments"}
            return {"ok": True, "view": {"id": "VHOME", **params["view"]}}
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
        params = await request.json()
        await self._record(Call("response_url", params, path=request.match_info["name"]))
        invalid = problems_of("response_url", params)
        if invalid:
            self.invalid.append(("response_url", invalid))
            return web.Response(text="invalid_blocks", status=400)
        if self.scripted.get("response_url"):
            scripted = self.scripted["response_url"].pop(0)
            if scripted.delay:
                await asyncio.sleep(scripted.delay)
            return web.Response(text=json.dumps(scripted.body), status=scripted.status, headers=scripted.headers)
        return web.Response(text="ok")

    async def start(self, port: int = 0) -> FakeSlack:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response)
        # A stop must not wait for answers held back on purpose (``delay``): 1 s of grace.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None
        if self.strict and self.invalid:
            raise AssertionError(f"the bot sent payloads Slack refuses: {self.invalid[:5]}")


def shown(text: str) -> str:
    """What Slack displays for mrkdwn ``text``: its three escapes undone (mentions stay as markup)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _object_text(obj: Any) -> str:
    if isinstance(obj, str):
        return shown(obj)
    if isinstance(obj, dict):
        text = str(obj.get("text") or "")
        return text if obj.get("type") == "plain_text" else shown(text)
    return ""


def text_of(params: dict[str, Any]) -> str:
    """All the text a person sees in a Slack message (fallback text and block texts), as displayed."""
    parts = [shown(params.get("text") or "")]
    for block in params.get("blocks") or []:
        if "text" in block:
            parts.append(_object_text(block["text"]))
        for fld in block.get("fields", []):
            parts.append(_object_text(fld))
        for el in block.get("elements", []):
            parts.append(_object_text(el.get("text", "") if el.get("type") in {"button"} else el))
    return "\n".join(parts)


async def _serve(args: argparse.Namespace) -> None:
    fake = await FakeSlack(record_path=args.record, answer_delay=args.max_delay,
                           rng=random.Random(args.seed)).start(args.port)
    print(f"port={fake.base_url.rsplit(':', 1)[1]}", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin (or dies)
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Slack Web API recording posts to a JSON-lines file")
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=0.0, help="chat.postMessage answers up to this late")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
