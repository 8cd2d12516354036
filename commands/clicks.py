"""Buttons on the bot's messages: what a click carries and what its handler answers.

A button's ``action_id`` is ``ib:<name>`` and its ``value`` a short plain string (an
invoice number, an approval id…) — never trusted: a click is a request like a typed
command, so handlers re-read everything from the database, scope it to the clicking
workspace's tenant and call ``ctx.require_admin`` before changing anything.

``handle_click`` never raises, like ``dispatch``: a domain error becomes an ephemeral
reply to the person who clicked and the message is left as it was.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from commands.context import CommandContext
from commands.replies import Block, Reply, context, message, section
from invoicing.errors import InvoiceBotError

log = logging.getLogger(__name__)

#: Every action id the bot puts on a button starts with this.
ACTION_PREFIX = "ib:"


def action_id(name: str) -> str:
    """The ``action_id`` of the button that calls the handler registered as ``name``."""
    return f"{ACTION_PREFIX}{name}"


@dataclass(frozen=True)
class Click:
    """One button press, as the transport-free layer sees it."""

    name: str
    value: str
    ctx: CommandContext
    #: Where the clicked message is ("" for the App Home or an ephemeral message).
    channel_id: str = ""
    message_ts: str = ""
    #: The clicked message's blocks, to rebuild it with a status line instead of buttons.
    message_blocks: tuple[Block, ...] = ()
    #: True when the button is on the App Home tab (the home is re-published after the click).
    on_home: bool = False


@dataclass(frozen=True)
class ClickResult:
    """``reply`` goes to the clicker (ephemeral) or to the channel (``ephemeral=False``);
    ``update`` replaces the clicked message (``chat.update``), e.g. ``with_status``."""

    reply: Reply | None = None
    update: Reply | None = None
    extra: dict[str, Any] = field(default_factory=dict)


ClickHandler = Callable[[Click], Awaitable[ClickResult]]


def with_status(blocks: tuple[Block, ...] | list[Block], status: str, *, text: str = "") -> Reply:
    """The clicked message again with its buttons removed and ``status`` appended
    ("Resent by @dana at 10:42"), so nobody acts on it twice."""
    kept = [b for b in blocks if b.get("type") != "actions"]
    return message(text or status, *kept, context(status), ephemeral=False)


def refusal(text: str) -> ClickResult:
    return ClickResult(reply=message(text, section(f":no_entry: {text}")))


async def handle_click(click: Click, handlers: dict[str, ClickHandler]) -> ClickResult:
    """Run the handler registered for ``click.name``. Never raises."""
    handler = handlers.get(click.name)
    if handler is None:
        return refusal("This button is no longer supported; use `/invoicing help`.")
    try:
        return await handler(click)
    except InvoiceBotError as exc:
        return ClickResult(reply=message(exc.message, section(f":warning: {exc.message}"), error=True))
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("click failed ref=%s tenant=%s user=%s action=%s", ref, click.ctx.tenant.name,
                      click.ctx.user_id, click.name)
        text = f"Something went wrong on our side (ref {ref}). Please try again."
        return ClickResult(reply=message(text, section(f":x: {text}")))
