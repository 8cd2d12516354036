"""Which handler answers which button: ``ib:<name>`` → handler (like ``dispatch.COMMANDS``)."""

from __future__ import annotations

from commands import approvals
from commands.clicks import ClickHandler

CLICKS: dict[str, ClickHandler] = {
    approvals.APPROVE: approvals.approve_click,
    approvals.SKIP: approvals.skip_click,
}
