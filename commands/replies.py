"""What a command answers: plain values that ``bot/`` turns into Slack calls.

Slack limits shape these (from Slack's docs and bolt/sdk issue threads): at most 50
blocks per message, 3,000 characters per section text, and messages near 13k
characters in all have failed with ``msg_blocks_too_long``. Builders here keep the
whole text; ``message`` fits it (``commands.fitting``: long texts become several
blocks, too many blocks several messages, ``Reply.continuations``), so nothing is
dropped, and lists paginate (``commands.paging``) instead of growing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commands.fitting import (
    MAX_BLOCKS,
    MAX_FIELD_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_SECTION_CHARS,
    Block,
    fit_blocks,
    split_messages,
)
from commands.mrkdwn import Mrkdwn, channel_mention, escape, link, md, mention, safe_cut

__all__ = ["MAX_BLOCKS", "MAX_FIELD_CHARS", "MAX_MESSAGE_CHARS", "MAX_SECTION_CHARS", "Block", "Mrkdwn",
           "channel_mention", "escape", "link", "md", "mention"]


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
    ``continuations`` are further messages of the same answer (it did not fit one
    message); adapters send them in order after this one, the same way.
    """

    text: str
    blocks: tuple[Block, ...] = ()
    ephemeral: bool = True
    file: FileUpload | None = None
    modal: Block | None = None
    #: Set by the dispatcher for error replies (adapters may style them).
    error: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    continuations: tuple[Reply, ...] = ()

    def parts(self) -> tuple[Reply, ...]:
        """This message and its continuations, in the order they are sent."""
        return (self, *self.continuations)


def clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    clipped = text[: safe_cut(text, limit - 1)] + "…"  # never inside ``&amp;`` or ``<@U1>``
    return Mrkdwn(clipped) if isinstance(text, Mrkdwn) else clipped


def shorten(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters *saying so* ("… (+9,800 characters)"): for a list
    line that shows a long text (an error) in part. ``Mrkdwn`` is returned unchanged."""
    if isinstance(value, Mrkdwn) or len(value) <= limit:
        return value
    return f"{value[:limit]}… (+{len(value) - limit:,} characters)"


def section(text: str) -> Block:
    """A mrkdwn section with all of ``text``; ``message`` splits one longer than Slack allows."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}}


def fields_section(pairs: list[tuple[str, str]]) -> Block:
    """Label/value fields shown in two columns (labels and values escaped unless ``Mrkdwn``).

    All pairs are kept: ``message`` makes several sections of more than 10 fields and
    shows a field too long for one as sections of its own.
    """
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": md("*{}*\n{}", label, value or "—")} for label, value in pairs],
    }


def header(text: str) -> Block:
    """A header; ``plain_text`` is never parsed for mentions or links, so it is not escaped.
    ``message`` shows one too long for a header as a bold section instead."""
    return {"type": "header", "text": {"type": "plain_text", "text": str(text) or " "}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(text)}]}


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
        element["confirm"] = {"title": plain(title, 100),
                              "text": {"type": "mrkdwn", "text": clip(escape(question), 300)},
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
    """A reply within Slack's limits that keeps every block: long texts are split into
    several blocks, and blocks beyond one message go into ``continuations``; each part
    then says "Part 2 of 3" (the file, modal and extras stay with the first)."""
    chunks = split_messages(fit_blocks(blocks), max_blocks=MAX_BLOCKS - 1,
                            max_chars=MAX_MESSAGE_CHARS - 300) or [[]]
    first = clip(escape(text), 3000)
    more = tuple(Reply(text=clip(first, 2900) + f" (part {i} of {len(chunks)})", blocks=_part(chunk, i, len(chunks)),
                       ephemeral=ephemeral, error=bool(kwargs.get("error")))
                 for i, chunk in enumerate(chunks[1:], start=2))
    return Reply(text=first, blocks=_part(chunks[0], 1, len(chunks)), ephemeral=ephemeral, continuations=more,
                 **kwargs)


def _part(chunk: list[Block], part: int, parts: int) -> tuple[Block, ...]:
    if parts == 1:
        return tuple(chunk)
    note = context(f"Part {part} of {parts}{'; continued below.' if part < parts else '.'}")
    if chunk and chunk[-1].get("type") == "actions":  # buttons stay last
        return (*chunk[:-1], note, chunk[-1])
    return (*chunk, note)
