"""Which handler answers which button: ``ib:<name>`` → handler (like ``dispatch.COMMANDS``)."""

from __future__ import annotations

from commands.clicks import ClickHandler

CLICKS: dict[str, ClickHandler] = {}
