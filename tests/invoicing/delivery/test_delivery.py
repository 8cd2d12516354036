"""Invoice e-mail delivery, seen from a real local SMTP server (aiosmtpd) and the outbox rows.

Invoices are issued by the real engine (``run_company``); the PDF renderer is a tiny
fpdf2 stand-in (the real one lives in ``invoicing.delivery.pdf``). Time is an injected clock.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import logging
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from fpdf import FPDF
from pypdf import PdfReader

from invoicing.billing.document import InvoiceDocument, Party
from invoicing.delivery.mail import compose_invoice_email, envelope_recipients
from invoicing.delivery.outbox import UNKNOWN_OUTCOME, Outbox
from invoicing.delivery.transport import (
    FileTransport,
    PermanentDeliveryError,
    SmtpTransport,
    Transport,
)
from invoicing.errors import InvalidInput, NotFound
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Company, Delivery, DeliveryKind, Invoice
from tests import factories as f
from tests.factories import T0
from tests.fakes.smtp import RecordingHandler, free_port, start_server

MAIL_FROM = "invoices@inkwell.example"


@pytest.fixture
def smtp() -> Iterator[tuple[int, RecordingHandler]]:
    controller, handler = start_server(free_port())
    yield controller.port, handler
    controller.stop()


def smtp_transport(port: int, opened: list[Transport], **kwargs) -> SmtpTransport:
    transport = SmtpTransport("127.0.0.1", port, security=kwargs.pop("security", "none"), timeout=5,
                              local_hostname="localhost", **kwargs)
    opened.append(transport)
    return transport


# --- the rest of the world: clock, renderer, invoices --------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def tiny_pdf(doc: InvoiceDocument) -> bytes:
    """Test double of ``invoicing.delivery.pdf.render_invoice_pdf``: a valid, deterministic one-page PDF."""
    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=f"Invoice {doc.number}")
    return bytes(pdf.output())


async def issue_invoice(bcc: list[str] | None = None, short: str = "acme", tenant=None):
    """One committed invoice with its pending delivery, as a run leaves it."""
    t = tenant or await f.tenant()
    c = await f.company(t, short)
    await f.price(t, "MUG", "5.00", shipping="1.50")
    await f.emailer(c, bcc=bcc or [])
    await f.order(c, quantity=2)
    report = await run_by_name(t, short, clock=lambda: T0, mail_domain="inkwell.example")
    return t, await Delivery.get(invoice_id=report.invoice_id)


async def document_of(delivery: Delivery) -> InvoiceDocument:
    return await InvoiceDocument.load(await Invoice.get(id=delivery.invoice_id))


def pdf_attachment(message: EmailMessage) -> tuple[str, bytes]:
    (part,) = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    return part.get_filename(), part.get_content()


# --- delivery over SMTP ---------------------------------------------------------------------------


async def test_the_invoice_goes_to_the_accounting_address_with_bcc_only_in_the_envelope(db, smtp, transports):
    port, server = smtp
    t, delivery = await issue_invoice(bcc=["ops@inkwell.example", "AP@Acme.example"])
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock)

    outcomes = await outbox.deliver_due()

    assert [(o.invoice_number, o.status, o.attempts) for o in outcomes] == [("000001", "sent", 1)]
    (got,) = server.received
    assert got.mail_from == MAIL_FROM
    assert got.rcpt_tos == ["ap@acme.example", "ops@inkwell.example"]  # the To address once, despite the BCC copy
    message = got.message
    assert "Bcc" not in message and b"ops@inkwell.example" not in got.content
    assert message["To"] == "ap@acme.example"
    assert message["Message-ID"] == delivery.message_id == f"<invoice.{t.id}.1@inkwell.example>"
    assert message["Subject"].startswith("Invoice 000001 from Inkwell Print & Ship Ltd — ")
    name, pdf = pdf_attachment(message)
    assert name == "000001.pdf"
    assert pdf == tiny_pdf(await document_of(delivery))
    assert "Invoice 000001" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, T0, "")


async def test_a_421_reply_is_retried_with_growing_backoff_and_delivered_exactly_once(db, smtp, transports):
    port, server = smtp
    server.script = ["421 4.3.2 try later", "421 4.3.2 try later"]
    _, delivery = await issue_invoice()
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, base_backoff_seconds=30)

    first = await outbox.deliver_due()
    assert [(o.status, o.error, o.attempts) for o in first] == [("pending", "421 4.3.2 try later", 1)]
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + timedelta(seconds=30))

    clock.advance(seconds=29)
    assert await outbox.deliver_due() == []  # not due yet: nothing is tried early
    clock.advance(seconds=1)
    await outbox.deliver_due()
    assert (await Delivery.get(id=delivery.id)).next_attempt_at == clock.now + timedelta(seconds=60)

    clock.advance(seconds=60)
    last = await outbox.deliver_due()
    assert [(o.status, o.attempts) for o in last] == [("sent", 3)]
    assert server.data_commands == 3 and len(server.received) == 1
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 3, clock.now)
    assert row.last_error == "421 4.3.2 try later"  # what happened before success stays on record


async def test_a_busy_reply_for_one_invoice_does_not_hold_back_the_next(db, smtp, transports):
    port, server = smtp
    server.script = ["452 4.3.1 insufficient storage, try later"]
    t, first = await issue_invoice()
    _, second = await issue_invoice(short="bravo", tenant=t)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, Clock(T0), lanes=1)

    outcomes = await outbox.deliver_due()

    assert [(o.delivery_id, o.status) for o in outcomes] == [(first.id, "pending"), (second.id, "sent")]
    assert [r.message["Message-ID"] for r in server.received] == [second.message_id]


async def test_transient_failures_give_up_after_max_attempts(db, smtp, transports):
    port, server = smtp
    server.always = "451 4.7.1 greylisted"
    _, delivery = await issue_invoice()
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, max_attempts=2)

    await outbox.deliver_due()
    clock.advance(hours=1)
    (outcome,) = await outbox.deliver_due()

    assert outcome.status == "failed" and outcome.error == "451 4.7.1 greylisted (gave up after 2 attempts)"
    clock.advance(days=1)
    assert await outbox.deliver_due() == []
    assert server.data_commands == 2
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)


async def test_a_550_reply_fails_permanently_with_the_server_text_and_is_never_retried(db, smtp, transports):
    port, server = smtp
    server.always = "550 5.1.1 mailbox unavailable"
    _, delivery = await issue_invoice()
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock)

    (outcome,) = await outbox.deliver_due()
    clock.advance(days=2)
    again = await outbox.deliver_due()

    assert (outcome.status, outcome.error, outcome.attempts) == ("failed", "550 5.1.1 mailbox unavailable", 1)
    assert again == [] and server.data_commands == 1 and server.received == []
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.last_error, row.sent_at) == ("failed", "550 5.1.1 mailbox unavailable", None)


async def test_a_server_that_is_down_is_retried_until_it_is_up_and_then_delivered_once(db, transports):
    port = free_port()  # nothing listens here yet: connection refused
    t, delivery = await issue_invoice()
    _, waiting = await issue_invoice(short="bravo", tenant=t)
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, lanes=1)

    (down,) = await outbox.deliver_due()  # the second invoice is not tried against a dead server
    assert (down.delivery_id, down.status) == (delivery.id, "pending") and "cannot reach the mail server" in down.error
    assert (await Delivery.get(id=waiting.id)).attempts == 0

    controller, server = start_server(port)
    try:
        clock.advance(seconds=30)
        up = await outbox.deliver_due()
    finally:
        controller.stop()
    assert [(o.delivery_id, o.status, o.attempts) for o in up] == [(waiting.id, "sent", 1), (delivery.id, "sent", 2)]
    assert sorted(r.message["Message-ID"] for r in server.received) == sorted([delivery.message_id, waiting.message_id])


async def test_one_connection_is_reused_across_deliveries(db, smtp, transports):
    port, server = smtp
    t, _ = await issue_invoice()
    await issue_invoice(short="bravo", tenant=t)
    transport = smtp_transport(port, transports)
    outbox = Outbox(transport, tiny_pdf, MAIL_FROM, Clock(T0))

    outcomes = await outbox.deliver_due()

    assert [o.status for o in outcomes] == ["sent", "sent"] and len(server.received) == 2
    assert transport.connections_opened == 1


async def test_a_connection_the_server_dropped_is_reopened_without_delaying_the_invoice(db, smtp, transports):
    port, server = smtp
    t, _ = await issue_invoice()
    transport = smtp_transport(port, transports)
    outbox = Outbox(transport, tiny_pdf, MAIL_FROM, Clock(T0))
    await outbox.deliver_due()
    _, later = await issue_invoice(short="bravo", tenant=t)
    server.hang_up_on_next_mail = True

    (outcome,) = await outbox.deliver_due()

    assert (outcome.delivery_id, outcome.status, outcome.attempts) == (later.id, "sent", 1)
    assert len(server.received) == 2 and transport.connections_opened == 2


async def test_an_invoice_that_cannot_be_rendered_fails_with_the_reason_and_nothing_is_sent(db, smtp, transports):
    port, server = smtp
    _, delivery = await issue_invoice()

    def broken_renderer(doc: InvoiceDocument) -> bytes:
        raise ValueError("font missing")

    (outcome,) = await Outbox(smtp_transport(port, transports), broken_renderer, MAIL_FROM, Clock(T0)).deliver_due()

    assert (outcome.status, outcome.error) == ("failed", "could not prepare the e-mail: ValueError: font missing")
    assert server.data_commands == 0
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts) == ("failed", 0)


# --- STARTTLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts exactly the test certificate (hostname checked too)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture
def tls_smtp(certificate) -> Iterator[tuple[int, RecordingHandler]]:
    controller, handler = start_server(free_port(), tls_context=server_tls(certificate), require_starttls=True)
    yield controller.port, handler
    controller.stop()


async def test_starttls_delivers_over_an_encrypted_session_trusting_the_server_certificate(
    db, tls_smtp, certificate, transports
):
    port, server = tls_smtp
    _, delivery = await issue_invoice()
    transport = smtp_transport(port, transports, security="starttls", tls_context=trusting(certificate))
    outbox = Outbox(transport, tiny_pdf, MAIL_FROM, Clock(T0))

    (outcome,) = await outbox.deliver_due()

    assert outcome.status == "sent"
    (got,) = server.received
    assert got.tls and got.message["Message-ID"] == delivery.message_id


async def test_an_untrusted_server_certificate_is_a_permanent_failure(tls_smtp, transports):
    port, server = tls_smtp
    transport = smtp_transport(port, transports, security="starttls")  # system CAs: self-signed is refused
    with pytest.raises(PermanentDeliveryError, match="not trusted"):
        await transport.send(_sample_message(), MAIL_FROM, ["ap@acme.example"])
    assert server.data_commands == 0


async def test_smtp_login_over_starttls_uses_the_credentials_and_never_logs_the_password(
    db, certificate, transports, caplog
):
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data: LoginPassword) -> AuthResult:
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret-pw")

    controller, server = start_server(free_port(), tls_context=server_tls(certificate), require_starttls=True,
                                      authenticator=authenticator, auth_required=True)
    caplog.set_level(logging.DEBUG)
    try:
        transport = smtp_transport(controller.port, transports, security="starttls", username="mailer",
                                    password="s3cret-pw", tls_context=trusting(certificate))
        await issue_invoice()
        (outcome,) = await Outbox(transport, tiny_pdf, MAIL_FROM, Clock(T0)).deliver_due()
        await transport.close()
    finally:
        controller.stop()
    assert outcome.status == "sent" and len(server.received) == 1
    assert logins == [(b"mailer", b"s3cret-pw")]
    assert "s3cret-pw" not in caplog.text and "s3cret-pw" not in repr(transport)


# --- crash between hand-off and record ------------------------------------------------------------


class WorkerKilled(BaseException):
    """The process dies (SIGKILL, OOM) after the server accepted the message, before the outcome is stored."""


@dataclass
class DiesAfterHandOff:
    inner: Transport

    async def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> None:
        await self.inner.send(message, sender, recipients)
        raise WorkerKilled

    async def close(self) -> None:
        await self.inner.close()


async def test_a_delivery_left_sending_by_a_crash_is_resent_with_the_same_message_id_and_recorded(
    db, smtp, transports
):
    port, server = smtp
    _, delivery = await issue_invoice()
    clock = Clock(T0)
    crashing = Outbox(DiesAfterHandOff(smtp_transport(port, transports)), tiny_pdf, MAIL_FROM, clock)
    with pytest.raises(WorkerKilled):
        await crashing.deliver_due()
    assert (await Delivery.get(id=delivery.id)).status == "sending"

    restarted = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock, sending_grace_seconds=300)
    assert await restarted.deliver_due() == []  # within the lease: maybe a live worker is still sending it
    clock.advance(seconds=300)
    (outcome,) = await restarted.deliver_due()

    assert (outcome.status, outcome.attempts) == ("sent", 2)
    first, second = server.received
    assert first.message["Message-ID"] == second.message["Message-ID"] == delivery.message_id
    assert first.content == second.content  # byte-identical: the receiver can drop the duplicate
    row = await Delivery.get(id=delivery.id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, UNKNOWN_OUTCOME)


async def test_two_workers_never_send_the_same_delivery_twice(db, smtp, transports):
    port, server = smtp
    t, _ = await issue_invoice()
    for short in ("bravo", "charlie"):
        await issue_invoice(short=short, tenant=t)
    workers = [Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, Clock(T0)) for _ in range(2)]

    results = await asyncio.gather(*(w.deliver_due() for w in workers))

    assert sorted(o.delivery_id for r in results for o in r) == [d.id for d in await Delivery.all().order_by("id")]
    ids = [r.message["Message-ID"] for r in server.received]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert {d.status for d in await Delivery.all()} == {"sent"}


async def test_two_workers_render_each_delivery_once_because_they_claim_before_rendering(db, smtp, transports):
    port, _ = smtp
    t, _ = await issue_invoice()
    for short in ("bravo", "charlie", "delta"):
        await issue_invoice(short=short, tenant=t)
    rendered: list[str] = []

    def counting_pdf(doc: InvoiceDocument) -> bytes:
        rendered.append(doc.number)
        return tiny_pdf(doc)

    workers = [Outbox(smtp_transport(port, transports), counting_pdf, MAIL_FROM, Clock(T0)) for _ in range(2)]
    await asyncio.gather(*(w.deliver_due() for w in workers))

    issued = sorted(i.display_number for i in await Invoice.all())
    assert sorted(rendered) == issued, "a claimed delivery was rendered twice"


async def test_an_async_renderer_is_awaited_on_the_loop_without_a_thread(db, smtp, transports):
    port, server = smtp
    await issue_invoice()
    threads: list[str] = []

    async def pool_render(doc: InvoiceDocument) -> bytes:
        import threading

        threads.append(threading.current_thread().name)
        return tiny_pdf(doc)

    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, Clock(T0), async_renderer=pool_render)
    (outcome,) = await outbox.deliver_due()
    assert outcome.status == "sent" and len(server.received) == 1
    assert threads == ["MainThread"]


# --- the .eml outbox (no SMTP server configured) --------------------------------------------------


async def test_the_file_transport_writes_a_parseable_eml_with_the_pdf_and_no_bcc(db, tmp_path):
    _, delivery = await issue_invoice(bcc=["ops@inkwell.example"])
    folder = tmp_path / "outbox"
    outbox = Outbox(FileTransport(folder), tiny_pdf, MAIL_FROM, Clock(T0))

    (outcome,) = await outbox.deliver_due()

    assert outcome.status == "sent"
    (eml,) = folder.glob("*.eml")
    assert eml.name.startswith("000001-") and not list(folder.glob(".tmp-*"))
    raw = eml.read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Bcc" not in message and b"ops@inkwell.example" not in raw
    assert message["To"] == "ap@acme.example" and message["Message-ID"] == delivery.message_id
    name, pdf = pdf_attachment(message)
    assert (name, pdf) == ("000001.pdf", tiny_pdf(await document_of(delivery)))
    envelope = json.loads(eml.with_name(eml.stem + ".envelope.json").read_text())
    assert envelope == {"mail_from": MAIL_FROM, "rcpt_to": ["ap@acme.example", "ops@inkwell.example"]}


async def test_the_file_transport_overwrites_a_resent_message_and_never_escapes_its_folder(tmp_path):
    folder = tmp_path / "outbox"
    transport = FileTransport(folder)
    message = _sample_message(number="../../etc/passwd")
    await transport.send(message, MAIL_FROM, ["ap@acme.example"])
    await transport.send(message, MAIL_FROM, ["ap@acme.example"])
    (eml,) = folder.glob("*.eml")
    assert eml.parent == folder and ".." not in eml.name and "/" not in eml.name
    assert list(tmp_path.iterdir()) == [folder]


# --- resend ---------------------------------------------------------------------------------------


async def test_a_resend_is_a_new_message_with_its_own_stable_message_id_and_the_same_pdf(db, smtp, transports):
    port, server = smtp
    t, first = await issue_invoice(bcc=["ops@inkwell.example"])
    clock = Clock(T0)
    outbox = Outbox(smtp_transport(port, transports), tiny_pdf, MAIL_FROM, clock)
    await outbox.deliver_due()
    await f.emailer(await Company.get(tenant_id=t.id, short_name="acme"), bcc=["new-ops@inkwell.example"])

    clock.advance(days=3)
    again = await outbox.resend("000001", t.id)
    second = await outbox.resend("000001", t.id, to="Finance@Acme.example")
    await outbox.deliver_due()

    assert (again.kind, again.message_id) == (DeliveryKind.RESEND, f"<invoice.{t.id}.1.r1@inkwell.example>")
    assert second.message_id == f"<invoice.{t.id}.1.r2@inkwell.example>" and second.to_addr == "Finance@acme.example"
    by_id = {r.message["Message-ID"]: r for r in server.received}
    assert len(server.received) == 3
    original, copy, other = by_id[first.message_id], by_id[again.message_id], by_id[second.message_id]
    assert copy.rcpt_tos == ["ap@acme.example", "new-ops@inkwell.example"]  # today's BCC list
    assert other.rcpt_tos == ["Finance@acme.example", "new-ops@inkwell.example"]
    assert "(copy)" in copy.message["Subject"] and "(copy)" not in original.message["Subject"]
    assert pdf_attachment(copy.message) == pdf_attachment(original.message)
    rows = await Delivery.filter(invoice_id=first.invoice_id).order_by("id")
    assert [(r.kind, r.status) for r in rows] == [("initial", "sent"), ("resend", "sent"), ("resend", "sent")]


async def test_resending_an_unknown_invoice_number_is_not_found(db):
    t, _ = await issue_invoice()
    outbox = Outbox(FileTransport(Path("/nonexistent")), tiny_pdf, MAIL_FROM, Clock(T0))
    with pytest.raises(NotFound, match="No invoice '000099'"):
        await outbox.resend("000099", t.id)
    other_tenant = await f.tenant("other")
    with pytest.raises(NotFound):
        await outbox.resend("000001", other_tenant.id)


# --- composing the message (pure) -----------------------------------------------------------------


def _document(**changes) -> InvoiceDocument:
    values = dict(
        tenant_name="inkwell", number="000042", issued_at=datetime(2026, 11, 8, 0, 5, tzinfo=UTC),
        period_start=datetime(2026, 11, 1, 0, 0, tzinfo=UTC), period_end=datetime(2026, 11, 8, 0, 0, tzinfo=UTC),
        timezone="Europe/London", currency="GBP", seller=Party("Inkwell Print & Ship Ltd"),
        buyer=Party("Acme Gifts Ltd", email="ap@acme.example"), lines=(), tax_bands=(),
        net_total=Decimal("1028.80"), tax_total=Decimal("205.76"), gross_total=Decimal("1234.56"),
        payment_terms_days=30, order_count=12,
    )
    values.update(changes)
    return InvoiceDocument(**values)


def _sample_message(number: str = "000042") -> EmailMessage:
    return compose_invoice_email(_document(number=number), b"%PDF-1.4 test", mail_from=MAIL_FROM,
                                 to="ap@acme.example", message_id="<invoice.1.42@inkwell.example>")


def test_the_subject_names_number_seller_local_period_and_total():
    message = _sample_message()
    assert message["Subject"] == "Invoice 000042 from Inkwell Print & Ship Ltd — 01 Nov–07 Nov 2026 — £1,234.56"
    assert message["From"] == "Inkwell Print & Ship Ltd <invoices@inkwell.example>"
    assert message["Date"] == "Sun, 08 Nov 2026 00:05:00 +0000"


def test_the_bodies_name_number_period_total_due_date_and_order_count():
    message = _sample_message()
    for subtype in ("plain", "html"):
        body = message.get_body(preferencelist=(subtype,)).get_content()
        for fact in ("000042", "01 Nov–07 Nov 2026", "£1,234.56", "08 Dec 2026", "12 orders"):
            assert fact in body, (subtype, fact)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Inkwell Print &amp; Ship Ltd" in html


def test_dates_are_printed_in_the_buyer_time_zone():
    late_evening_utc = datetime(2026, 11, 7, 23, 30, tzinfo=UTC)  # already 8 Nov in Warsaw
    doc = _document(timezone="Europe/Warsaw", period_start=late_evening_utc - timedelta(days=7),
                    period_end=late_evening_utc, currency="PLN")
    subject = compose_invoice_email(doc, b"", mail_from=MAIL_FROM, to="ap@acme.example",
                                    message_id="<m@x>")["Subject"]
    assert "01 Nov–08 Nov 2026" in subject and "PLN" in subject


def test_the_same_input_gives_the_same_bytes():
    assert _sample_message().as_bytes() == _sample_message().as_bytes()


def test_line_breaks_in_header_values_cannot_inject_headers():
    doc = _document(seller=Party("Evil Ltd\r\nBcc: spy@evil.example"), number="42\nX-Spam: yes")
    message = compose_invoice_email(doc, b"", mail_from="Inv\r\nBcc: a@b.c <invoices@inkwell.example>",
                                    to="ap@acme.example\r\nBcc: spy@evil.example", message_id="<m@x>\r\nBcc: x@y")
    raw = message.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Bcc" not in parsed and "X-Spam" not in parsed
    assert b"\r\nBcc:" not in raw and b"\nBcc:" not in raw


@pytest.mark.parametrize("mail_from", ["", "invoices", "Inkwell <>", "a@b.example\r\nBcc: x@y.example"])
def test_a_mail_from_that_is_not_an_address_is_refused_at_start(mail_from):
    with pytest.raises(InvalidInput) as info:
        Outbox(FileTransport(Path("/nonexistent")), tiny_pdf, mail_from)
    assert info.value.field == "mail_from"


def test_envelope_recipients_are_to_then_bcc_without_duplicates():
    assert envelope_recipients("ap@acme.example", ["ops@inkwell.example", "AP@ACME.example", "ops@Inkwell.example"]) \
        == ["ap@acme.example", "ops@inkwell.example"]
