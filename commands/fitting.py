"""Fitting Block Kit into Slack's limits without losing anything.

Slack refuses a whole message when one part is too big (``invalid_blocks``,
``msg_blocks_too_long``), so a builder that let one long value through would lose
every block of the reply. Instead:

* a section or context text longer than ``MAX_SECTION_CHARS`` becomes several blocks,
  cut at line boundaries, else at a space, else hard — never inside an escape
  (``&amp;``) or a mention/link (``<@U1>``), so each piece stays valid mrkdwn;
* a field longer than ``MAX_FIELD_CHARS`` leaves its fields section and is shown as
  sections of its own; more than 10 fields become several fields sections;
* a header longer than ``MAX_HEADER_CHARS`` becomes a bold section;
* blocks that do not fit one message (``MAX_BLOCKS`` blocks, ``MAX_MESSAGE_CHARS`` of
  JSON) are split into several messages (``split_messages``); ``replies.message``
  turns those into ``Reply.continuations``.

Works on plain block dicts (the shapes ``commands.replies`` builds), so a view built
without ``message`` (the App Home) can call ``fit_blocks`` too.
"""

from __future__ import annotations

import json
from typing import Any

from commands.mrkdwn import escape, safe_cut

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_FIELDS = 10
MAX_HEADER_CHARS = 150
MAX_CONTEXT_ELEMENTS = 10
#: Slack has failed messages near 13k characters with ``msg_blocks_too_long``; counted as JSON.
MAX_MESSAGE_CHARS = 12000
#: A fields section is kept below this much text, so ten long fields never make one huge block.
_FIELDS_BLOCK_CHARS = 3000

Block = dict[str, Any]


def split_text(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters whose concatenation (plus the
    newlines cut at) is ``text``: at line boundaries, else at a space, else hard."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        newline = rest.rfind("\n", 0, limit + 1)
        space = rest.rfind(" ", 0, limit + 1)
        if newline > limit // 4:
            pieces.append(rest[:newline])
            rest = rest[newline + 1:]
        elif space > limit // 2 and safe_cut(rest, space) == space:
            pieces.append(rest[:space])
            rest = rest[space + 1:]
        else:
            cut = safe_cut(rest, limit)
            pieces.append(rest[:cut])
            rest = rest[cut:]
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p] or [""]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fit_section(block: Block) -> list[Block]:
    text_obj = block.get("text")
    out: list[Block] = []
    if isinstance(text_obj, dict) and len(str(text_obj.get("text", ""))) > MAX_SECTION_CHARS:
        pieces = split_text(str(text_obj["text"]))
        first = {**block, "text": {**text_obj, "text": pieces[0]}}
        first.pop("fields", None)
        out.append(first)
        out += [{"type": "section", "text": {**text_obj, "text": p}} for p in pieces[1:]]
        if block.get("fields"):
            out += _fit_fields({"type": "section", "fields": block["fields"]})
        return out
    if block.get("fields"):
        return _fit_fields(block)
    return [block]


def _fit_fields(block: Block) -> list[Block]:
    groups: list[list[Block]] = [[]]
    size = 0
    out: list[Block] = []
    for fld in block["fields"]:
        text = str(fld.get("text", ""))
        if len(text) > MAX_FIELD_CHARS:
            if fld.get("type") == "plain_text":
                text = escape(text)
            out += [_section(p) for p in split_text(text)]
            continue
        if len(groups[-1]) >= MAX_FIELDS or (groups[-1] and size + len(text) > _FIELDS_BLOCK_CHARS):
            groups.append([])
            size = 0
        groups[-1].append(fld)
        size += len(text)
    head = [{**block, "fields": g} if i == 0 else {"type": "section", "fields": g}
            for i, g in enumerate(groups) if g]
    if "text" in block and head:
        head[0]["text"] = block["text"]
    elif "text" in block:
        head = [{k: v for k, v in block.items() if k != "fields"}]
    return head + out


def _fit_context(block: Block) -> list[Block]:
    """Long element texts are split; elements are grouped ≤ 10 and ≤ one section's text per block."""
    elements: list[Block] = []
    for el in block.get("elements") or []:
        text = el.get("text") if isinstance(el, dict) else None
        if isinstance(text, str) and len(text) > MAX_SECTION_CHARS:
            elements += [{**el, "text": p} for p in split_text(text)]
        else:
            elements.append(el)
    groups: list[list[Block]] = [[]]
    size = 0
    for el in elements:
        chars = len(str(el.get("text", ""))) if isinstance(el, dict) else 0
        if groups[-1] and (len(groups[-1]) >= MAX_CONTEXT_ELEMENTS or size + chars > MAX_SECTION_CHARS):
            groups.append([])
            size = 0
        groups[-1].append(el)
        size += chars
    if len(groups) == 1 and groups[0] == list(block.get("elements") or []):
        return [block]
    return [{"type": "context", "elements": g} for g in groups if g]


def _fit_header(block: Block) -> list[Block]:
    text = str((block.get("text") or {}).get("text", ""))
    if len(text) <= MAX_HEADER_CHARS:
        return [block]
    # plain_text is never parsed: escape it now that it becomes mrkdwn
    return [_section(p) for p in split_text(f"*{escape(text)}*")]


def fit_block(block: Block) -> list[Block]:
    """``block`` as one or more blocks, each within Slack's per-block limits."""
    kind = block.get("type")
    if kind == "section":
        return _fit_section(block)
    if kind == "context":
        return _fit_context(block)
    if kind == "header":
        return _fit_header(block)
    return [block]


def fit_blocks(blocks: list[Block] | tuple[Block, ...]) -> list[Block]:
    return [piece for block in blocks for piece in fit_block(block)]


def block_chars(block: Block) -> int:
    """How much of the message budget ``block`` uses (its JSON, as Slack receives it)."""
    return len(json.dumps(block, ensure_ascii=False))


def split_messages(blocks: list[Block], *, max_blocks: int = MAX_BLOCKS,
                   max_chars: int = MAX_MESSAGE_CHARS) -> list[list[Block]]:
    """Consecutive groups of (already fitted) blocks, each small enough for one message."""
    chunks: list[list[Block]] = [[]]
    size = 0
    for block in blocks:
        chars = block_chars(block)
        if chunks[-1] and (len(chunks[-1]) >= max_blocks or size + chars > max_chars):
            chunks.append([])
            size = 0
        chunks[-1].append(block)
        size += chars
    return [c for c in chunks if c]
