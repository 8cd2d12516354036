"""``flat_invoice_email`` writes exactly what ``flatten(compose_invoice_email(...))`` gives, at a fraction of the cost.

The contract is "same input, same bytes": Message-IDs, MIME boundaries, the ``.eml``
outbox and at-least-once re-sends rely on it, whichever path composed the message. So
every test here builds the message both ways and compares the whole ``FlatMessage``
(bytes, ``message_id``, ``invoice_number``, ``ascii_addresses``); where the composer
refuses an input, the fast path must refuse it as well.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.billing.document import InvoiceDocument, Party
from invoicing.delivery.mail import compose_invoice_email, credit_message_id_for, flatten, message_id_for
from invoicing.delivery.mail_bytes import flat_invoice_email
from invoicing.delivery.outbox_compose import ComposeRequest, render_and_compose
from tests.invoicing.delivery.test_delivery import MAIL_FROM, _document, tiny_pdf
from tests.invoicing.delivery.test_mail_headers import NAMES

PDF = b"%PDF-1.4 \x00\xff\r\n" * 300
NAMES_TO_TRY = {
    **NAMES,
    "ascii": "Inkwell Print & Ship Ltd",
    "accents": "Müller & Söhne Druckhaus GmbH",
    "emoji": "Happy Mugs 🎉☕ Ltd",
    "cjk-short": "東京印刷",
    "long-legal": "The Extraordinarily Long-Named International Print, Packaging and Fulfilment "
    "Services Company of Greater Manchester and the North West (Holdings) Limited",
    "long-accented": "Przedsiębiorstwo Produkcyjno-Handlowo-Usługowe Drukarnia Cyfrowa „Łódź” "
    "Spółka z ograniczoną odpowiedzialnością Spółka Komandytowa",
    "specials": 'Smith, Jones <and> Co @ "Print" \\ Ship =?utf-8?q?x?= Ltd',
    "encoded-word": "=?utf-8?b?SW5rd2VsbA==?=",
    "empty": "",
    "spaces": "  Lots   of   space  ",
}


@dataclass(frozen=True)
class Case:
    """One input of ``compose_invoice_email``."""

    doc: InvoiceDocument
    to: str = "ap@acme.example"
    mail_from: str = MAIL_FROM
    message_id: str = "<invoice.1.42@inkwell.example>"
    resend: bool = False
    pdf: bytes = PDF

    def arguments(self) -> dict[str, Any]:
        return {"mail_from": self.mail_from, "to": self.to, "message_id": self.message_id, "resend": self.resend}


def _credit_note(**changes: Any) -> InvoiceDocument:
    values: dict[str, Any] = dict(
        kind="credit_note",
        number="CN-000001",
        original_number="000042",
        original_issued_at=datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
        reason="Damaged in transit, 3 mugs",
    )
    values.update(changes)
    return _document(**values)


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {"plain": Case(_document()), "resend": Case(_document(), resend=True)}
    for name, legal in NAMES_TO_TRY.items():
        cases[f"seller-{name}"] = Case(_document(seller=Party(legal)))
        cases[f"seller-{name}-resend"] = Case(_document(seller=Party(legal)), resend=True)
        cases[f"buyer-{name}"] = Case(_document(buyer=Party(legal)))
        cases[f"display-name-{name}"] = Case(_document(), mail_from=f"{legal} <invoices@inkwell.example>")
        cases[f"credit-note-{name}"] = Case(_credit_note(seller=Party(legal), reason=legal), resend=True)
    for display in (
        '"Smith, J." <inv@x.example>',
        '"Quote \\" back\\\\slash" <inv@x.example>',
        "inv@x.example",
        "Inkwell <inv@x.example>",
        "<inv@x.example>",
        "Ïnkwell Drück <inv@x.example>",
    ):
        cases[f"mail-from-{display}"] = Case(_document(), mail_from=display)
    for number in (
        "000042",
        "INK-000001",
        "PL/2026/000123",
        "../../etc/passwd",
        'A"B;C\\D',
        "ÄÖÜ-1",
        "",
        " ",
        "=?utf-8?q?abc?=",
        "No. 1  2",
        *("x" * n for n in range(29, 36)),  # Content-Disposition: 78 characters at 30 (file name "<number>.pdf")
        *("x" * n for n in range(59, 62)),  # X-Invoice-Number: 78 characters at 60
        "7" * 120,
        "請求書-42",
        "42\nX-Spam: yes",
        "\u2028",
    ):
        cases[f"number-{number!r}"] = Case(_document(number=number))
        cases[f"credit-number-{number!r}"] = Case(_credit_note(number=number, original_number=number))
    for to in (
        "ap@bücher.example",
        "AP@Bücher.Example",
        "ap@xn--bcher-kva.example",
        "AP@ACME.EXAMPLE",
        "ap+inv@sub.acme.example",
        "Accounts <ap@acme.example>",
        '"A, P" <ap@acme.example>',
        "",
        "not an address",
        "ap@[127.0.0.1]",
        "a..b@acme.example",
        "ap@acme.example\r\nBcc: spy@evil.example",
        "ap\udcff@x.example",
        "jörg@acme.example",
        "=?utf-8?q?ap?=@acme.example",
        "a" * 60 + "@acme.example",
        "a" * 63 + "@b.example",
        "a" * 64 + "@b.example",
        "a" * 65 + "@b.example",
    ):
        cases[f"to-{to!r}"] = Case(_document(), to=to)
    for message_id in (
        message_id_for(7, 42, "inkwell.example", resend=3),
        credit_message_id_for(7, 1, "x.example"),
        "<m.1@inkwell.example> junk",
        "m.1@inkwell.example",
        "<m 1@x>",
        "<>",
        "",
        "<m@[1.2.3.4]>",
        "<=?utf-8?q?m?=@x.example>",
        "<" + "m" * 54 + "@x.example>",
        "<" + "m" * 55 + "@x.example>",
        "<" + "m" * 56 + "@x.example>",
        message_id_for(1, 1, "a-very-long-domain." * 4 + "example"),
        "<m@x>\r\nBcc: x@y",
    ):
        cases[f"message-id-{message_id!r}"] = Case(_document(), message_id=message_id)
    cases["empty-pdf"] = Case(_document(), pdf=b"")
    cases["one-byte-pdf"] = Case(_document(), pdf=b"%")
    cases["57-byte-pdf"] = Case(_document(), pdf=b"%" * 57)
    cases["no-period-start"] = Case(_document(period_start=None))
    cases["one-order"] = Case(_document(order_count=1))
    cases["yen"] = Case(_document(currency="JPY", gross_total=_document().gross_total * 1000))
    cases["credit-without-original-date"] = Case(_credit_note(original_issued_at=None, reason=""))
    cases["naive-issue-date"] = Case(_document(issued_at=datetime(2026, 11, 8, 0, 5)))
    cases["control-characters"] = Case(
        _document(seller=Party("Evil Ltd\r\nBcc: spy@evil.example"), buyer=Party("Tab\tBuyer\x00\x85")),
        mail_from="Inv\r\nBcc: a@b.c <invoices@inkwell.example>",
    )
    return cases


CASES = _cases()


def _outcome(case: Case, compose: Any) -> object:
    """What a composer gives for ``case``: its ``FlatMessage``, or the type of the exception it raised."""
    try:
        return compose(case.doc, case.pdf, **case.arguments())
    except Exception as exc:  # noqa: BLE001 - any refusal is the outcome compared with the other path
        return type(exc)


def _old_path(doc: InvoiceDocument, pdf: bytes, **arguments: Any) -> object:
    return flatten(compose_invoice_email(doc, pdf, **arguments))


@pytest.mark.parametrize("name", list(CASES))
def test_the_bytes_are_those_of_the_composed_message_flattened(name: str) -> None:
    case = CASES[name]
    expected = _outcome(case, _old_path)
    assert _outcome(case, flat_invoice_email) == expected


def test_the_table_covers_the_rare_header_shapes_and_refusals() -> None:
    """The table is not only the happy path: non-ASCII addresses and inputs the composer refuses are in it."""
    outcomes = {name: _outcome(case, _old_path) for name, case in CASES.items()}
    refused = {name: outcome for name, outcome in outcomes.items() if isinstance(outcome, type)}
    assert refused == {
        # Unquoted, the comma and parentheses make parseaddr read "Café" as the address, which has no ASCII form.
        "display-name-mixed": UnicodeEncodeError,
        "message-id-'<>'": IndexError,  # the stdlib's Message-ID parser fails on an empty msg-id
    }
    international = [name for name, o in outcomes.items() if not getattr(o, "ascii_addresses", True)]
    assert {"to-'ap@bücher.example'", "to-'jörg@acme.example'", "to-'ap\\udcff@x.example'"} <= set(international)


@pytest.mark.parametrize(
    ("doc", "arguments"),
    [
        (_document(seller=Party("Café \udcff")), {}),  # a lone surrogate cannot be encoded in a header
        (_document(), {"mail_from": "Inkwell <invoices@bücher.example>"}),  # an address the policy cannot write
        (_document(), {"message_id": "<\udcff@x>"}),
    ],
    ids=["surrogate-seller", "international-sender", "surrogate-message-id"],
)
def test_an_input_the_composer_refuses_is_refused_too(doc: InvoiceDocument, arguments: dict[str, Any]) -> None:
    case = Case(doc, **arguments)
    old = _outcome(case, _old_path)
    assert isinstance(old, type) and issubclass(old, Exception)
    assert _outcome(case, flat_invoice_email) is old


_any_text = st.text(max_size=90) | st.sampled_from(list(NAMES_TO_TRY.values()))
_ascii = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
_address = st.builds(
    "{}@{}".format,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-=?ü", max_size=40),
    st.sampled_from(["acme.example", "bücher.example", "xn--bcher-kva.example", "x", ""]),
)
_dot_atom = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_+", min_size=1, max_size=60)
# Mostly IDs of the shape the outbox makes (a non-ASCII one cannot be written by the SMTP policy at all).
_message_id = (
    st.builds("<{}@{}>".format, _dot_atom, _dot_atom)
    | st.builds("<{}@x.example>".format, _ascii)
    | _ascii
    | st.text(max_size=40)
)


@settings(max_examples=400, deadline=None, database=None)
@given(
    seller=_any_text,
    buyer=_any_text,
    number=_any_text | _ascii,
    reason=_any_text,
    display=_any_text,
    to=_address | _ascii | st.text(max_size=80),
    message_id=_message_id,
    resend=st.booleans(),
    credit=st.booleans(),
    pdf=st.binary(max_size=300),
)
def test_any_input_gives_what_the_composed_message_flattens_to(
    seller: str,
    buyer: str,
    number: str,
    reason: str,
    display: str,
    to: str,
    message_id: str,
    resend: bool,
    credit: bool,
    pdf: bytes,
) -> None:
    doc = (_credit_note if credit else _document)(
        seller=Party(seller), buyer=Party(buyer), number=number, reason=reason
    )
    name = display.replace("\\", "\\\\").replace('"', '\\"')
    case = Case(
        doc, to=to, mail_from=f'"{name}" <invoices@inkwell.example>', message_id=message_id, resend=resend, pdf=pdf
    )
    assert _outcome(case, flat_invoice_email) == _outcome(case, _old_path)


def test_the_bytes_read_back_as_the_invoice_e_mail_with_the_pdf_attached() -> None:
    doc = _document(
        seller=Party("Zakład Poligraficzny Łódź Sp. z o.o."), buyer=Party("株式会社 山田商事"), number="PL/2026/000123"
    )
    pdf = tiny_pdf(doc)
    flat = flat_invoice_email(
        doc, pdf, mail_from=MAIL_FROM, to="ap@acme.example", message_id="<invoice.1.123@inkwell.example>", resend=True
    )

    parsed = email.message_from_bytes(flat.data, policy=email.policy.default)

    assert isinstance(parsed, EmailMessage) and not parsed.defects
    assert parsed["From"].addresses[0].addr_spec == MAIL_FROM
    assert parsed["To"] == "ap@acme.example"
    assert (
        parsed["Subject"] == "Invoice PL/2026/000123 (copy) from Zakład Poligraficzny Łódź Sp. z o.o. — "
        "01 Nov–07 Nov 2026 — £1,234.56"
    )
    assert parsed["Date"].datetime == doc.issued_at
    assert parsed["Message-ID"] == flat.message_id == "<invoice.1.123@inkwell.example>"
    assert parsed["X-Invoice-Number"] == flat.invoice_number == "PL/2026/000123"
    assert flat.ascii_addresses
    [attachment] = parsed.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "PL-2026-000123.pdf"
    assert attachment.get_content() == pdf
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None and "Hello 株式会社 山田商事," in text.get_content()


def test_the_render_pool_composes_the_bytes_the_in_process_composer_flattens_to() -> None:
    doc = _credit_note(seller=Party("Müller & Söhne Druckhaus GmbH"))
    request = ComposeRequest(
        mail_from=f"Müller <{MAIL_FROM}>",
        to="ap@acme.example",
        message_id=credit_message_id_for(3, 1, "inkwell.example"),
        resend=False,
        facturx=False,
    )

    composed = render_and_compose(tiny_pdf, doc, request)

    assert composed.refusal == ""
    assert composed.message == flatten(
        compose_invoice_email(
            doc, tiny_pdf(doc), mail_from=request.mail_from, to=request.to, message_id=request.message_id
        )
    )


def test_a_changed_document_changes_the_bytes() -> None:
    """The comparison above is not vacuous: the fast path follows its input."""
    base = flat_invoice_email(_document(), PDF, mail_from=MAIL_FROM, to="ap@acme.example", message_id="<m@x>")
    for other in (replace(_document(), number="000043"), replace(_document(), order_count=13)):
        assert (
            flat_invoice_email(other, PDF, mail_from=MAIL_FROM, to="ap@acme.example", message_id="<m@x>").data
            != base.data
        )
