"""Scan what the bot sent to (fake) Slack for markup it did not mean, and for oversized parts.

Slack parses every mrkdwn text — the top-level ``text`` of a message, section texts,
fields, context elements, confirm dialogs, the blocks of a view — for ``<…>`` markup:
``<!channel>`` / ``<!here>`` / ``<!everyone>`` ping, ``<@U…>`` mentions, ``<#C…>``
names a channel, ``<http…|label>`` and ``<mailto:…|…>`` are links. ``plain_text`` is
never parsed. ``markup_findings`` lists every piece of markup that is not in the
allowed set (the acting user's mention, known admins, the channels the bot names),
and every ``<``, ``>`` or ``&`` that is not part of markup or an escape (text that
skipped escaping). ``limit_findings`` checks Slack's size limits and validates each
block with slack_sdk's own models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from tests.fakes.slack_api import Call

#: The calls whose parameters carry message text or views.
MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update", "response_url", "views.open",
                             "views.publish", "views.update", "views.push", "chat.scheduleMessage"})
_MARKUP = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")
_PINGS = ("!channel", "!here", "!everyone")


@dataclass(frozen=True)
class Finding:
    method: str
    where: str
    problem: str
    text: str

    def __str__(self) -> str:
        return f"{self.method} {self.where}: {self.problem} in {self.text[:200]!r}"


def mrkdwn_texts(params: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every text Slack parses as mrkdwn in one call's parameters."""
    if isinstance(params.get("text"), str):
        yield "text", params["text"]
    for key in ("blocks", "view", "attachments"):
        if key in params:
            yield from _walk(params[key], key)


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            yield path, node["text"]
        for key, value in node.items():
            if key == "text" and isinstance(value, dict) and value.get("type") == "plain_text":
                continue
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")


def markup_of(text: str) -> list[str]:
    """Every ``<…>`` sequence in ``text`` (what Slack would turn into a mention, ping or link)."""
    return [m.group(0) for m in _MARKUP.finditer(text)]


def _strays(text: str) -> list[str]:
    bare = _ENTITY.sub("", _MARKUP.sub("", text))
    return [ch for ch in "<>&" if ch in bare]


def markup_findings(calls: Iterable[Call], *, allowed: set[str]) -> list[Finding]:
    """Markup not in ``allowed`` (e.g. ``{"<@UADMIN>", "<#CBILLING>"}``) and unescaped ``< > &``.

    A ping (``<!channel>``, ``<!here>``, ``<!everyone>``) is always a finding.
    """
    found: list[Finding] = []
    for call in calls:
        if call.method not in MESSAGE_METHODS:
            continue
        for where, text in mrkdwn_texts(call.params):
            for piece in markup_of(text):
                inner = piece[1:-1]
                if inner.startswith(_PINGS):
                    found.append(Finding(call.method, where, f"ping {piece}", text))
                elif piece not in allowed:
                    found.append(Finding(call.method, where, f"markup the bot did not mean {piece}", text))
            for ch in _strays(text):
                found.append(Finding(call.method, where, f"unescaped {ch!r}", text))
    return found


MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_TOTAL = 12000


def _blocks(params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    if isinstance(params.get("view"), dict):
        return list(params["view"].get("blocks") or []), MAX_VIEW_BLOCKS
    return list(params.get("blocks") or []), MAX_BLOCKS


def limit_findings(calls: Iterable[Call]) -> list[Finding]:
    """Every block over Slack's limits, and every block slack_sdk's models refuse."""

    found: list[Finding] = []
    for call in calls:
        if call.method not in MESSAGE_METHODS:
            continue
        blocks, most = _blocks(call.params)

        def problem(what: str, text: str = "", method: str = call.method) -> None:
            found.append(Finding(method, "blocks", what, text))

        if len(blocks) > most:
            problem(f"{len(blocks)} blocks (at most {most})")
        if call.method != "views.publish" and sum(len(json.dumps(b, ensure_ascii=False)) for b in blocks) > MAX_TOTAL:
            problem(f"more than {MAX_TOTAL} characters of blocks")
        if not blocks and not (call.params.get("text") or "").strip():
            problem("an empty message")
        for block in blocks:
            text = (block.get("text") or {}).get("text", "") if isinstance(block.get("text"), dict) else ""
            limit = MAX_HEADER if block.get("type") == "header" else MAX_SECTION
            if len(text) > limit:
                problem(f"{block.get('type')} text of {len(text)} characters", text)
            for fld in block.get("fields") or []:
                if len(fld.get("text", "")) > MAX_FIELD:
                    problem(f"field of {len(fld['text'])} characters", fld["text"])
            for el in block.get("elements") or []:
                if isinstance(el, dict) and len(str(el.get("text", ""))) > MAX_SECTION:
                    problem("context element too long", str(el.get("text")))
            try:
                parsed = Block.parse(block)
                if parsed is None:
                    problem(f"slack_sdk does not know block type {block.get('type')!r}")
                else:
                    parsed.validate_json()
            except (SlackObjectFormationError, KeyError, TypeError, ValueError) as exc:
                problem(f"slack_sdk refuses the block: {exc}", json.dumps(block)[:300])
    return found


def message_calls(calls: Iterable[Call]) -> list[Call]:
    return [c for c in calls if c.method in MESSAGE_METHODS]
