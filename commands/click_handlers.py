"""Which handler answers which button: ``ib:<name>`` → handler (like ``dispatch.COMMANDS``)."""

from __future__ import annotations

from commands import delivery_buttons, invoice_buttons
from commands.clicks import ClickHandler

CLICKS: dict[str, ClickHandler] = {
    **invoice_buttons.HANDLERS,
    **delivery_buttons.HANDLERS,
}
