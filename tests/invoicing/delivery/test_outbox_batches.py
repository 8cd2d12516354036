"""The outbox claims and records deliveries in chunks: seen from a real SMTP server (aiosmtpd) and the rows.

What a chunk must not change: each delivery is sent by one worker only, a crash re-sends
what may have left with the same Message-ID and bytes, one refusal defers one message,
and an e-mail composed in the render pool is byte for byte the one composed in-process.
"""

from __future__ import annotations

import asyncio
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtplib.email import flatten_message

from bot.rendering import RenderPool
from invoicing.billing.document import Party
from invoicing.delivery.mail import compose_invoice_email, flatten
from invoicing.delivery.outbox import UNKNOWN_OUTCOME, Outbox
from invoicing.delivery.pdf import render_invoice_pdf
from invoicing.delivery.transport import FileTransport, Outgoing, Transport
from models import Delivery, DeliveryKind, Invoice
from tests.factories import T0
from tests.fakes.smtp import RecordingHandler, free_port, start_server
from tests.invoicing.delivery.einvoice.test_delivery import _issue as issue_eu_invoice
from tests.invoicing.delivery.test_delivery import (
    MAIL_FROM,
    Clock,
    WorkerKilled,
    _document,
    issue_invoice,
    smtp_transport,
    tiny_pdf,
)


@pytest.fixture
def smtp() -> Iterator[tuple[int, RecordingHandler]]:
    controller, handler = start_server(free_port())
    yield controller.port, handler
    controller.stop()


async def issue_invoices(count: int) -> list[Delivery]:
    t, first = await issue_invoice()
    rest = [(await issue_invoice(short=f"shop{i}", tenant=t))[1] for i in range(1, count)]
    return [first, *rest]


def message_ids(server: RecordingHandler) -> list[str]:
    return [r.message["Message-ID"] for r in server.received]


@dataclass
class HeldAtFirstSend:
    """The network: the first message waits on the wire until the test lets it go."""

    inner: Transport
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, message: Outgoing, sender: str, recipients: list[str]) -> None:
        self.reached.set()
        await self.go.wait()
        await self.inner.send(message, sender, recipients)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class DiesAtSend:
    """The process dies right after the server accepted message number ``at`` (1-based)."""

    inner: Transport
    at: int
    sent: int = 0

    async def send(self, message: Outgoing, sender: str, recipients: list[str]) -> None:
        await self.inner.send(message, sender, recipients)
        self.sent += 1
        if self.sent == self.at:
            raise WorkerKilled


class RefusesSecond(RecordingHandler):
    """Accepts every message but the second, which gets a temporary refusal."""

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_commands == 1:
            self.data_commands += 1
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


async def test_a_chunk_claimed_by_one_worker_is_not_sent_by_another(db, smtp, transports):
    port, server = smtp
    first, second, third = await issue_invoices(3)
    held = HeldAtFirstSend(smtp_transport(port, transports))
    a = Outbox(held, tiny_pdf, MAIL_FROM, Clock(T0), batch_size=2)
    b = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, Clock(T0), batch_size=2)

    running = asyncio.ensure_future(a.deliver_due())
    await held.reached.wait()  # A committed its claim of [first, second] and is sending the first
    by_b = await b.deliver_due()
    held.go.set()
    by_a = await running

    assert [o.delivery_id for o in by_b] == [third.id]  # only the row A had not claimed
    assert [o.delivery_id for o in by_a] == [first.id, second.id]  # A's next claim found third taken
    assert sorted(message_ids(server)) == sorted(d.message_id for d in (first, second, third))
    assert {(d.status, d.attempts) for d in await Delivery.all()} == {("sent", 1)}


