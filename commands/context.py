"""Who is asking, for which tenant, and the few services a command may call back into."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from invoicing.billing.document import InvoiceDocument
from invoicing.billing.runs import RunReport
from invoicing.clock import Clock, utc_now
from invoicing.errors import Forbidden, InvalidInput, InvoiceBotError
from invoicing.integrations.xero.endpoints import XeroEnv
from invoicing.secrets import SecretBox
from models import Tenant


async def _no_admin() -> bool:
    return False


async def _no_after_run(_: RunReport) -> None:
    return None


async def _no_kick() -> None:
    return None


async def _render_in_thread(document: InvoiceDocument) -> bytes:
    from invoicing.delivery.pdf import (
        render_invoice_pdf,  # heavy (fpdf2 + fonts): only when asked
    )

    return await asyncio.to_thread(render_invoice_pdf, document)


class Resend(Protocol):
    """Queue a new e-mail of the tenant's issued invoice ``number`` (``Outbox.resend``): to ``to``
    (default: the address on the invoice); a second call with the same ``dedupe_key`` raises ``Conflict``."""

    def __call__(self, number: str, tenant_id: int, /, *, to: str | None = None,
                 dedupe_key: str | None = None) -> Awaitable[object]: ...


async def _no_resend(number: str, tenant_id: int, /, *, to: str | None = None,
                     dedupe_key: str | None = None) -> object:
    raise InvoiceBotError("E-mail delivery is not running in this process; try again from the service.")


@dataclass(frozen=True)
class Services:
    """Hooks ``bot/`` provides; defaults make every command usable in a plain test."""

    # Re-check due integrations now (a schedule or enablement changed).
    wake_scheduler: Callable[[], None] = lambda: None
    # Called after a run committed: deliver its e-mail, post the run notification.
    after_run: Callable[[RunReport], Awaitable[None]] = _no_after_run
    # Queue a new e-mail of an issued invoice (``Outbox.resend``) and kick delivery.
    resend_invoice: Resend = _no_resend
    # The same for an issued credit note (``Outbox.resend_credit_note``).
    resend_credit_note: Resend = _no_resend
    # Render an invoice PDF (the service uses a process pool; plain callers a thread).
    render_pdf: Callable[[InvoiceDocument], Awaitable[bytes]] = _render_in_thread
    # Domain of MAIL_FROM, used in Message-IDs of invoices issued by manual runs.
    mail_domain: str = "invoicebot.local"
    # Deliver what a command just committed to the outboxes (a credit note's e-mail and notice, an XML
    # export's file) now.
    kick_outbox: Callable[[], Awaitable[None]] = _no_kick
    # Seals and opens stored secrets (INVOICEBOT_SECRET_KEY): SFTP passwords, the tenant's SSH key.
    secret_box: SecretBox = field(default_factory=lambda: SecretBox(None))
    # Xero: the secret box, the HTTP session and URLs (``None``: no Xero in this process).
    xero: XeroEnv | None = None


@dataclass(frozen=True)
class CommandContext:
    tenant: Tenant
    user_id: str
    channel_id: str = ""
    # Resolves whether the user may change configuration (workspace admin/owner or
    # on the tenant's admin list); only awaited by commands that change something.
    is_admin: Callable[[], Awaitable[bool]] = _no_admin
    clock: Clock = utc_now
    services: Services = field(default_factory=Services)

    @property
    def actor(self) -> str:
        return f"slack:{self.user_id}"

    async def require_admin(self, action: str) -> None:
        if not await self.is_admin():
            raise Forbidden(
                f"Only workspace admins or InvoiceBot admins of {self.tenant.name} can {action}. "
                "Ask an admin, or ask them to add you with `/invoicing admins add @you`."
            )


@dataclass(frozen=True)
class Args:
    """The words after the sub-command, and the ``key=value`` options."""

    words: tuple[str, ...]
    options: dict[str, str]

    def word(self, index: int, name: str) -> str:
        if len(self.words) <= index:
            raise InvalidInput(name, f"is missing; give the {name}")
        return self.words[index]

    def no_extra_words(self, count: int) -> None:
        if len(self.words) > count:
            extra = " ".join(self.words[count:])
            raise InvalidInput(
                "text", f"did not expect {extra!r}; put values with spaces in quotes, e.g. name=\"Acme Gifts Ltd\""
            )

    def only_options(self, allowed: set[str] | frozenset[str] | tuple[str, ...]) -> None:
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise InvalidInput(unknown[0], f"is not an option here; use {', '.join(sorted(allowed)) or 'none'}")
