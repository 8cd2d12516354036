"""Which handler answers which button: ``ib:<name>`` → handler (like ``dispatch.COMMANDS``)."""

from __future__ import annotations

from commands import home
from commands.clicks import ClickHandler

CLICKS: dict[str, ClickHandler] = {
    home.NEXT_PAGE: home.home_page,
    home.PREVIOUS_PAGE: home.home_page,
}
