"""The outbox worker: turns committed ``Delivery`` rows into e-mails that left.

A run writes a ``pending`` delivery in its transaction; ``Outbox.deliver_due`` sends
it afterwards. One delivery goes

    pending ──claim──▶ sending ──send──▶ sent
       ▲                  │ 4xx / no connection: back to pending with backoff
       └──────────────────┤ 5xx, or the last allowed attempt failed: failed
                          └ crash: lease expires, ``recover_unknown`` re-queues it

A delivery marked ``failed`` queues its Slack follow-up (``notices.queue_delivery_failed``,
for a company with a channel) in the same transaction.

**Claim.** ``pending → sending`` is a conditional UPDATE (``WHERE id = ? AND status =
'pending'``), committed *before* the message is handed to SMTP; a worker proceeds
only if its UPDATE changed one row, so two workers never send a row concurrently.
The claim counts the attempt and sets ``next_attempt_at`` to ``now +
sending_grace``: while a row is ``sending``, that column is its lease.

**One commit per message.** A lane records the message it just handed over as ``sent``
in the same transaction that claims its next delivery (the lane's last one on its own),
so each message costs one durable commit instead of two. The record is late by one
claim, never by a render: a crash in that moment is the crash case below.

**Crash semantics: at-least-once.** A row found ``sending`` with an expired lease
means a worker stopped between handing the message over and recording the outcome.
Whether the server got it is unknown. ``recover_unknown`` (run at the start of every
``deliver_due``) puts such rows back to ``pending`` with ``last_error = "resent after
unknown outcome"``; the next send uses the **same Message-ID** and the same bytes.
We choose at-least-once over at-most-once because a lost invoice is silently lost
(nobody pays it, nobody notices), while a duplicate is visible and harmless: the
receiver's mail system and accounting software can drop it by Message-ID. Rows
are re-queued only after the lease so a slow but live worker is not doubled; the
grace must exceed the longest a claimed row can take to be sent (``lanes`` SMTP
sessions with their timeouts; the default 300 s allows several 60 s timeouts).

With ``lanes`` > 1 a claimed row may wait a moment for the connection; a crash
then re-sends it although it never left — still at-least-once, at most ``lanes``
rows per worker are affected, and the note says "unknown", not "duplicate".

**Attempts** count hand-offs to the transport, including one whose outcome was
never learned, so "421 then 250" is recorded as 2 attempts.

**Backoff.** After a transient failure the next try is ``min(max_backoff, base ×
2^(attempts-1))`` seconds later; when ``attempts`` reaches ``max_attempts`` the
delivery fails and the last server reply is kept in ``last_error``. A successful
send keeps ``last_error`` as the record of what happened before. When the server
cannot be reached at all (no SMTP reply), the rest of the batch is not tried: it
stays due, untouched, instead of each row burning an attempt on a connect timeout.
A 5xx reply, or an e-mail that cannot be rendered or composed, fails at once.

**Credit notes.** A credit note's e-mail is a delivery with ``credit_note`` set (and
``invoice`` the invoice it credits), queued in the credit note's transaction
(``invoicing.billing.credit_notes``) and sent here like any other: the PDF is the credit
note's, its Message-ID ``credit_message_id_for``, a failure notice names the credit note.

**Resend.** ``resend`` queues a *new* delivery (kind ``resend``) with its own,
numbered Message-ID: it is a new message on purpose (someone asked for it again),
so receivers must not drop it as a duplicate. The PDF bytes are the same because
rendering is deterministic over the immutable invoice snapshot.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from invoicing.backoff import retry_delay
from invoicing.billing.credit_document import credit_document
from invoicing.billing.document import InvoiceDocument
from invoicing.clock import Clock, utc_now
from invoicing.delivery import notices
from invoicing.delivery.bcc import bcc_of
from invoicing.delivery.einvoice.choice import facturx_wanted
from invoicing.delivery.einvoice.hybrid import HybridPdf, render_hybrid
from invoicing.delivery.mail import (
    compose_invoice_email,
    credit_message_id_for,
    envelope_recipients,
    envelope_sender,
    mail_domain,
    message_id_for,
)
from invoicing.delivery.transport import (
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.parties.accounting import normalise_email
from models import (
    Company,
    CreditNote,
    CreditNoteLine,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Integration,
    IntegrationKind,
    Invoice,
    InvoiceLine,
    Tenant,
)

log = logging.getLogger(__name__)

Renderer = Callable[[InvoiceDocument], bytes]
#: Renders the Factur-X PDF (``einvoice.hybrid.render_hybrid``), e.g. in the service's process pool.
FacturxRenderer = Callable[[InvoiceDocument], HybridPdf]
#: The same, awaited on the event loop (the service's process pool: no thread in between).
AsyncRenderer = Callable[[InvoiceDocument], Awaitable[bytes]]
AsyncFacturxRenderer = Callable[[InvoiceDocument], Awaitable[HybridPdf]]

UNKNOWN_OUTCOME = "resent after unknown outcome"


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one delivery in one ``deliver_due`` call (for Slack notifications).

    ``status`` is ``sent``, ``failed`` or ``pending`` (will be retried); ``error`` is
    the last server reply or failure reason, ``""`` when there was none.
    """

    delivery_id: int
    invoice_number: str
    status: DeliveryStatus
    error: str
    attempts: int


