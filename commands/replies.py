"""What a command answers: plain values that ``bot/`` turns into Slack calls.

Slack limits shape these (from Slack's docs and bolt/sdk issue threads): at most 50
blocks per message, 3,000 characters per section text, and messages near 13k
characters in all have failed with ``msg_blocks_too_long`` — so builders here cap
text and lists paginate instead of growing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_MESSAGE_CHARS = 12000

Block = dict[str, Any]


@dataclass(frozen=True)
class FileUpload:
    """A file to upload to the channel (``files_upload_v2`` needs the channel *id*)."""

    filename: str
    content: bytes
    title: str


@dataclass(frozen=True)
class Reply:
    """``text`` is the notification/fallback text; ``blocks`` the Block Kit layout.

    ``ephemeral`` replies are seen only by the person who typed the command.
    ``modal`` is a view to open with ``views.open`` (needs the trigger id).
    """

    text: str
    blocks: tuple[Block, ...] = ()
    ephemeral: bool = True
    file: FileUpload | None = None
    modal: Block | None = None
    #: Set by the dispatcher for error replies (adapters may style them).
    error: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn_escape(text: str) -> str:
    """Escape the three characters Slack requires escaped in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}


def fields_section(pairs: list[tuple[str, str]]) -> Block:
    """Up to 10 label/value fields shown in two columns."""
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(f"*{label}*\n{value or '—'}", 2000)} for label, value in pairs[:10]],
    }


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text)}]}


def divider() -> Block:
    return {"type": "divider"}


def message(text: str, *blocks: Block, ephemeral: bool = True, **kwargs: Any) -> Reply:
    """A reply whose blocks are capped to Slack's limits (the last block says what was cut)."""
    kept = list(blocks)
    if len(kept) > MAX_BLOCKS:
        kept = kept[: MAX_BLOCKS - 1] + [context(f"… {len(blocks) - MAX_BLOCKS + 1} more not shown")]
    while kept and sum(len(str(b)) for b in kept) > MAX_MESSAGE_CHARS:
        kept.pop(-2 if len(kept) > 1 else -1)
    return Reply(text=clip(text, 3000), blocks=tuple(kept), ephemeral=ephemeral, **kwargs)
