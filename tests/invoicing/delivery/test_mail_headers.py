"""Subject and From of composed e-mails hold RFC 2047 for any seller name, read back strictly.

Each test parses the raw bytes back with ``BytesParser(policy=default)`` (no defects) and
also decodes the headers with an independent RFC 2047 §6.2 decoder below: every
encoded-word at most 75 characters, none empty, lines at most 76 (78 for plain ASCII), and
the decoded text equal to what was composed, spaces included.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from email.parser import BytesParser

import pytest

from invoicing.billing.document import InvoiceDocument, Party
from invoicing.delivery.headers import encoded_words
from invoicing.delivery.mail import compose_invoice_email

NAMES = {
    "polish": "Przedsiębiorstwo Handlowo-Usługowe „Żółty Łabędź” Sp. z o.o.",
    "greek": "Εταιρεία Ψηφιακών Εκτυπώσεων και Αποστολών Αθηνών Α.Ε.",
    "japanese": "株式会社東京デジタル印刷サービス・ロジスティクス",
    "arabic": "شركة الطباعة الرقمية والشحن العربية المحدودة",
    "quotes": 'Smith, "Quotes" (Print) & Ship Ltd',
    "mixed": 'Café Łódź (Print), "Best" Ltd — Zürich',
}
NUMBERS = ("000042", "INK-000001", "PL/2026/000123")
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")


def _document(seller: str, number: str, currency: str = "GBP") -> InvoiceDocument:
    return InvoiceDocument(
        tenant_name="inkwell", number=number, issued_at=datetime(2026, 11, 8, 0, 5, tzinfo=UTC),
        period_start=datetime(2026, 11, 1, tzinfo=UTC), period_end=datetime(2026, 11, 8, tzinfo=UTC),
        timezone="Europe/London", currency=currency, seller=Party(legal_name=seller),
        buyer=Party(legal_name="Acme Gifts Ltd"), lines=(), tax_bands=(), net_total=Decimal("1028.80"),
        tax_total=Decimal("205.76"), gross_total=Decimal("1234.56"), payment_terms_days=30, order_count=12,
    )


def _raw(seller: str, number: str, *, resend: bool, currency: str = "GBP") -> tuple[bytes, str]:
    message = compose_invoice_email(_document(seller, number, currency), b"%PDF-1.4", to="ap@acme.example",
                                    mail_from="invoices@inkwell.example", message_id="<m.1@inkwell.example>",
                                    resend=resend)
    return message.as_bytes(), str(message["Subject"])


def _header(raw: bytes, name: str) -> str:
    """The raw (still folded) value of header ``name``: what follows the colon."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    found = re.search(rf"^{name}:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M)
    assert found, name
    return found.group(1)


def _decode_word(charset: str, kind: str, text: str) -> str:
    if kind.lower() == "b":
        data = base64.b64decode(text, validate=True)
    else:
        data = binascii.a2b_qp(text.replace("_", " ").encode("ascii"), header=False)
    return data.decode(charset)


def rfc2047_decode(value: str) -> str:
    """Unfold, then decode: whitespace between two adjacent encoded-words is dropped (§6.2), all else kept."""
    unfolded = re.sub(r"\r\n(?=[ \t])", "", value)
    out: list[str] = []
    pos = 0
    previous_was_word = False
    for match in ENCODED_WORD.finditer(unfolded):
        between = unfolded[pos:match.start()]
        if not (previous_was_word and between.strip(" \t") == ""):
            out.append(between)
        out.append(_decode_word(*match.groups()))
        previous_was_word = True
        pos = match.end()
    out.append(unfolded[pos:])
    return "".join(out)


def _check_wire(name: str, value: str) -> None:
    words = ENCODED_WORD.findall(value)
    for match in ENCODED_WORD.finditer(value):
        word = match.group(0)
        assert len(word) <= 75, word
        assert match.group(3), f"empty encoded-word {word}"
    for line in f"{name}:{value}".split("\r\n"):
        limit = 76 if ENCODED_WORD.search(line) else 78
        assert len(line) <= limit, line
    assert words or value.isascii()
    assert "=?" not in ENCODED_WORD.sub("", value)  # nothing that looks like a broken encoded-word


@pytest.mark.parametrize("resend", [False, True], ids=["initial", "resend"])
@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("kind", sorted(NAMES))
def test_the_subject_reads_back_exactly_with_valid_encoded_words(kind, number, resend):
    raw, subject = _raw(NAMES[kind], number, resend=resend)
    wire = _header(raw, "Subject")
    _check_wire("Subject", wire)
    assert rfc2047_decode(wire).strip() == subject
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert not parsed["Subject"].defects
    assert str(parsed["Subject"]) == subject
    assert NAMES[kind] in subject and ("(copy)" in subject) == resend


def test_a_resend_subject_never_ends_in_an_empty_encoded_word():
    # Python 3.11's own folding ended this one in "=?utf-8?q??=".
    raw, _ = _raw(NAMES["quotes"], "000042", resend=True)
    assert "??=" not in _header(raw, "Subject")


def test_no_encoded_word_is_76_characters():
    # Python 3.11's own folding produced "=?utf-8?q?Przedsi=C4=99biorstwo_Handlowo-Us?=" (76).
    raw, _ = _raw(NAMES["polish"], "INK-000001", resend=False)
    assert max(len(w) for w in re.findall(r"=\?.*?\?=", _header(raw, "Subject"))) <= 75


def test_folding_keeps_every_space():
    # Python 3.11's own folding read back as "Ltd  — … 2026 —£1,234.56".
    raw, subject = _raw(NAMES["quotes"], "INK-000001", resend=True)
    assert str(BytesParser(policy=policy.default).parsebytes(raw)["Subject"]) == subject
    assert "Ltd — 01 Nov–07 Nov 2026 — £1,234.56" in subject


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_the_from_display_name_is_the_seller_name_exactly(kind):
    raw, _ = _raw(NAMES[kind], "INK-000001", resend=True)
    wire = _header(raw, "From")
    _check_wire("From", wire)
    assert wire.endswith("<invoices@inkwell.example>")
    phrase = wire.removesuffix("<invoices@inkwell.example>").strip()
    if phrase.startswith('"'):
        name = phrase[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    else:
        name = rfc2047_decode(phrase)
    assert name == NAMES[kind]
    parsed = BytesParser(policy=policy.default).parsebytes(raw)["From"]
    assert not parsed.defects
    (address,) = parsed.addresses
    assert address.addr_spec == "invoices@inkwell.example"
    # Python < 3.13 adds a space between adjacent encoded-words of a display name (CPython gh-128110,
    # against RFC 2047 §6.2); apart from those spaces the stdlib reads the same name.
    assert address.display_name.replace(" ", "") == NAMES[kind].replace(" ", "")


@pytest.mark.parametrize("text", [*NAMES.values(), "a" * 200, "ż" * 100, "x ż " * 40, "😃 " * 30, "=?utf-8?q?x?="])
def test_encoded_words_decode_to_the_text_and_stay_within_75_characters(text):
    words = encoded_words(text)
    assert all(0 < len(ENCODED_WORD.fullmatch(w).group(3)) and len(w) <= 75 for w in words)
    assert rfc2047_decode(" ".join(words)) == text
