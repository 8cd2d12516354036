"""Sending the Xero outbox: queued pushes → batches of up to 50 documents per request, once.

``Pusher.push_due()`` takes the pushes that are due (pending, or sending with an expired lease), routes
each to its organisation (invoices and credit notes: the tenant's; purchase orders: the company's) and
sends them in batches per organisation and collection: ``PUT /Invoices`` (``/CreditNotes``,
``/PurchaseOrders``) with ``summarizeErrors=false`` and an ``Idempotency-Key``. What a caller may rely on:

* **Once.** A batch is claimed with a lease (a conditional UPDATE: two workers never hold one push), then
  its request — the elements' exact JSON text and the batch key — is stored before it is sent. A push
  sent again (lease expired after a crash, or Xero unavailable) is the same request under the same
  ``Idempotency-Key`` (derived from the request body, which is derived from the documents), so Xero
  replays its first answer instead of creating again. Our numbers are unique in Xero too: an element
  refused as "# must be unique" is looked up and recorded as done.
* **Partial answers.** Each element of a 200 is recorded on its own: created → ``done`` with Xero's id
  and totals (compared with ours, a difference is recorded and announced, not hidden); ``HasErrors`` →
  ``failed`` with Xero's validation messages in the channel, until ``xero <co> retry`` or a settings
  change puts it back (rebuilt: a new request and key, nothing having been created).
* **Limits.** Every call goes through the client's pacer and daily budget: a 429 holds the batch for its
  ``Retry-After``; a spent day's budget holds it until the next UTC day and says so (once a day); an
  unavailable Xero retries with backoff (8 attempts, then ``failed``). A broken or missing connection
  holds pushes until it is connected again (``connections.store_connection`` wakes them); nothing is
  lost."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from invoicing.backoff import retry_delay
from invoicing.clock import Clock
from invoicing.errors import NotFound
from invoicing.integrations.xero.client import XeroClient
from invoicing.integrations.xero.connections import usable_connection
from invoicing.integrations.xero.errors import (
    XeroConnectionBroken,
    XeroDailyBudgetExhausted,
    XeroError,
    XeroNotSetUp,
    XeroRateLimited,
    XeroValidationError,
)
from invoicing.integrations.xero.payloads import compare
from invoicing.integrations.xero.push_notices import announce_failed, announce_mismatch, announce_waiting
from invoicing.integrations.xero.requests import Built, build_batch, our_totals
from models import XeroConnection, XeroConnectionStatus, XeroPush, XeroPushKind, XeroPushStatus

log = logging.getLogger(__name__)

BATCH = 50
ATTEMPTS = 8
LEASE = timedelta(minutes=10)
#: How often a push whose organisation is not connected (or broken) looks again.
NOT_CONNECTED_WAIT = timedelta(minutes=15)

COLLECTION = {XeroPushKind.INVOICE: ("Invoices", "InvoiceNumber"),
              XeroPushKind.CREDIT_NOTE: ("CreditNotes", "CreditNoteNumber"),
              XeroPushKind.PURCHASE_ORDER: ("PurchaseOrders", "Reference")}


@dataclass
class Pusher:
    """One per process; ``owner`` names its leases."""

    client: XeroClient
    clock: Clock
    batch_size: int = BATCH
    lease: timedelta = LEASE
    owner: str = field(default_factory=lambda: secrets.token_hex(8))
    _claims: int = 0
    #: Per connection: batches of one round write their new contacts one at a time (``contacts.ensure``).
    _contact_locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    #: Per connection: how many of a round's batches are claimed and in progress at once (twice the calls
    #: the organisation allows in flight). The others wait unclaimed, so a lease starts when its batch is
    #: about to go, not minutes earlier behind the pacer, and the first calls of a round leave at once
    #: instead of after every batch of the round has been claimed and built.
    _lanes: dict[int, asyncio.Semaphore] = field(default_factory=dict)

    async def push_due(self, *, limit: int = 1000) -> int:
        """Send what is due now, every organisation at once (each paced by the client); how many were
        recorded (done or failed)."""
        now = self.clock()
        due = await XeroPush.filter(
            Q(status=XeroPushStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=XeroPushStatus.SENDING, lease_until__lte=now)).order_by("id").limit(limit)
        routes: dict[tuple[int, XeroPushKind], list[XeroPush]] = defaultdict(list)
        connections: dict[tuple[int, int | None], XeroConnection | None] = {}
        for push in due:
            side = push.company_id if push.kind == XeroPushKind.PURCHASE_ORDER else None
            if (push.tenant_id, side) not in connections:
                connections[(push.tenant_id, side)] = await _connection(push.tenant_id, side)
            connection = connections[(push.tenant_id, side)]
            if connection is None or connection.status != XeroConnectionStatus.CONNECTED:
                await _hold(push, now + NOT_CONNECTED_WAIT, "Waiting for Xero to be connected again.")
                continue
            if push.connection_id not in (None, connection.id):  # reconnected to another organisation
                push.payload, push.batch_key = "", None
            routes[(connection.id, push.kind)].append(push)
        batches: list[tuple[XeroConnection, XeroPushKind, list[XeroPush]]] = []
        by_id = {c.id: c for c in connections.values() if c is not None}
        for (connection_id, kind), pushes in routes.items():
            resend: dict[str, list[XeroPush]] = defaultdict(list)
            fresh: list[XeroPush] = []
            for push in pushes:
                (resend[push.batch_key] if push.batch_key and push.payload else fresh).append(push)
            batches += [(by_id[connection_id], kind, group) for group in resend.values()]
            batches += [(by_id[connection_id], kind, fresh[i:i + self.batch_size])
                        for i in range(0, len(fresh), self.batch_size)]
        done = await asyncio.gather(*(self._batch(c, k, rows) for c, k, rows in batches))
        return sum(done)

    async def next_due_at(self) -> datetime | None:
        """When the next push falls due (a pending one's attempt, a held lease's end), or None."""
        pending = await XeroPush.filter(status=XeroPushStatus.PENDING).order_by("next_attempt_at").first()
        sending = await XeroPush.filter(status=XeroPushStatus.SENDING).order_by("lease_until").first()
        times = [t for t in (pending.next_attempt_at if pending else None,
                             sending.lease_until if sending else None) if t is not None]
        return min(times) if times else None

    async def _batch(self, connection: XeroConnection, kind: XeroPushKind, rows: list[XeroPush]) -> int:
        lane = self._lanes.setdefault(connection.id, asyncio.Semaphore(2 * self.client.pacers.limits.concurrent))
        async with lane:
            return await self._send(connection, kind, rows)

    async def _send(self, connection: XeroConnection, kind: XeroPushKind, rows: list[XeroPush]) -> int:
        now = self.clock()
        rows = await self._claim(rows, now)
        if not rows:
            return 0
        recorded = 0
        collection, _ = COLLECTION[kind]
        try:
            if not all(r.batch_key and r.payload for r in rows):
                built = await build_batch(self.client, connection, kind, rows,
                                          contact_lock=self._contact_locks.setdefault(connection.id, asyncio.Lock()))
                recorded = await self._refuse(rows, built, now)
                rows = [r for r in rows if r.id not in built.errors]
                if not rows:
                    return recorded
                await _fix_request(rows, built, connection)
            body = '{"' + collection + '":[' + ",".join(r.payload for r in rows) + "]}"
            answer = await self.client.call(
                connection.tenant_id, connection.id, "PUT", collection, body=body,
                params={"summarizeErrors": "false", "unitdp": "4"},
                idempotency_key=f"invoicebot-{connection.tenant_id}-{hashlib.sha256(body.encode()).hexdigest()[:48]}")
        except XeroError as exc:
            await self._failed_call(connection, rows, exc, now)
            return recorded
        elements = answer.get(collection) if isinstance(answer, dict) else None
        return recorded + await self._record(connection, kind, rows, elements or [])

    async def _claim(self, rows: list[XeroPush], now: datetime) -> list[XeroPush]:
        self._claims += 1
        token, until = f"{self.owner}:{self._claims}"[:64], now + self.lease
        await XeroPush.filter(
            Q(status=XeroPushStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=XeroPushStatus.SENDING, lease_until__lte=now), id__in=[r.id for r in rows]).update(
            status=XeroPushStatus.SENDING, lease_owner=token, lease_until=until)
        return await XeroPush.filter(id__in=[r.id for r in rows], lease_owner=token).order_by("id")

    async def _refuse(self, rows: list[XeroPush], built: Built, now: datetime) -> int:
        for row in rows:
            if row.id in built.errors:
                await _fail(row, built.errors[row.id], now)
        return len(built.errors)

    async def _failed_call(self, connection: XeroConnection, rows: list[XeroPush], exc: XeroError,
                           now: datetime) -> None:
        message = str(exc)
        if isinstance(exc, XeroValidationError):
            for row in rows:
                await _fail(row, message, now)
            return
        if isinstance(exc, XeroDailyBudgetExhausted):
            tomorrow = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
            for row in rows:
                await _hold(row, tomorrow, message)
            await announce_waiting(connection, rows, message, now=now)
            return
        if isinstance(exc, XeroRateLimited):
            for row in rows:
                await _hold(row, now + timedelta(seconds=exc.retry_after), message)
            return
        if isinstance(exc, (XeroConnectionBroken, XeroNotSetUp)):
            for row in rows:
                await _hold(row, now + NOT_CONNECTED_WAIT, message)
            return
        for row in rows:  # unavailable, or an answer we cannot use: the same request again later
            row.attempts += 1
            if row.attempts >= ATTEMPTS:
                await _fail(row, f"{message} (gave up after {row.attempts} attempts)", now)
            else:
                await _hold(row, now + timedelta(seconds=retry_delay(row.attempts, base=30.0)), message,
                            attempts=row.attempts)

    async def _record(self, connection: XeroConnection, kind: XeroPushKind, rows: list[XeroPush],
                      elements: list[Any]) -> int:
        now = self.clock()
        collection, number_field = COLLECTION[kind]
        expected = await our_totals(rows)
        for row, element in zip(rows, elements, strict=False):
            if not isinstance(element, dict):
                continue
            messages = [str(e.get("Message")) for e in element.get("ValidationErrors") or []
                        if isinstance(e, dict) and e.get("Message")]
            if element.get("HasErrors"):
                if any("must be unique" in m for m in messages) and kind != XeroPushKind.PURCHASE_ORDER:
                    element = await self._existing(connection, collection, number_field, row.number) or element
                    if element.get("HasErrors"):
                        await _done(row, element, "", now, note="Already in Xero (found by its number).")
                        continue
                else:
                    await _fail(row, "Xero refused it: " + ("; ".join(messages) or "no reason given"), now)
                    continue
            mismatch = compare(expected[row.id], element)
            await _done(row, element, mismatch, now)
            if mismatch:
                await announce_mismatch(row, mismatch, now=now)
        for row in rows[len(elements):]:
            await _hold(row, now + timedelta(seconds=60), "Xero's answer did not list this document.")
        return min(len(rows), len(elements))

    async def _existing(self, connection: XeroConnection, collection: str, number_field: str,
                        number: str) -> dict[str, Any] | None:
        if collection != "Invoices":
            return None
        try:
            answer = await self.client.call(connection.tenant_id, connection.id, "GET", collection,
                                            params={"InvoiceNumbers": number})
        except XeroError:
            return None
        found = [e for e in (answer.get(collection) or []) if e.get(number_field) == number]
        return found[0] if found else None


async def _fix_request(rows: list[XeroPush], built: Built, connection: XeroConnection) -> None:
    """Store each push's request element and the batch key before the request leaves (resent as is)."""
    key = hashlib.sha256("|".join(f"{r.id}:{hashlib.sha256(built.payloads[r.id].encode()).hexdigest()}"
                                  for r in rows).encode()).hexdigest()[:40]
    async with in_transaction():
        for r in rows:
            r.payload, r.batch_key, r.connection_id = built.payloads[r.id], key, connection.id
            await r.save(update_fields=["payload", "batch_key", "connection_id"])