async def test_a_crash_after_the_claim_resends_the_chunk_with_the_same_message_ids_and_bytes(db, smtp, transports):
    port, server = smtp
    deliveries = await issue_invoices(3)
    clock = Clock(T0)
    crashing = Outbox(DiesAtSend(smtp_transport(port, transports), at=2), tiny_pdf, MAIL_FROM, clock, batch_size=3)
    with pytest.raises(WorkerKilled):
        await crashing.deliver_due()
    assert [(d.status, d.attempts) for d in await Delivery.all().order_by("id")] == [("sending", 1)] * 3
    before = {r.message["Message-ID"]: r.content for r in server.received}
    assert list(before) == [d.message_id for d in deliveries[:2]]

    restarted = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, batch_size=3)
    assert await restarted.deliver_due() == []  # within the lease: maybe a live worker is still sending them
    clock.advance(seconds=300)
    outcomes = await restarted.deliver_due()

    assert [(o.delivery_id, o.status, o.attempts) for o in outcomes] == [(d.id, "sent", 2) for d in deliveries]
    again = server.received[2:]
    assert [r.message["Message-ID"] for r in again] == [d.message_id for d in deliveries]
    for resent in again[:2]:
        assert resent.content == before[resent.message["Message-ID"]]  # byte-identical: droppable by the receiver
    rows = await Delivery.all().order_by("id")
    assert [(r.status, r.last_error) for r in rows] == [("sent", UNKNOWN_OUTCOME)] * 3


async def test_a_crash_re_sends_only_what_was_not_recorded_before_the_current_chunk(db, smtp, transports):
    port, server = smtp
    deliveries = await issue_invoices(5)
    clock = Clock(T0)
    crashing = Outbox(DiesAtSend(smtp_transport(port, transports), at=5), tiny_pdf, MAIL_FROM, clock, batch_size=2)
    with pytest.raises(WorkerKilled):
        await crashing.deliver_due()
    clock.advance(seconds=300)
    await Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, batch_size=2).deliver_due()

    # Chunks [1, 2] [3, 4] [5]: the claims of [3, 4] and [5] recorded 1–3; 4 (on the wire then) and 5 were not.
    resent = message_ids(server)[5:]
    assert resent == [d.message_id for d in deliveries[3:]]
    assert [r.status for r in await Delivery.all().order_by("id")] == ["sent"] * 5


async def test_a_4xx_in_the_middle_of_a_chunk_defers_only_that_message(db, transports):
    handler = RefusesSecond()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="localhost")
    controller.start()
    try:
        first, second, third = await issue_invoices(3)
        outbox = Outbox(smtp_transport(controller.port, transports), tiny_pdf, MAIL_FROM, Clock(T0),
                        base_backoff_seconds=30, batch_size=3)
        outcomes = await outbox.deliver_due()
    finally:
        controller.stop()

    assert [(o.delivery_id, o.status, o.attempts) for o in outcomes] == [
        (first.id, "sent", 1), (second.id, "pending", 1), (third.id, "sent", 1)]
    assert message_ids(handler) == [first.message_id, third.message_id]
    row = await Delivery.get(id=second.id)
    assert (row.status, row.attempts, row.next_attempt_at, row.last_error) == (
        "pending", 1, T0 + timedelta(seconds=30), "451 4.3.0 try again later")


async def test_an_unreachable_server_gives_back_the_claimed_rows_as_they_were(db, transports):
    port = free_port()  # nothing listens here
    deliveries = await issue_invoices(3)
    before = {d.id: (d.next_attempt_at, d.last_error) for d in await Delivery.all()}
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, Clock(T0), batch_size=3)

    (down,) = await outbox.deliver_due()

    assert (down.delivery_id, down.status, down.attempts) == (deliveries[0].id, "pending", 1)
    for row in await Delivery.filter(id__in=[d.id for d in deliveries[1:]]):
        assert (row.status, row.attempts, (row.next_attempt_at, row.last_error)) == ("pending", 0, before[row.id])


@dataclass
class SlowServer:
    """Each message takes 200 s of the injected clock; meanwhile another worker looks for stale leases."""

    inner: Transport
    clock: Clock
    other: Outbox
    recovered: list[int] = field(default_factory=list)

    async def send(self, message: Outgoing, sender: str, recipients: list[str]) -> None:
        self.clock.advance(seconds=200)
        self.recovered.append(await self.other.recover_unknown())
        await self.inner.send(message, sender, recipients)

    async def close(self) -> None:
        await self.inner.close()


async def test_a_chunk_slower_than_its_lease_renews_it_so_no_other_worker_resends_it(db, smtp, transports):
    port, server = smtp
    deliveries = await issue_invoices(3)
    clock = Clock(T0)
    other = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, sending_grace_seconds=300)
    slow = SlowServer(smtp_transport(port, transports), clock, other)
    outbox = Outbox(slow, tiny_pdf, MAIL_FROM, clock, sending_grace_seconds=300, batch_size=3)

    outcomes = await outbox.deliver_due()

    assert slow.recovered == [0, 0, 0]  # 600 s for the chunk, a 300 s lease: renewed, never stale
    assert [(o.delivery_id, o.status) for o in outcomes] == [(d.id, "sent") for d in deliveries]
    assert message_ids(server) == [d.message_id for d in deliveries]
    assert await other.deliver_due() == []


