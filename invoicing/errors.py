"""One exception hierarchy for domain failures; every message is written for the ops person.

Adapters map these: Slack → ephemeral message with usage, HTTP → 404/403/422/409
JSON, CLI → exit code 2 and the message on one line. Anything *not* derived from
``InvoiceBotError`` is a bug and is logged with its traceback, never shown to users.
"""

from __future__ import annotations


class InvoiceBotError(Exception):
    """Base class: ``message`` is safe and useful to show to the person who acted."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(InvoiceBotError, LookupError):
    """A tenant, company, order, invoice … does not exist (or belongs to another tenant)."""


class Forbidden(InvoiceBotError, PermissionError):
    """The actor may not do this (role, plan, tenant)."""


class InvalidInput(InvoiceBotError, ValueError):
    """One input value is wrong; ``field`` names it and ``reason`` says how to fix it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(InvoiceBotError):
    """The change contradicts stored state (e.g. editing an invoiced order)."""


class NotEligible(InvoiceBotError):
    """A run (or enabling invoicing) is refused; the message says what to fix first."""


class IncompleteDetails(NotEligible):
    """Required accounting details are missing; ``missing`` maps party → field names."""

    def __init__(self, missing: dict[str, list[str]]) -> None:
        parts = [f"{party} is missing {', '.join(fields)}" for party, fields in missing.items() if fields]
        super().__init__(
            "Cannot invoice yet: " + "; ".join(parts) + ". Set them with `/invoicing seller set …` "
            "or `/invoicing accounting <co> set …`."
        )
        self.missing = missing