async def _connection(tenant_id: int, company_id: int | None) -> XeroConnection | None:
    try:
        return await usable_connection(tenant_id, company_id)
    except (XeroNotSetUp, NotFound):
        return None


async def _hold(row: XeroPush, until: datetime, message: str, *, attempts: int | None = None) -> None:
    fields = {"status": XeroPushStatus.PENDING, "next_attempt_at": until, "lease_owner": None, "lease_until": None,
              "last_error": message[:2000]}
    if attempts is not None:
        fields["attempts"] = attempts
    await XeroPush.filter(id=row.id).update(**fields)


async def _fail(row: XeroPush, message: str, now: datetime) -> None:
    async with in_transaction():
        await XeroPush.filter(id=row.id).update(status=XeroPushStatus.FAILED, lease_owner=None, lease_until=None,
                                                last_error=message[:2000])
        await announce_failed(row, message, now=now)
    log.warning("xero push failed push=%s number=%s", row.id, row.number)


async def _done(row: XeroPush, element: dict[str, Any], mismatch: str, now: datetime, *, note: str = "") -> None:
    totals = {k: str(element[k]) for k in ("SubTotal", "TotalTax", "Total") if k in element}
    xero_id = str(element.get("InvoiceID") or element.get("CreditNoteID") or element.get("PurchaseOrderID") or "")
    await XeroPush.filter(id=row.id).update(
        status=XeroPushStatus.DONE, lease_owner=None, lease_until=None, xero_id=xero_id[:64],
        xero_totals=totals or None, mismatch=mismatch[:500], last_error=note, done_at=now)

