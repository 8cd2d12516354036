"""International e-mail addresses (issue 12, item 8), seen from real aiosmtpd servers with and without SMTPUTF8.

* A Unicode domain (``ap@bücher.example``) is accepted at input and always delivered: as
  its IDNA A-label (``xn--bcher-kva.example``) in the envelope and the To header when the
  server lacks SMTPUTF8, as typed when it has it.
* A non-ASCII local part (``jörg@…``) is refused at input (it needs SMTPUTF8 on every hop);
  one stored before that rule is sent through an SMTPUTF8 server and fails permanently,
  with a reason naming the address, through one without (a BCC one is left out).
* Invalid IDNA labels are refused at input with a clear message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from invoicing.delivery.bcc import parse_bcc
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.transport import SmtpTransport, Transport
from invoicing.errors import InvalidInput
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.parties.accounting import normalise_accounting, normalise_email
from models import Company, Delivery
from tests import factories as f
from tests.factories import T0
from tests.fakes.smtp import RecordingHandler, free_port, start_server
from tests.invoicing.delivery.test_delivery import tiny_pdf

MAIL_FROM = "invoices@inkwell.example"
UNICODE_TO = "ap@bücher.example"
ASCII_TO = "ap@xn--bcher-kva.example"


@pytest.fixture(params=[False, True], ids=["no-smtputf8", "smtputf8"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, RecordingHandler, bool]]:
    controller, handler = start_server(free_port(), smtputf8=request.param)
    yield controller.port, handler, request.param
    controller.stop()


@pytest.fixture
def plain_server() -> Iterator[tuple[int, RecordingHandler]]:
    controller, handler = start_server(free_port(), smtputf8=False)
    yield controller.port, handler
    controller.stop()


def outbox(port: int, opened: list[Transport], mail_from: str = MAIL_FROM) -> Outbox:
    transport = SmtpTransport("127.0.0.1", port, security="none", timeout=5, local_hostname="localhost")
    opened.append(transport)
    return Outbox(transport, tiny_pdf, mail_from, lambda: T0)


async def issue(to: str, bcc: list[str] | None = None) -> Delivery:
    """An invoice whose buyer address is ``to`` as stored (set directly: older rows were not checked as now)."""
    t = await f.tenant()
    c = await f.company(t, "acme")
    await Company.filter(id=c.id).update(email=to)
    await f.price(t, "MUG", "5.00")
    await f.emailer(c, bcc=[])
    if bcc:
        emailer = await f.emailer_row(c)
        emailer.settings = {**emailer.settings, "bcc": bcc}
        await emailer.save()
    await f.order(c)
    report = await run_by_name(t, "acme", clock=lambda: T0, mail_domain="inkwell.example")
    return await Delivery.get(invoice_id=report.invoice_id)


async def test_a_unicode_domain_is_delivered_as_idna_without_smtputf8_and_as_typed_with_it(
        db, server, transports):
    port, handler, smtputf8 = server
    await issue(normalise_email("AP@Bücher.Example"), bcc=parse_bcc("ops@Bücher.example, boss@inkwell.example"))

    [outcome] = await outbox(port, transports).deliver_due()

    assert outcome.status == "sent", outcome
    [got] = handler.received
    if smtputf8:
        assert got.rcpt_tos == ["AP@bücher.example", "ops@bücher.example", "boss@inkwell.example"]
        assert "SMTPUTF8" in got.mail_options
        headers = got.content.decode("utf-8").split("\r\n\r\n")[0]
        assert "\r\nTo: AP@bücher.example\r\n" in headers or "\r\nTo: AP@xn--bcher-kva.example\r\n" in headers
    else:
        assert got.rcpt_tos == ["AP@xn--bcher-kva.example", "ops@xn--bcher-kva.example", "boss@inkwell.example"]
        assert "SMTPUTF8" not in got.mail_options
        assert got.content.isascii()
        assert str(got.message["To"]) == "AP@xn--bcher-kva.example"
    assert "Bcc" not in got.message and "ops@" not in got.content.decode("utf-8")
    assert got.message["Message-ID"] == (await Delivery.get()).message_id


async def test_a_unicode_domain_in_mail_from_is_sent_as_idna_to_a_server_without_smtputf8(
        db, plain_server, transports):
    port, handler = plain_server
    await issue("ap@acme.example")

    [outcome] = await outbox(port, transports, mail_from="Inkwell Bücher <rechnung@bücher.example>").deliver_due()

    assert outcome.status == "sent", outcome
    [got] = handler.received
    assert got.mail_from == "rechnung@xn--bcher-kva.example"
    assert got.message["From"].addresses[0].addr_spec == "rechnung@xn--bcher-kva.example"
    assert got.message["From"].addresses[0].display_name == "Inkwell Bücher"  # an encoded word: ASCII on the wire
    assert got.content.isascii()


async def test_a_non_ascii_local_part_fails_permanently_without_smtputf8_and_is_sent_with_it(db, server, transports):
    port, handler, smtputf8 = server
    await issue("jörg@acme.example")

    [outcome] = await outbox(port, transports).deliver_due()

    delivery = await Delivery.get()
    if smtputf8:
        assert outcome.status == "sent" and [r.rcpt_tos for r in handler.received] == [["jörg@acme.example"]]
        return
    assert outcome.status == "failed" and delivery.status == "failed"
    assert handler.received == [] and handler.data_commands == 0
    assert "does not support SMTPUTF8" in delivery.last_error and "jörg@acme.example" in delivery.last_error
    assert delivery.attempts == 1  # permanent: not retried


async def test_a_bcc_with_a_non_ascii_local_part_is_left_out_without_smtputf8_and_the_invoice_still_goes(
        db, plain_server, transports, caplog: pytest.LogCaptureFixture):
    port, handler = plain_server
    await issue("ap@bücher.example", bcc=["jörg@inkwell.example", "ops@inkwell.example"])
    caplog.set_level(logging.WARNING)

    [outcome] = await outbox(port, transports).deliver_due()

    assert outcome.status == "sent"
    [got] = handler.received
    assert got.rcpt_tos == ["ap@xn--bcher-kva.example", "ops@inkwell.example"]
    assert "jörg@inkwell.example" in caplog.text and "SMTPUTF8" in caplog.text


# --- input: what is accepted, and what is refused with a reason ----------------------------------


@pytest.mark.parametrize(("given", "stored"), [
    ("ap@bücher.example", "ap@bücher.example"),
    ("AP@BÜCHER.EXAMPLE", "AP@bücher.example"),
    ("ap@xn--bcher-kva.example", "ap@bücher.example"),  # the A-label form is the same domain
    ("rechnung@faß.de", "rechnung@faß.de"),  # IDNA 2008: ß is kept (IDNA 2003 made it "ss")
])
def test_international_domains_are_accepted_and_stored_in_unicode(given: str, stored: str):
    assert normalise_email(given) == stored
    assert normalise_accounting({"email": given}, country="DE") == {"email": stored}
    assert parse_bcc(f"ops@inkwell.example, {given}") == ["ops@inkwell.example", stored]


@pytest.mark.parametrize("given", ["ap@xn--abc.example", "ap@\u0308a.example", "ap@٣.example",
                                   "ap@a\u200db.example", "ap@xn--.example", "ap@bü_cher.example"])
def test_invalid_idna_domains_are_refused_at_input(given: str):
    for check in (normalise_email, lambda v: parse_bcc(v)):
        with pytest.raises(InvalidInput) as refused:
            check(given)
        assert "is not a valid e-mail address" in str(refused.value), refused.value


@pytest.mark.parametrize("given", ["jörg@acme.example", "用户@例子.广告", "ü@bücher.example"])
def test_a_non_ascii_local_part_is_refused_at_input_saying_why(given: str):
    with pytest.raises(InvalidInput) as refused:
        normalise_email(given)
    message = str(refused.value)
    assert "before the @" in message and "SMTPUTF8" in message and given in message
    with pytest.raises(InvalidInput) as refused:
        parse_bcc(f"ops@inkwell.example {given}")
    assert refused.value.field == "bcc" and "SMTPUTF8" in str(refused.value)


def test_message_ids_use_the_ascii_form_of_an_international_mail_from_domain():
    from invoicing.delivery.mail import mail_domain

    assert mail_domain("Inkwell <Rechnung@Bücher.Example>") == "xn--bcher-kva.example"
    assert mail_domain("invoices@Inkwell.example") == "inkwell.example"
    with pytest.raises(InvalidInput, match="MAIL_FROM"):
        mail_domain("invoices@٣.example")


async def test_the_file_outbox_keeps_an_international_address_readable(db, tmp_path):
    import email
    import email.policy
    import json

    from invoicing.delivery.transport import FileTransport

    await issue("ap@bücher.example", bcc=["ops@inkwell.example"])
    [outcome] = await Outbox(FileTransport(tmp_path), tiny_pdf, MAIL_FROM, lambda: T0).deliver_due()
    assert outcome.status == "sent"
    [eml] = tmp_path.glob("*.eml")
    text = eml.read_bytes().decode("utf-8")
    assert "\r\nTo: ap@bücher.example\r\n" in text and "=?utf-8?" not in text.split("\r\n\r\n")[0]
    assert str(email.message_from_string(text, policy=email.policy.default)["To"]) == "ap@bücher.example"
    envelope = json.loads(eml.with_name(eml.stem + ".envelope.json").read_text())
    assert envelope["rcpt_to"] == ["ap@bücher.example", "ops@inkwell.example"]
