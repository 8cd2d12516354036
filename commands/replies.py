"""What a command answers: plain values that ``bot/`` turns into Slack calls.

Slack limits shape these (from Slack's docs and bolt/sdk issue threads): at most 50
blocks per message, 3,000 characters per section text, and messages near 13k
characters in all have failed with ``msg_blocks_too_long`` — so builders here cap
text and lists paginate instead of growing.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
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


class Mrkdwn(str):
    """Text that is already Slack mrkdwn: the block builders send it as it is.

    Every *other* string given to a builder (``section``, ``context``, ``fields_section``,
    ``message``) is escaped there (``&`` ``<`` ``>``), so a value from the order feed or
    typed by a user can never ping (``<!channel>``), mention or link — no code path can
    forget. Markup the bot means (a mention, a link) is built with ``mention``,
    ``channel_mention`` or ``link`` and composed with ``md``; ``+`` and ``join`` on a
    ``Mrkdwn`` escape the plain strings they add.
    """

    __slots__ = ()

    def __add__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(self, escape(other)))

    def __radd__(self, other: str) -> Mrkdwn:
        return Mrkdwn(str.__add__(escape(other), self))

    def join(self, items: Iterable[str]) -> Mrkdwn:
        return Mrkdwn(str.join(self, (escape(i) for i in items)))


def escape(value: object) -> Mrkdwn:
    """``value`` as mrkdwn showing exactly its text (``Mrkdwn`` is returned unchanged)."""
    if isinstance(value, Mrkdwn):
        return value
    text = str(value)
    return Mrkdwn(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


#: Kept for callers of the old name; escaping is idempotent on its result (a ``Mrkdwn``).
mrkdwn_escape = escape


class _EscapingFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        formatted = super().format_field(value, format_spec)
        return formatted if isinstance(value, Mrkdwn) else escape(formatted)


_FORMATTER = _EscapingFormatter()


def md(template: str, /, *args: Any, **values: Any) -> Mrkdwn:
    """``template`` is trusted mrkdwn; every ``{field}`` is escaped unless it is ``Mrkdwn``."""
    return Mrkdwn(_FORMATTER.format(template, *args, **values))


_SLACK_ID = re.compile(r"[A-Z0-9]{2,20}")
_URL = re.compile(r"https?://[^\s<>|]{1,2000}")


def mention(user_id: str) -> Mrkdwn:
    """``<@U123>`` for a real-looking Slack user id; anything else is shown as text."""
    return Mrkdwn(f"<@{user_id}>") if _SLACK_ID.fullmatch(user_id or "") else escape(user_id)


def channel_mention(channel_id: str) -> Mrkdwn:
    """``<#C123>`` for a channel id; a channel name (``#billing``) is shown as text."""
    return Mrkdwn(f"<#{channel_id}>") if _SLACK_ID.fullmatch(channel_id or "") else escape(channel_id)


def link(url: str, label: str) -> Mrkdwn:
    """A link the bot means to show; a URL that is not plain http(s) is shown as text."""
    if not _URL.fullmatch(url or ""):
        return escape(label)
    return Mrkdwn(f"<{url}|{escape(label).replace('|', '¦')}>")


def clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # never end inside an escape (``&am``) or a mention/link (``<@U1``)
    amp, lt = cut.rfind("&"), cut.rfind("<")
    if amp > cut.rfind(";") and len(cut) - amp < 6:
        cut = cut[:amp]
    if isinstance(text, Mrkdwn) and lt > cut.rfind(">"):
        cut = cut[:lt]
    clipped = cut + "…"
    return Mrkdwn(clipped) if isinstance(text, Mrkdwn) else clipped


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(escape(text))}}


def fields_section(pairs: list[tuple[str, str]]) -> Block:
    """Up to 10 label/value fields shown in two columns (labels and values escaped unless ``Mrkdwn``)."""
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(md("*{}*\n{}", label, value or "—"), 2000)}
                   for label, value in pairs[:10]],
    }


def header(text: str) -> Block:
    """A header; ``plain_text`` is never parsed for mentions or links, so it is not escaped."""
    return {"type": "header", "text": {"type": "plain_text", "text": clip(str(text), 150)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(escape(text))}]}


def plain(text: str, limit: int = 75) -> Block:
    """A ``plain_text`` object (button labels, titles): shown literally, never parsed."""
    return {"type": "plain_text", "text": clip(str(text), limit) or " "}


def button(label: str, action_id: str, value: str = "", *, style: str | None = None,
           confirm: tuple[str, str, str] | None = None) -> Block:
    """A button element. ``confirm`` = (title, question, yes-label) asks before the click is sent."""
    element: Block = {"type": "button", "text": plain(label), "action_id": action_id[:255]}
    if value:
        element["value"] = value[:2000]
    if style in {"primary", "danger"}:
        element["style"] = style
    if confirm is not None:
        title, question, yes = confirm
        element["confirm"] = {"title": plain(title, 100), "text": {"type": "mrkdwn", "text": clip(escape(question))},
                              "confirm": plain(yes, 30), "deny": plain("Cancel", 30)}
    return element


def actions(*elements: Block, block_id: str = "") -> Block:
    """An actions block (at most 25 elements)."""
    block: Block = {"type": "actions", "elements": list(elements[:25])}
    if block_id:
        block["block_id"] = block_id[:255]
    return block


def divider() -> Block:
    return {"type": "divider"}


def message(text: str, *blocks: Block, ephemeral: bool = True, **kwargs: Any) -> Reply:
    """A reply whose blocks are capped to Slack's limits (the last block says what was cut)."""
    kept = list(blocks)
    if len(kept) > MAX_BLOCKS:
        kept = kept[: MAX_BLOCKS - 1] + [context(f"… {len(blocks) - MAX_BLOCKS + 1} more not shown")]
    while kept and sum(len(str(b)) for b in kept) > MAX_MESSAGE_CHARS:
        kept.pop(-2 if len(kept) > 1 else -1)
    return Reply(text=clip(escape(text), 3000), blocks=tuple(kept), ephemeral=ephemeral, **kwargs)
