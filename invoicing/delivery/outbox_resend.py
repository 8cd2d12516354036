"""Resends: a *new* delivery of an issued invoice or credit note, queued for the outbox to send.

A resend is a new message on purpose (someone asked for it again), so it gets its own,
numbered Message-ID (``message_id_for(..., resend=k)``) and receivers must not drop it as
a duplicate. Its PDF is the same because rendering is deterministic over the immutable
invoice snapshot. ``invoicing.delivery.outbox.Outbox.resend`` is the usual entry point.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from invoicing.delivery.bcc import bcc_of
from invoicing.delivery.mail import credit_message_id_for, message_id_for
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.parties.accounting import normalise_email
from models import CreditNote, Delivery, DeliveryKind, Integration, IntegrationKind, Invoice

log = logging.getLogger(__name__)


async def queue_resend(invoice_number_display: str, tenant_id: int, *, domain: str, now: datetime,
                       to: str | None = None, dedupe_key: str | None = None) -> Delivery:
    """Queue a new e-mail of an issued invoice to ``to`` (default: the buyer's address on the invoice).

    BCC is the company's *current* BCC list. The Message-ID is
    ``message_id_for(..., resend=k)`` with k = previous resends + 1. Raises
    ``NotFound`` for an unknown number and ``InvalidInput("to", …)`` for a bad address.
    With ``dedupe_key`` (what asked for it, e.g. one button of one message) a second
    call with the same key queues nothing and raises ``Conflict``: the key is unique
    in the table, so this holds across processes and replicas.
    """
    address = normalise_email(to, field="to") if to is not None else None
    number = invoice_number_display.strip()
    async with in_transaction():
        # Serialises concurrent resends of one invoice on PostgreSQL, so k is unique.
        invoice = await (Invoice.filter(tenant_id=tenant_id, display_number=number)
                         .select_for_update(no_key=True).first())
        if invoice is None:
            raise NotFound(f"No invoice {number!r} in this workspace. `/invoicing invoices` lists them.")
        recipient = address or str(invoice.buyer.get("email") or "")
        if not recipient:
            raise InvalidInput("to", f"invoice {number} has no buyer e-mail; give an address to send it to")
        if dedupe_key is not None and await Delivery.exists(dedupe_key=dedupe_key):
            raise _already_queued(number)
        previous = await Delivery.filter(invoice_id=invoice.id, kind=DeliveryKind.RESEND,
                                         credit_note_id=None).count()
        integration = await Integration.get_or_none(company_id=invoice.company_id, kind=IntegrationKind.PDF_EMAILER)
        try:
            delivery = await Delivery.create(
                tenant_id=tenant_id, invoice_id=invoice.id, kind=DeliveryKind.RESEND,
                message_id=message_id_for(tenant_id, invoice.number, domain, resend=previous + 1),
                to_addr=recipient, bcc=bcc_of(integration) if integration else [], next_attempt_at=now,
                dedupe_key=dedupe_key,
            )
        except IntegrityError:  # the same key committed meanwhile by a transaction we did not wait for
            raise _already_queued(number) from None
    log.info("resend queued delivery=%d invoice=%s tenant=%d resend=%d", delivery.id, number, tenant_id,
             previous + 1)
    return delivery

async def queue_credit_note_resend(number_display: str, tenant_id: int, *, domain: str, now: datetime,
                                   to: str | None = None, dedupe_key: str | None = None) -> Delivery:
    """Queue a new e-mail of an issued credit note, exactly like ``queue_resend`` does for an invoice.

    Locks the credited invoice's row (the same lock as ``queue_resend``), so resends of one credit
    note are numbered one after another; ``dedupe_key`` as in ``queue_resend``.
    """
    address = normalise_email(to, field="to") if to is not None else None
    number = number_display.strip()
    async with in_transaction():
        note = await CreditNote.get_or_none(tenant_id=tenant_id, display_number=number)
        if note is None:
            raise NotFound(f"No credit note {number!r} in this workspace.")
        await Invoice.filter(id=note.invoice_id).select_for_update(no_key=True).first()
        recipient = address or str(note.buyer.get("email") or "")
        if not recipient:
            raise InvalidInput("to", f"credit note {number} has no buyer e-mail; give an address to send it to")
        if dedupe_key is not None and await Delivery.exists(dedupe_key=dedupe_key):
            raise _already_queued(number, "Credit note")
        previous = await Delivery.filter(credit_note_id=note.id, kind=DeliveryKind.RESEND).count()
        integration = await Integration.get_or_none(company_id=note.company_id, kind=IntegrationKind.PDF_EMAILER)
        try:
            delivery = await Delivery.create(
                tenant_id=tenant_id, invoice_id=note.invoice_id, credit_note_id=note.id, kind=DeliveryKind.RESEND,
                message_id=credit_message_id_for(tenant_id, note.number, domain, resend=previous + 1),
                to_addr=recipient, bcc=bcc_of(integration) if integration else [], next_attempt_at=now,
                dedupe_key=dedupe_key,
            )
        except IntegrityError:
            raise _already_queued(number, "Credit note") from None
    log.info("credit note resend queued delivery=%d credit_note=%s tenant=%d", delivery.id, number, tenant_id)
    return delivery


def _already_queued(number: str, what: str = "Invoice") -> Conflict:
    return Conflict(f"{what} {number} was already queued for sending again from this message; nothing new was "
                    "queued. `/invoicing deliveries` shows it.")
