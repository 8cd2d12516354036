"""What can go wrong with Xero, each as an ``InvoiceBotError`` whose message says what to do.

No message, field or repr here ever holds a token, a client secret or a code verifier.
"""

from __future__ import annotations

from invoicing.errors import Conflict, InvoiceBotError, NotFound


class XeroError(InvoiceBotError):
    """Base of every Xero failure."""


class XeroNotSetUp(XeroError, NotFound):
    """The tenant has no Xero app yet (``/invoicing xero setup``) or no connected organisation."""


class XeroAuthorizationRefused(XeroError):
    """A callback whose state is unknown, changed, used already or expired, or that Xero refused."""


class XeroConnectionBroken(XeroError, Conflict):
    """The connection cannot be used (refresh refused, or disconnected): ops must connect again."""


class XeroUnavailable(XeroError, ConnectionError):
    """Xero did not answer (timeout, connection lost, 5xx after retries): try again later; nothing is lost."""


class XeroRateLimited(XeroError):
    """Xero answered 429 (``retry_after`` seconds, ``problem``: ``X-Rate-Limit-Problem``, e.g. ``minute``)."""

    def __init__(self, message: str, *, retry_after: float, problem: str = "") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.problem = problem


class XeroDailyBudgetExhausted(XeroError):
    """Today's budget of calls for the organisation is used up: what waits goes tomorrow (UTC)."""


class XeroValidationError(XeroError):
    """Xero refused the request (400 ``ValidationException``); ``messages`` are Xero's own texts."""

    def __init__(self, message: str, *, messages: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.messages = messages


class XeroRequestFailed(XeroError):
    """Any other answer we cannot use (``status``: the HTTP status)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
