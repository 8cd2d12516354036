"""Rendering and composing an outbox e-mail in one call, so both can run in a worker process.

Rendering the PDF and composing the MIME message (base64 of the PDF, header folding) are
the outbox's CPU work per message. The service runs both in its render pool
(``bot.rendering.RenderPool.render_and_compose``) instead of on the event loop it shares
with Slack and the invoice runs; only ``ComposeRequest`` and ``Composed`` (plain values and
bytes) cross the process boundary. ``render_and_compose`` is pure: the bytes are those the
outbox would compose in-process for the same delivery (``invoicing.delivery.mail`` is
deterministic, and so is the renderer). The e-mail is written straight to bytes
(``mail_bytes.flat_invoice_email``), the same bytes ``flatten(compose_invoice_email(...))`` gives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice.hybrid import render_hybrid
from invoicing.delivery.mail import FlatMessage
from invoicing.delivery.mail_bytes import flat_invoice_email


@dataclass(frozen=True)
class ComposeRequest:
    """What the e-mail of one delivery needs besides its document.

    ``facturx``: attach the Factur-X XML (the company's ``einvoice`` setting wants it for
    this buyer; ``einvoice.choice``). The rest are ``compose_invoice_email``'s arguments.
    """

    mail_from: str
    to: str
    message_id: str
    resend: bool
    facturx: bool


@dataclass(frozen=True)
class Composed:
    """The flattened e-mail; ``refusal`` says why a wanted Factur-X could not be attached (``""``: it was,
    or none was wanted)."""

    message: FlatMessage
    refusal: str = ""


#: ``render_and_compose`` with a renderer bound, awaited on the loop (the service's process pool).
AsyncComposer = Callable[[InvoiceDocument, ComposeRequest], Awaitable[Composed]]


def render_and_compose(
    renderer: Callable[[InvoiceDocument], bytes], doc: InvoiceDocument, request: ComposeRequest
) -> Composed:
    """Render ``doc`` with ``renderer`` (made a Factur-X if ``request.facturx``), compose its e-mail, flatten it."""
    refusal = ""
    if request.facturx:
        hybrid = render_hybrid(renderer, doc)
        pdf, refusal = hybrid.data, hybrid.refusal
    else:
        pdf = renderer(doc)
    message = flat_invoice_email(doc, pdf, mail_from=request.mail_from, to=request.to,
                                 message_id=request.message_id, resend=request.resend)
    return Composed(message, refusal)
