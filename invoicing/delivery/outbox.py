"""The outbox worker: turns committed ``Delivery`` rows into e-mails that left.

A run writes a ``pending`` delivery in its transaction; ``Outbox.deliver_due`` sends
it afterwards. One delivery goes

    pending ──claim──▶ sending ──send──▶ sent
       ▲                  │ 4xx / no connection: back to pending with backoff
       └──────────────────┤ 5xx, or the last allowed attempt failed: failed
                          └ crash: lease expires, ``recover_unknown`` re-queues it

A delivery marked ``failed`` queues its Slack follow-up (``notices.queue_delivery_failed``,
for a company with a channel) in the same transaction.

**Claim, in chunks.** ``pending → sending`` is one conditional UPDATE over a chunk of
up to ``batch_size`` due rows (``WHERE id IN (…) AND status = 'pending' AND due``,
``outbox_claims.claim``), committed *before* any of them is handed to SMTP; a worker
sends only the rows that UPDATE reports as changed by it, so two workers never send a
row concurrently. The claim counts the attempt and sets ``next_attempt_at`` to ``now +
sending_grace``: while a row is ``sending``, that column is its lease. A chunk whose
sends take longer than half the grace has its lease renewed before the next hand-over;
a row whose lease was lost meanwhile is not sent. Only claimed rows are rendered.

**Batched records.** Messages the transport accepted are recorded ``sent`` together
(one UPDATE ``WHERE id IN (…) AND status = 'sending'``), in the transaction that claims
the next chunk, the last ones at the end of the pass. The next chunk is claimed while the
current chunk's last message is with the server, so its renders overlap that send. A
failure (4xx, 5xx, unpreparable) is recorded on its own, at once, with its notice.

**Crash semantics: at-least-once.** A row found ``sending`` with an expired lease
means a worker stopped between claiming it and recording the outcome. Whether the
server got it is unknown. ``recover_unknown`` (run at the start of every
``deliver_due``) puts such rows back to ``pending`` with ``last_error = "resent after
unknown outcome"``; the next send uses the **same Message-ID** and the same bytes.
We choose at-least-once over at-most-once because a lost invoice is silently lost
(nobody pays it, nobody notices), while a duplicate is visible and harmless: the
receiver's mail system and accounting software can drop it by Message-ID. Rows
are re-queued only after the lease so a slow but live worker is not doubled: half the
grace must exceed the longest one hand-over can take (the SMTP timeout, twice when a
dropped connection is reopened; the default 300 s allows 60 s timeouts).
What a crash can re-send is bounded by the chunk: the messages accepted since the
last record, i.e. at most the current chunk's and the previous chunk's last one (it
was on the wire while the current chunk was claimed). Rows of the current chunk that
never left are re-queued the same way and marked "unknown" too, though they are first sends.

**Attempts** count hand-offs to the transport, including one whose outcome was
never learned, so "421 then 250" is recorded as 2 attempts.

**Backoff.** After a transient failure the next try is ``min(max_backoff, base ×
2^(attempts-1))`` seconds later; when ``attempts`` reaches ``max_attempts`` the
delivery fails and the last server reply is kept in ``last_error``. A successful
send keeps ``last_error`` as the record of what happened before. When the server
cannot be reached at all (no SMTP reply), the rest of the pass is not tried: rows
claimed but not yet handed over are released (``pending`` again, due when they were,
the claim's attempt not counted), the others are untouched, instead of each row
burning an attempt on a connect timeout. A 5xx reply, or an e-mail that cannot be
rendered or composed, fails at once (not counted as an attempt: nothing was handed over).

**Where the CPU goes.** Rendering and composing are done by ``async_composer`` when given
(the service's process pool, ``outbox_compose``), which returns the message as bytes;
without it, rendering runs in a thread (or ``async_renderer``) and composing, straight to
the same bytes (``mail_bytes``), on the loop. Either way the bytes on the wire are the same.
A message whose addresses need SMTPUTF8 is always composed in-process as a message object
(the transport may have to rewrite its headers).

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
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from tortoise.expressions import Q, RawSQL
from tortoise.transactions import in_transaction

from invoicing.backoff import retry_delay
from invoicing.billing.document import InvoiceDocument
from invoicing.clock import Clock, utc_now
from invoicing.delivery import notices, outbox_resend
from invoicing.delivery.einvoice.hybrid import HybridPdf, render_hybrid
from invoicing.delivery.mail import (
    compose_invoice_email,
    envelope_recipients,
    envelope_sender,
    mail_domain,
)
from invoicing.delivery.mail_bytes import flat_invoice_email
from invoicing.delivery.outbox_claims import (
    Chunk,
    DeliveryOutcome,
    Sent,
    claim_chunk,
    record,
    release_chunk,
    renew_chunk,
)
from invoicing.delivery.outbox_compose import AsyncComposer, ComposeRequest
from invoicing.delivery.outbox_work import Work, load_work
from invoicing.delivery.transport import (
    DeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from models import (
    Company,
    CreditNote,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Invoice,
)

log = logging.getLogger(__name__)

Renderer = Callable[[InvoiceDocument], bytes]
#: Renders the Factur-X PDF (``einvoice.hybrid.render_hybrid``), e.g. in the service's process pool.
FacturxRenderer = Callable[[InvoiceDocument], HybridPdf]
#: The same, awaited on the event loop (the service's process pool: no thread in between).
AsyncRenderer = Callable[[InvoiceDocument], Awaitable[bytes]]
AsyncFacturxRenderer = Callable[[InvoiceDocument], Awaitable[HybridPdf]]

UNKNOWN_OUTCOME = "resent after unknown outcome"


class Outbox:
    """Sends due deliveries through ``transport``; safe to run in several workers at once.

    ``renderer`` turns an ``InvoiceDocument`` into PDF bytes (run in a thread);
    ``facturx_renderer`` makes the Factur-X PDF for companies whose ``einvoice`` setting
    wants one (``einvoice.choice``; default: ``renderer`` + the attachment, in the thread);
    ``async_renderer`` / ``async_facturx_renderer``, when given, are awaited instead (the
    service's process pool, called from the loop without a thread in between);
    ``async_composer``, when given, renders *and composes* (``outbox_compose``; the service's
    pool), so the loop does neither. ``mail_from`` is the sender (``MAIL_FROM``), whose domain
    also names Message-IDs; ``clock`` returns aware UTC datetimes. Backoff values are seconds.
    ``batch_size`` rows are claimed at once (a crash re-sends at most that many, plus one);
    ``lanes`` e-mails are rendered and composed at once, ahead of the one being sent.
    ``shard`` ``(index, count)``: this outbox sends only the deliveries whose id is ``index``
    modulo ``count``, so ``count`` outboxes, each on its own SMTP connection, send side by side
    without claiming each other's rows (claims stay conditional, so an overlap is still safe).
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
        async_composer: AsyncComposer | None = None,
        batch_size: int = 20,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard must be (index, count) with 0 <= index < count, not {shard}")
        self._shard = shard
        self._transport = transport
        facturx = facturx_renderer or functools.partial(render_hybrid, renderer)

        async def in_thread(doc: InvoiceDocument) -> bytes:
            return await asyncio.to_thread(renderer, doc)

        async def facturx_in_thread(doc: InvoiceDocument) -> HybridPdf:
            return await asyncio.to_thread(facturx, doc)

        self._render: AsyncRenderer = async_renderer or in_thread
        self._render_facturx: AsyncFacturxRenderer = async_facturx_renderer or facturx_in_thread
        self._composer = async_composer
        self._mail_from = mail_from
        self._sender = envelope_sender(mail_from)
        self._domain = mail_domain(mail_from)
        self._clock = clock
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff_seconds
        self._max_backoff = max_backoff
        self._grace = timedelta(seconds=sending_grace_seconds)
        self._lanes = max(1, lanes)
        self._batch = max(1, batch_size)

    async def deliver_due(self, limit: int = 100) -> list[DeliveryOutcome]:
        """Send up to ``limit`` due deliveries, longest-waiting first; one outcome per delivery handled.

        Rows another worker claimed first are skipped and have no outcome here. When
        the server cannot be reached at all, the call stops early and the rest stay
        due for the next call, with no attempt counted. The transport sends one message
        at a time; meanwhile up to ``lanes`` of the next are rendered and composed.
        """
        await self.recover_unknown()
        query = Delivery.filter(_due(self._clock()))
        index, count = self._shard
        if count > 1:  # this outbox's share of the rows: its own SMTP connection sends them (see Outbox)
            query = query.annotate(shard=RawSQL(f'"delivery"."id" % {int(count)}')).filter(shard=index)
        due = await query.order_by("next_attempt_at", "id").limit(limit).prefetch_related("invoice")
        work = await load_work(due)
        chunks = [due[i:i + self._batch] for i in range(0, len(due), self._batch)]
        outcomes: dict[int, DeliveryOutcome] = {}
        accepted: list[Sent] = []  # handed over, recorded with the next claim (or renewal, or at the end)
        gate = asyncio.Semaphore(self._lanes)
        unreachable = False
        following: asyncio.Future[Chunk] | None = None
        chunk = await self._claim(chunks[0], []) if chunks else None
        index = 1  # of the next chunk to claim
        try:
            while chunk is not None:
                outcomes.update((o.delivery_id, o) for o in chunk.recorded)
                following = None
                jobs = [asyncio.ensure_future(self._prepare(row, work[row.id], gate)) for row in chunk.rows]
                try:
                    for i, row in enumerate(chunk.rows):
                        if unreachable:
                            # No point in waiting for more connect timeouts; give back what was not tried.
                            await release_chunk(chunk, chunk.rows[i:])
                            break
                        if self._clock() >= chunk.renew_at:
                            outcomes.update(await renew_chunk(chunk, chunk.rows[i:], accepted, now=self._clock(),
                                                              grace=self._grace))
                            accepted = []
                        if row.id in chunk.lost:
                            continue
                        number = work[row.id].doc.number
                        try:
                            message = await jobs[i]
                        except Exception as exc:  # recorded on the row and logged with traceback, not ignored
                            log.exception("delivery preparation failed delivery=%d invoice=%s", row.id, number)
                            outcome = await self._unpreparable(row, number, exc)
                        else:
                            if i == len(chunk.rows) - 1 and index < len(chunks):
                                # Claim (and render) the next chunk while this message is on the wire.
                                following = asyncio.ensure_future(self._claim(chunks[index], accepted))
                                accepted, index = [], index + 1
                            result = await self._send(row, number, message)
                            if isinstance(result, Sent):
                                accepted.append(result)
                                continue
                            unreachable = isinstance(result, TransientDeliveryError) and result.code is None
                            if following is not None:
                                await following  # its transaction first: records stay in order
                            outcome = await self._failed_send(row, number, result)
                        if outcome is not None:
                            outcomes[row.id] = outcome
                finally:
                    for job in jobs:
                        job.cancel()
                if following is None and not unreachable and index < len(chunks):
                    following = asyncio.ensure_future(self._claim(chunks[index], accepted))
                    accepted, index = [], index + 1
                chunk = await following if following is not None else None
                following = None
                if chunk is not None and unreachable:
                    outcomes.update((o.delivery_id, o) for o in chunk.recorded)
                    await release_chunk(chunk, chunk.rows)
                    chunk = None
        finally:
            if following is not None:
                following.cancel()  # we are failing: what it held is recoverable (crash semantics)
        if accepted:
            async with in_transaction():
                outcomes.update(await record(accepted))
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
        """Queue a new e-mail of an issued invoice (``outbox_resend.queue_resend``: numbering, BCC, dedupe key)."""
        return await outbox_resend.queue_resend(invoice_number_display, tenant_id, domain=self._domain,
                                                now=self._clock(), to=to, dedupe_key=dedupe_key)

    async def resend_credit_note(self, number_display: str, tenant_id: int, *, to: str | None = None,
                                 dedupe_key: str | None = None) -> Delivery:
        """Queue a new e-mail of an issued credit note (``outbox_resend.queue_credit_note_resend``)."""
        return await outbox_resend.queue_credit_note_resend(number_display, tenant_id, domain=self._domain,
                                                            now=self._clock(), to=to, dedupe_key=dedupe_key)

    async def _claim(self, candidates: Sequence[Delivery], accepted: Sequence[Sent]) -> Chunk:
        return await claim_chunk(candidates, accepted, now=self._clock(), grace=self._grace)

    async def _prepare(self, delivery: Delivery, work: Work, gate: asyncio.Semaphore) -> Outgoing:
        """Render and compose the e-mail of a delivery this worker has claimed."""
        recipients = envelope_recipients(delivery.to_addr, delivery.bcc)
        ascii_envelope = self._sender.isascii() and all(r.isascii() for r in recipients)
        resend = delivery.kind == DeliveryKind.RESEND
        async with gate:
            if self._composer is not None and ascii_envelope:
                composed = await self._composer(work.doc, ComposeRequest(
                    mail_from=self._mail_from, to=delivery.to_addr, message_id=delivery.message_id,
                    resend=resend, facturx=work.facturx))
                message: Outgoing = composed.message
                refusal = composed.refusal
            else:
                refusal = ""
                if work.facturx:
                    hybrid = await self._render_facturx(work.doc)  # render + CII + PDF/A-3 attachment
                    pdf, refusal = hybrid.data, hybrid.refusal
                else:
                    pdf = await self._render(work.doc)  # CPU-heavy for real invoices: a thread or the process pool
                if ascii_envelope:
                    # What the composer above hands over too; written as bytes, it costs the loop little CPU.
                    message = flat_invoice_email(work.doc, pdf, mail_from=self._mail_from, to=delivery.to_addr,
                                                 message_id=delivery.message_id, resend=resend)
                else:
                    # An international address: the transport needs the message object to send it with
                    # SMTPUTF8 or with its domains as A-labels.
                    message = compose_invoice_email(work.doc, pdf, mail_from=self._mail_from, to=delivery.to_addr,
                                                    message_id=delivery.message_id, resend=resend)
        if refusal:
            log.warning("e-invoice not attached delivery=%d invoice=%s reason=%s", delivery.id, work.doc.number,
                        refusal)
        return message

    async def _send(self, delivery: Delivery, number: str, message: Outgoing) -> Sent | DeliveryError:
        """Hand a prepared message over; the transport's refusal is returned, for the caller to record."""
        try:
            await self._transport.send(message, self._sender, envelope_recipients(delivery.to_addr, delivery.bcc))
        except (TransientDeliveryError, PermanentDeliveryError) as exc:
            return exc
        return Sent(delivery, number, self._clock())

    async def _unpreparable(self, delivery: Delivery, number: str, exc: Exception) -> DeliveryOutcome | None:
        # Renderer and composer are pure: the same input fails the same way, so retrying is pointless.
        delivery.attempts -= 1  # nothing was handed to the transport: not an attempt
        return await self._finish_failed(delivery, number, DeliveryStatus.SENDING,
                                         f"could not prepare the e-mail: {type(exc).__name__}: {exc}",
                                         attempts=delivery.attempts)

    async def _failed_send(self, delivery: Delivery, number: str, exc: DeliveryError) -> DeliveryOutcome | None:
        if isinstance(exc, TransientDeliveryError):
            return await self._retry_later(delivery, number, exc.reply)
        return await self._finish_failed(delivery, number, DeliveryStatus.SENDING, exc.reply)

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

    async def _move(self, delivery: Delivery, expected: DeliveryStatus, **changes: object) -> bool:
        """Apply ``changes`` only if the row is still in ``expected`` state (we still own it)."""
        updated = await Delivery.filter(id=delivery.id, status=expected).update(**changes)
        if not updated:
            # Another worker got there first (our lease ran out, or it claimed the row
            # while we prepared it): its record wins and we report nothing.
            log.warning("delivery changed under us delivery=%d expected=%s wanted=%s",
                        delivery.id, expected, changes.get("status"))
        return bool(updated)


async def _queue_failure_notice(delivery: Delivery, reason: str, now: datetime) -> None:
    """Queue the Slack follow-up of a delivery that failed for good (in the caller's transaction)."""
    invoice = await Invoice.get(id=delivery.invoice_id)
    company = await Company.get(id=invoice.company_id)
    number = invoice.display_number
    if delivery.credit_note_id is not None:
        number = (await CreditNote.get(id=delivery.credit_note_id)).display_number
    await notices.queue_delivery_failed(company, delivery.id, invoice_number=number,
                                        to=delivery.to_addr, error=reason, now=now)


def _due(now: datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING) & (Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
