"""The invoice e-mail written straight to the bytes SMTP carries: ``flat_invoice_email``.

``flatten(compose_invoice_email(...))`` builds a tree of message objects, parses every
header value it is handed and runs ``email.generator`` over the tree, only to throw the
tree away; in the render worker that was a large share of the CPU per message. The
invoice e-mail never changes shape (the same nine headers, ``multipart/mixed``
[``multipart/alternative`` [text, HTML], PDF]), so this module writes its bytes directly.

What a caller may rely on: for every input ``compose_invoice_email`` accepts,
``flat_invoice_email`` returns the ``FlatMessage`` that ``flatten`` gives for that
message — the same ``data``, ``message_id``, ``invoice_number`` and ``ascii_addresses`` —
and for an input it refuses, it raises as well (``tests/invoicing/delivery/test_mail_bytes.py``
holds the two paths to that). Retries, resends and the ``.eml`` outbox depend on it:
the same input gives the same bytes whichever path composed them.

How each piece is written:

* the content (From, subject, bodies, file name, MIME boundaries) comes from
  ``mail.email_parts``, which ``compose_invoice_email`` uses too;
* ``From`` and ``Subject`` are the header objects of ``invoicing.delivery.headers``, folded
  by the SMTP policy exactly as the generator folds them;
* ``Date``, the MIME headers, and ``To``, ``Message-ID``, ``X-Invoice-Number`` and
  ``Content-Disposition`` values of the usual shape (a plain ``local@domain``, a
  ``<dot-atom@dot-atom>``, printable ASCII) are written as ``Name: value``: for a value like
  that, on one line of at most 78 characters, that is what the policy's folding gives;
* any other value of those four headers (an international domain or a display name in
  ``To``, an over-long or malformed Message-ID, an empty or non-ASCII invoice number, a long
  file name) is parsed and folded by the stdlib, for that header only, as the generator
  would: the rare inputs keep the old path's bytes, quirks included, without a copy of its rules;
* bodies are the quoted-printable and base64 text with line ends made CRLF, as the
  generator writes them.
"""

from __future__ import annotations

import base64
import functools
import re
from email import policy
from email.headerregistry import Address, BaseHeader
from email.utils import format_datetime

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.addresses import addresses_are_ascii
from invoicing.delivery.headers import address_header, folded_header
from invoicing.delivery.mail import POLICY, FlatMessage, email_parts

#: What the generator flattens with (``flatten`` uses ``as_bytes(policy=policy.SMTP)``).
_SMTP = policy.SMTP
#: ``max_line_length`` of that policy: a header line up to this long is never folded.
_MAX_LINE = 78
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
#: An addr-spec that parses, and prints back, as itself (no quoting, comments or literals).
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")
_PLAIN_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
#: Printable ASCII words, one space apart: unstructured text the policy writes as it is.
_PLAIN_TEXT = re.compile(r"[!-~]+(?: [!-~]+)*")
#: Line ends as the generator finds them in a body.
_LINE_END = re.compile(r"\r\n|\r|\n")


def flat_invoice_email(
    doc: InvoiceDocument, pdf: bytes, *, mail_from: str, to: str, message_id: str, resend: bool = False
) -> FlatMessage:
    """``flatten(compose_invoice_email(doc, pdf, ...))`` without building the message (see module docstring)."""
    parts = email_parts(doc, mail_from=mail_from, to=to, message_id=message_id, resend=resend)
    from_line, from_ascii = _from_line(parts.sender.display_name, parts.sender.username, parts.sender.domain)
    to_line, to_header = _header("To", parts.to, _PLAIN_ADDRESS.fullmatch(parts.to) is not None)
    id_line, id_header = _header(
        "Message-ID", parts.message_id, _PLAIN_MESSAGE_ID.fullmatch(parts.message_id) is not None
    )
    number_line, number_header = _header(
        "X-Invoice-Number", parts.number, _PLAIN_TEXT.fullmatch(parts.number) is not None
    )
    disposition, _ = _header("Content-Disposition", f'attachment; filename="{parts.filename}"', True)
    alternative, mixed = parts.alternative_boundary, parts.mixed_boundary
    head = (
        f"{from_line}{to_line}{folded_header('Subject', parts.subject).fold(policy=_SMTP)}"
        f"Date: {format_datetime(doc.issued_at)}\r\n{id_line}{number_line}"
        "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n'
        f"--{mixed}\r\n"
        f'Content-Type: multipart/alternative; boundary="{alternative}"\r\n\r\n'
        f"--{alternative}\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        f"{_crlf(parts.text)}\r\n--{alternative}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        f"{_crlf(parts.html)}\r\n--{alternative}--\r\n"
        f"\r\n--{mixed}\r\n"
        f"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n{disposition}\r\n"
    )
    # As the generator writes every str (fold_binary, write): ASCII, lone surrogates back as bytes.
    data = b"".join(
        (
            head.encode("ascii", "surrogateescape"),
            base64.encodebytes(pdf).replace(b"\n", b"\r\n"),
            f"\r\n--{mixed}--\r\n".encode("ascii"),
        )
    )
    return FlatMessage(
        data=data,
        message_id=parts.message_id if id_header is None else str(id_header),
        invoice_number=parts.number if number_header is None else str(number_header),
        # A plain To value is ASCII; a parsed one is judged as needs_downgrade judges it.
        ascii_addresses=from_ascii and (to_header is None or addresses_are_ascii(to_header)),
    )


# One sender and a handful of sellers per service: their encoded, folded From is worth keeping.
@functools.lru_cache(maxsize=256)
def _from_line(display_name: str, username: str, domain: str) -> tuple[str, bool]:
    """The ``From`` line (``headers.address_header`` folded by the policy) and whether its address is ASCII."""
    header = address_header("From", Address(display_name=display_name, username=username, domain=domain))
    return header.fold(policy=_SMTP), addresses_are_ascii(header)


def _header(name: str, value: str, plain: bool) -> tuple[str, BaseHeader | None]:
    """The ``name`` header line for ``value`` as the SMTP policy folds it, CRLF included.

    ``plain``: the value is of a shape the policy's parser reads back as the same text,
    with nothing to encode; such a value on one line of at most 78 characters is written
    as it is (``None`` for the header). Any other is parsed and folded by the stdlib, and
    the parsed header returned, for the text a reader of the message gets.
    """
    # ``=?`` may start an encoded-word, which the parser decodes (in an address too).
    if plain and len(name) + 2 + len(value) <= _MAX_LINE and "=?" not in value:
        return f"{name}: {value}\r\n", None
    header: BaseHeader = POLICY.header_factory(name, value)
    folded: str = header.fold(policy=_SMTP)
    return folded, header


def _crlf(body: str) -> str:
    """``body`` with its line ends as the generator writes them (``_write_lines``): CRLF."""
    return _LINE_END.sub("\r\n", body)
