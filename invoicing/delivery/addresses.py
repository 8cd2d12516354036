"""E-mail addresses for a mail server without SMTPUTF8: international domains as IDNA A-labels.

An address has two halves with different rules (RFC 5321/6531):

* the **domain** may be international (``bücher.example``); its A-label form
  (``xn--bcher-kva.example``, IDNA 2008 with the UTS #46 mapping — the ``idna``
  package) is plain ASCII and names the same mailbox host, so it can always be sent,
  with or without SMTPUTF8;
* the **local part** (before the ``@``) has no ASCII form: a non-ASCII one can only
  travel through servers that announce SMTPUTF8. New addresses like that are refused
  at input (``invoicing.parties.accounting.normalise_email``); one stored earlier is
  sent when the server has SMTPUTF8 and otherwise fails with ``NeedsSmtpUtf8``.

``downgrade`` applies this to a whole message: the envelope (MAIL FROM, every RCPT TO)
and the address headers (From, To, Cc, Reply-To, Sender) get A-label domains. A BCC
recipient that cannot be written in ASCII is dropped (and named in ``dropped``), as a
server refusing one BCC recipient would; a header address or the sender that cannot
be fails the whole message, since the invoice would not reach its buyer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from email.headerregistry import Address, AddressHeader
from email.message import EmailMessage

import idna

#: Headers holding addresses the server or the reader's client has to parse.
ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To", "Sender")


class NeedsSmtpUtf8(ValueError):
    """``address`` cannot be written in ASCII (non-ASCII local part, or a domain that is not valid IDNA)."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"{address!r} {reason}")


@dataclass(frozen=True)
class Downgraded:
    """A message and envelope in ASCII; ``dropped`` are the envelope recipients left out."""

    message: EmailMessage
    sender: str
    recipients: list[str]
    dropped: list[str]


def ascii_domain(domain: str) -> str:
    """``bücher.example`` → ``xn--bcher-kva.example``; ASCII domains come back unchanged."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise NeedsSmtpUtf8(domain, f"is not a valid international domain name ({exc})") from None


def ascii_address(address: str) -> str:
    """``ap@bücher.example`` → ``ap@xn--bcher-kva.example``; raise ``NeedsSmtpUtf8`` if impossible."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at:
        raise NeedsSmtpUtf8(address, "is not an e-mail address")
    if not local.isascii():
        raise NeedsSmtpUtf8(address, "has non-ASCII characters before the @, which only a mail server "
                                     "with SMTPUTF8 can send")
    try:
        return f"{local}@{ascii_domain(domain)}"
    except NeedsSmtpUtf8 as exc:
        raise NeedsSmtpUtf8(address, exc.reason) from None


def needs_downgrade(message: EmailMessage, sender: str, recipients: list[str]) -> bool:
    """Whether any envelope address or header address is not plain ASCII (the rare case).

    Display names do not count: the SMTP policy writes them as encoded words.
    """
    if not (sender.isascii() and all(r.isascii() for r in recipients)):
        return True
    return any(not addresses_are_ascii(value) for name in ADDRESS_HEADERS for value in message.get_all(name, []))


def addresses_are_ascii(header: object) -> bool:
    """Whether the addresses of one header value are plain ASCII (display names aside, which the
    SMTP policy encodes): the test ``needs_downgrade`` applies to each address header."""
    if str(header).isascii():
        return True
    if not isinstance(header, AddressHeader):
        return False
    return all(a.addr_spec.isascii() for a in header.addresses)


def downgrade(message: EmailMessage, sender: str, recipients: list[str]) -> Downgraded:
    """The message with every address in ASCII (see module docstring); ``message`` is not modified.

    Raises ``NeedsSmtpUtf8`` naming the address when the sender or a header address
    cannot be written in ASCII, or when no recipient can.
    """
    kept: list[str] = []
    refusals: list[NeedsSmtpUtf8] = []
    for recipient in recipients:
        try:
            kept.append(ascii_address(recipient))
        except NeedsSmtpUtf8 as exc:
            refusals.append(exc)
    headers = {name: [_ascii_header(header) for header in message.get_all(name, [])] for name in ADDRESS_HEADERS}
    if not kept:
        raise refusals[0]
    ascii_sender = ascii_address(sender)
    changed = {name: values for name, values in headers.items()
               if values != [str(v) for v in message.get_all(name, [])]}
    result = message
    if changed:
        result = copy.deepcopy(message)
        for name, values in changed.items():
            if len(values) == 1:
                result.replace_header(name, values[0])  # keeps the header where it was
                continue
            del result[name]
            for value in values:
                result[name] = value
    return Downgraded(result, ascii_sender, kept, [exc.address for exc in refusals])


def _ascii_header(header: object) -> str:
    if not isinstance(header, AddressHeader) or addresses_are_ascii(header):
        return str(header)
    return ", ".join(
        str(Address(display_name=a.display_name, addr_spec=ascii_address(a.addr_spec))) for a in header.addresses
    )