# --- composed in the render pool ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    render_pool = RenderPool(workers=1)
    yield render_pool
    render_pool.close()


async def _send_all(outbox: Outbox) -> None:
    outcomes = await outbox.deliver_due()
    assert outcomes and {o.status for o in outcomes} == {"sent"}
    await Delivery.all().update(status="pending", attempts=0, next_attempt_at=T0, sent_at=None)


async def test_e_mails_composed_in_the_render_pool_are_byte_identical_to_those_composed_in_process(
    db, smtp, transports, pool, tmp_path
):
    port, server = smtp
    company, delivery, _ = await issue_eu_invoice("DE", "EUR")  # a Factur-X PDF
    outbox = Outbox(FileTransport(tmp_path), render_invoice_pdf, MAIL_FROM, Clock(T0))
    copy = await outbox.resend((await Invoice.get(id=delivery.invoice_id)).display_number, company.tenant_id)
    assert copy.kind == DeliveryKind.RESEND
    pooled = {"async_composer": pool.render_and_compose}

    await _send_all(Outbox(smtp_transport(port, transports), render_invoice_pdf, MAIL_FROM, Clock(T0)))
    await _send_all(Outbox(smtp_transport(port, transports), render_invoice_pdf, MAIL_FROM, Clock(T0), **pooled))
    await _send_all(Outbox(FileTransport(tmp_path / "in-process"), render_invoice_pdf, MAIL_FROM, Clock(T0)))
    await _send_all(Outbox(FileTransport(tmp_path / "pool"), render_invoice_pdf, MAIL_FROM, Clock(T0), **pooled))

    in_process, in_pool = server.received[:2], server.received[2:]
    assert [r.message["Message-ID"] for r in in_pool] == [delivery.message_id, copy.message_id]
    assert [(r.content, r.mail_options, r.rcpt_tos) for r in in_pool] == \
        [(r.content, r.mail_options, r.rcpt_tos) for r in in_process]
    files = {p.name: p.read_bytes() for p in (tmp_path / "in-process").iterdir()}
    assert len(files) == 4 and files == {p.name: p.read_bytes() for p in (tmp_path / "pool").iterdir()}


@pytest.mark.parametrize("seller", ["Inkwell Print & Ship Ltd", "Zakład Poligraficzny Łódź Sp. z o.o. — druk"])
def test_a_flattened_message_is_what_aiosmtplib_would_put_on_the_wire(seller):
    message = compose_invoice_email(_document(seller=Party(seller)), b"%PDF-1.4 \x00\xff" * 500, mail_from=MAIL_FROM,
                                    to="ap@acme.example", message_id="<invoice.1.42@inkwell.example>")
    flat = flatten(message)
    assert flat.ascii_addresses and flat.message_id == "<invoice.1.42@inkwell.example>"
    for cte_type in ("8bit", "7bit"):  # with and without the server's 8BITMIME
        assert flat.data == flatten_message(message, utf8=False, cte_type=cte_type)
    assert flat.data == message.as_bytes(policy=email.policy.SMTP)  # what the .eml outbox writes


async def test_sharded_outboxes_send_their_own_share_side_by_side_each_message_once(db, smtp, transports):
    port, server = smtp
    deliveries = await issue_invoices(5)
    a, b = (Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, Clock(T0), batch_size=2,
                   shard=(index, 2)) for index in range(2))  # fmt: skip

    by_a, by_b = await asyncio.gather(a.deliver_due(), b.deliver_due())

    assert {o.delivery_id for o in by_a} == {d.id for d in deliveries if d.id % 2 == 0}
    assert {o.delivery_id for o in by_b} == {d.id for d in deliveries if d.id % 2 == 1}
    assert sorted(message_ids(server)) == sorted(d.message_id for d in deliveries)  # each exactly once
    assert {(d.status, d.attempts) for d in await Delivery.all()} == {("sent", 1)}


def test_a_shard_names_one_of_its_count(tmp_path):
    for shard in ((0, 0), (2, 2), (-1, 2)):
        with pytest.raises(ValueError, match="shard"):
            Outbox(FileTransport(tmp_path), tiny_pdf, MAIL_FROM, shard=shard)
