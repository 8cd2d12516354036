"""Slack mrkdwn text: what is already markup (``Mrkdwn``) and how everything else is escaped.

Its own module so that ``commands.replies`` (the builders) and ``commands.fitting`` (which
splits what they built) escape the one same way.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any


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


def safe_cut(text: str, limit: int) -> int:
    """The largest cut ≤ ``limit`` that is not inside an escape ``&…;`` or a mention/link ``<…>``
    (cutting there would show a broken entity or ping/link something else)."""
    cut = limit
    amp = text.rfind("&", 0, cut)
    if amp != -1 and text.find(";", amp, cut) == -1 and cut - amp < 6:
        cut = amp
    lt = text.rfind("<", 0, cut)
    if lt != -1 and text.find(">", lt, cut) == -1 and lt > 0:
        cut = lt
    return cut if cut > 0 else limit