@dataclass(frozen=True)
class _Sent:
    """A message the transport accepted at ``at``, whose ``sent`` is not recorded yet."""

    delivery: Delivery
    number: str
    at: datetime


class Outbox:
    """Sends due deliveries through ``transport``; safe to run in several workers at once.

    ``renderer`` turns an ``InvoiceDocument`` into PDF bytes (run in a thread);
    ``facturx_renderer`` makes the Factur-X PDF for companies whose ``einvoice`` setting
    wants one (``einvoice.choice``; default: ``renderer`` + the attachment, in the thread);
    ``async_renderer`` / ``async_facturx_renderer``, when given, are awaited instead (the
    service's process pool, called from the loop without a thread in between);
    ``mail_from`` is the sender (``MAIL_FROM``), whose domain also names
    Message-IDs; ``clock`` returns aware UTC datetimes. Backoff values are seconds.
    """

    def __init__(
        self,
        transport: Transport,
        renderer: Renderer,
        mail_from: str,
        clock: Clock = utc_now,
        max_attempts: int = 8,
        base_backoff_seconds: float = 30,
        max_backoff: float = 3600,
        sending_grace_seconds: float = 300,
        lanes: int = 2,
        facturx_renderer: FacturxRenderer | None = None,
        async_renderer: AsyncRenderer | None = None,
        async_facturx_renderer: AsyncFacturxRenderer | None = None,
    ) -> None:
        self._transport = transport
        facturx = facturx_renderer or functools.partial(render_hybrid, renderer)

        async def in_thread(doc: InvoiceDocument) -> bytes:
            return await asyncio.to_thread(renderer, doc)

        async def facturx_in_thread(doc: InvoiceDocument) -> HybridPdf:
            return await asyncio.to_thread(facturx, doc)

        self._render: AsyncRenderer = async_renderer or in_thread
        self._render_facturx: AsyncFacturxRenderer = async_facturx_renderer or facturx_in_thread
        self._mail_from = mail_from
        self._sender = envelope_sender(mail_from)
        self._domain = mail_domain(mail_from)
        self._clock = clock
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff_seconds
        self._max_backoff = max_backoff
        self._grace = timedelta(seconds=sending_grace_seconds)
        self._lanes = max(1, lanes)

    async def deliver_due(self, limit: int = 100) -> list[DeliveryOutcome]:
        """Send up to ``limit`` due deliveries, longest-waiting first; one outcome per delivery handled.

        Rows another worker claimed first are skipped and have no outcome here. When
        the server cannot be reached at all, the call stops early and the rest stay
        due, untouched, for the next call. ``lanes`` deliveries are in progress at
        once: while one is with the SMTP server the next is rendered, composed and
        claimed, so database commits and composing overlap the network instead of
        adding to it; the transport still sends one message at a time.
        """
        await self.recover_unknown()
        due = (
            await Delivery.filter(_due(self._clock()))
            .order_by("next_attempt_at", "id")
            .limit(limit)
            .prefetch_related("invoice")
        )
        documents = await _load_documents(due)
        queue = iter(due)  # shared by the lanes: each delivery is taken by exactly one
        outcomes: dict[int, DeliveryOutcome] = {}
        unreachable = asyncio.Event()

        async def lane() -> None:
            sent: _Sent | None = None  # handed over, its ``sent`` recorded with the lane's next claim
            for delivery in queue:
                if unreachable.is_set():
                    # No point in waiting for 99 more connect timeouts; the rest stay due for the next tick.
                    break
                claimed, recorded = await self._claim(delivery, sent)
                sent = None
                if recorded is not None:
                    outcomes[recorded.delivery_id] = recorded
                if not claimed:
                    log.info("delivery claimed by another worker delivery=%d", delivery.id)
                    continue
                result = await self._deliver(delivery, documents[delivery.id], unreachable)
                if isinstance(result, _Sent):
                    sent = result
                elif result is not None:
                    outcomes[delivery.id] = result
            if sent is not None:
                recorded = await self._finish_sent(sent)
                if recorded is not None:
                    outcomes[recorded.delivery_id] = recorded

        lanes = [asyncio.ensure_future(lane()) for _ in range(self._lanes)]
        try:
            await asyncio.gather(*lanes)
        finally:
            for task in lanes:  # one lane failed: stop the others too (what they hold is recoverable)
                task.cancel()
        return [outcomes[d.id] for d in due if d.id in outcomes]

    async def recover_unknown(self) -> int:
        """Re-queue ``sending`` rows whose lease expired (a worker stopped mid-send); return how many.

        A row that already used its last attempt is marked failed instead, with a
        message telling ops the outcome is unknown.
        """
        now = self._clock()
        stale = await Delivery.filter(status=DeliveryStatus.SENDING, next_attempt_at__lte=now)
        recovered = 0
        for row in stale:
            exhausted = row.attempts >= self._max_attempts
            changes = (
                {"status": DeliveryStatus.FAILED, "next_attempt_at": None,
                 "last_error": f"outcome of the last of {row.attempts} attempts is unknown; "
                               "check with the recipient before resending"}
                if exhausted else
                {"status": DeliveryStatus.PENDING, "next_attempt_at": now, "last_error": UNKNOWN_OUTCOME}
            )
            async with in_transaction():
                updated = await Delivery.filter(
                    id=row.id, status=DeliveryStatus.SENDING, next_attempt_at__lte=now
                ).update(**changes)
                if updated and exhausted:
                    await _queue_failure_notice(row, str(changes["last_error"]), now)
            if updated:
                recovered += 1
                log.warning("delivery outcome unknown delivery=%d message_id=%s attempts=%d action=%s",
                            row.id, row.message_id, row.attempts, "failed" if exhausted else "resend")
        return recovered

    async def resend(self, invoice_number_display: str, tenant_id: int, *, to: str | None = None,
                     dedupe_key: str | None = None) -> Delivery:
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
                    invoice_id=invoice.id, kind=DeliveryKind.RESEND,
                    message_id=message_id_for(tenant_id, invoice.number, self._domain, resend=previous + 1),
                    to_addr=recipient, bcc=bcc_of(integration) if integration else [], next_attempt_at=self._clock(),
                    dedupe_key=dedupe_key,
                )
            except IntegrityError:  # the same key committed meanwhile by a transaction we did not wait for
                raise _already_queued(number) from None
        log.info("resend queued delivery=%d invoice=%s tenant=%d resend=%d", delivery.id, number, tenant_id,
                 previous + 1)
        return delivery

    async def resend_credit_note(self, number_display: str, tenant_id: int, *, to: str | None = None,
                                 dedupe_key: str | None = None) -> Delivery:
        """Queue a new e-mail of an issued credit note, exactly like ``resend`` does for an invoice.

        Locks the credited invoice's row (the same lock as ``resend``), so resends of one credit
        note are numbered one after another; ``dedupe_key`` as in ``resend``.
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
                    invoice_id=note.invoice_id, credit_note_id=note.id, kind=DeliveryKind.RESEND,
                    message_id=credit_message_id_for(tenant_id, note.number, self._domain, resend=previous + 1),
                    to_addr=recipient, bcc=bcc_of(integration) if integration else [], next_attempt_at=self._clock(),
                    dedupe_key=dedupe_key,
                )
            except IntegrityError:
                raise _already_queued(number, "Credit note") from None
        log.info("credit note resend queued delivery=%d credit_note=%s tenant=%d", delivery.id, number, tenant_id)
        return delivery

    async def _deliver(
        self, delivery: Delivery, doc: InvoiceDocument, unreachable: asyncio.Event
    ) -> DeliveryOutcome | _Sent | None:
        """Render, compose and hand over a delivery this worker has claimed.

        A failure is recorded here; a message the transport accepted comes back as ``_Sent``
        and is recorded with the lane's next claim (one commit for both).
        """
        try:
            message = await self._compose(doc, delivery)
        except Exception as exc:  # recorded on the row and logged with traceback, not ignored
            # Renderer and composer are pure: the same input fails the same way, so retrying is pointless.
            log.exception("delivery preparation failed delivery=%d invoice=%s", delivery.id, doc.number)
            delivery.attempts -= 1  # nothing was handed to the transport: not an attempt
            return await self._finish_failed(delivery, doc.number, DeliveryStatus.SENDING,
                                             f"could not prepare the e-mail: {type(exc).__name__}: {exc}",
                                             attempts=delivery.attempts)
        recipients = envelope_recipients(delivery.to_addr, delivery.bcc)
        try:
            await self._transport.send(message, self._sender, recipients)
        except TransientDeliveryError as exc:
            if exc.code is None:  # no SMTP reply at all: the server is unreachable, not busy
                unreachable.set()
            return await self._retry_later(delivery, doc.number, exc.reply)
        except PermanentDeliveryError as exc:
            return await self._finish_failed(delivery, doc.number, DeliveryStatus.SENDING, exc.reply)
        return _Sent(delivery, doc.number, self._clock())

    async def _compose(self, doc: InvoiceDocument, delivery: Delivery) -> EmailMessage:
        if await facturx_wanted(delivery.invoice.company_id, doc.buyer.country):
            hybrid = await self._render_facturx(doc)  # render + CII + PDF/A-3 attachment
            if hybrid.refusal:
                log.warning("e-invoice not attached delivery=%d invoice=%s reason=%s", delivery.id, doc.number,
                            hybrid.refusal)
            pdf = hybrid.data
        else:
            pdf = await self._render(doc)  # CPU-heavy for real invoices: a thread or the process pool
        return compose_invoice_email(
            doc, pdf, mail_from=self._mail_from, to=delivery.to_addr, message_id=delivery.message_id,
            resend=delivery.kind == DeliveryKind.RESEND,
        )

    async def _claim(self, delivery: Delivery, sent: _Sent | None) -> tuple[bool, DeliveryOutcome | None]:
        """``pending → sending`` if still pending and due; commits before any byte goes to SMTP.

        ``sent`` (the lane's previous message, accepted by the transport) is recorded ``sent``
        in the same transaction, so a message costs one commit, not two. Until then it is
        ``sending``: a crash in between re-sends it after the lease (at-least-once, as for
        any crash after the hand-over), with the same Message-ID.
        """
        now = self._clock()
        async with in_transaction():
            recorded = await self._finish_sent(sent) if sent is not None else None
            claimed = await Delivery.filter(_due(now), id=delivery.id).update(
                status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + self._grace,
            )
        if claimed:
            delivery.attempts += 1
        return claimed == 1, recorded

    async def _retry_later(self, delivery: Delivery, number: str, reply: str) -> DeliveryOutcome | None:
        if delivery.attempts >= self._max_attempts:
            return await self._finish_failed(
                delivery, number, DeliveryStatus.SENDING, f"{reply} (gave up after {delivery.attempts} attempts)"
            )
        delay = retry_delay(delivery.attempts, base=self._base_backoff, cap=self._max_backoff)
        retry_at = self._clock() + timedelta(seconds=delay)
        if not await self._move(delivery, DeliveryStatus.SENDING, status=DeliveryStatus.PENDING,
                                next_attempt_at=retry_at, last_error=reply):
            return None
        log.info("delivery deferred delivery=%d invoice=%s attempts=%d retry_in=%ds reply=%r",
                 delivery.id, number, delivery.attempts, delay, reply)
        return DeliveryOutcome(delivery.id, number, DeliveryStatus.PENDING, reply, delivery.attempts)

    async def _finish_failed(
        self, delivery: Delivery, number: str, expected: DeliveryStatus, reason: str, **changes: object
    ) -> DeliveryOutcome | None:
        async with in_transaction():  # the failure and its Slack notice commit together
            if not await self._move(delivery, expected, status=DeliveryStatus.FAILED, next_attempt_at=None,
                                    last_error=reason, **changes):
                return None
            await _queue_failure_notice(delivery, reason, self._clock())
        log.warning("delivery failed delivery=%d invoice=%s attempts=%d reason=%r",
                    delivery.id, number, delivery.attempts, reason)
        return DeliveryOutcome(delivery.id, number, DeliveryStatus.FAILED, reason, delivery.attempts)

    async def _finish_sent(self, sent: _Sent) -> DeliveryOutcome | None:
        delivery, number = sent.delivery, sent.number
        if not await self._move(delivery, DeliveryStatus.SENDING, status=DeliveryStatus.SENT, sent_at=sent.at,
                                next_attempt_at=None):
            return None
        log.info("delivery sent delivery=%d invoice=%s message_id=%s attempts=%d",
                 delivery.id, number, delivery.message_id, delivery.attempts)
        return DeliveryOutcome(delivery.id, number, DeliveryStatus.SENT, "", delivery.attempts)

    async def _move(self, delivery: Delivery, expected: DeliveryStatus, **changes: object) -> bool:
        """Apply ``changes`` only if the row is still in ``expected`` state (we still own it)."""
        updated = await Delivery.filter(id=delivery.id, status=expected).update(**changes)
        if not updated:
            # Another worker got there first (our lease ran out, or it claimed the row
            # while we prepared it): its record wins and we report nothing.
            log.warning("delivery changed under us delivery=%d expected=%s wanted=%s",
                        delivery.id, expected, changes.get("status"))
        return bool(updated)


async def _load_documents(deliveries: list[Delivery]) -> dict[int, InvoiceDocument]:
    """The document each delivery carries, by delivery id: its invoice's, or its credit note's
    (built on the invoice's); a few queries whatever their number."""
    invoices = {d.invoice_id: d.invoice for d in deliveries}
    ids = list(invoices)
    lines: dict[int, list[InvoiceLine]] = defaultdict(list)
    for line in await InvoiceLine.filter(invoice_id__in=ids):
        lines[line.invoice_id].append(line)
    names = dict(await Tenant.filter(id__in={i.tenant_id for i in invoices.values()}).values_list("id", "name"))
    by_invoice = {
        invoice.id: InvoiceDocument.from_models(invoice, lines[invoice.id], tenant_name=names[invoice.tenant_id])
        for invoice in invoices.values()
    }
    credit_ids = [d.credit_note_id for d in deliveries if d.credit_note_id is not None]
    notes = {n.id: n for n in await CreditNote.filter(id__in=credit_ids)} if credit_ids else {}
    credit_lines: dict[int, list[CreditNoteLine]] = defaultdict(list)
    for credit_line in await CreditNoteLine.filter(credit_note_id__in=credit_ids) if credit_ids else []:
        credit_lines[credit_line.credit_note_id].append(credit_line)
    return {
        d.id: by_invoice[d.invoice_id] if d.credit_note_id is None else credit_document(
            notes[d.credit_note_id], credit_lines[d.credit_note_id], by_invoice[d.invoice_id])
        for d in deliveries
    }


async def _queue_failure_notice(delivery: Delivery, reason: str, now: datetime) -> None:
    """Queue the Slack follow-up of a delivery that failed for good (in the caller's transaction)."""
    invoice = await Invoice.get(id=delivery.invoice_id)
    company = await Company.get(id=invoice.company_id)
    number = invoice.display_number
    if delivery.credit_note_id is not None:
        number = (await CreditNote.get(id=delivery.credit_note_id)).display_number
    await notices.queue_delivery_failed(company, delivery.id, invoice_number=number,
                                        to=delivery.to_addr, error=reason, now=now)


def _already_queued(number: str, what: str = "Invoice") -> Conflict:
    return Conflict(f"{what} {number} was already queued for sending again from this message; nothing new was "
                    "queued. `/invoicing deliveries` shows it.")


def _due(now: datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING) & (Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
