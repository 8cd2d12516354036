"""The invoice e-mail: one pure function from an ``InvoiceDocument`` and its PDF to a message.

What a caller may rely on:

* **Deterministic**: the same document, PDF, sender, recipient and Message-ID give
  the same bytes (``Date`` is the invoice's ``issued_at``, MIME boundaries derive
  from the Message-ID), so a retry re-sends exactly what was tried before.
* **To** is the buyer's accounting address; there is **never a Bcc header** — BCC
  recipients exist only in the SMTP envelope (``envelope_recipients``).
* **No header injection**: every value placed in a header has its control
  characters and line breaks replaced by spaces, and the ``SMTP`` policy refuses
  any that slip through.
* **RFC 2047 holds** for any seller or buyer name: ``Subject`` and ``From`` are encoded
  and folded by ``invoicing.delivery.headers`` (encoded-words ≤ 75 characters, never
  empty, lines ≤ 76, every space kept), so strict parsers read back the exact text.
* A **credit note** (``doc.kind == "credit_note"``) gets its own subject and text
  ("Credit note CN-000001 for invoice 000042 …"), with its reason and the amount credited.
* Dates are printed in the document's time zone; the invoice period is
  ``InvoiceDocument.period()`` — the same days the PDF prints — whose last day is the
  day before a midnight cutoff ("01 Nov–07 Nov 2026" for a Sunday-to-Sunday weekly run).
* Money is formatted with babel for ``LOCALE`` in the invoice currency.
* ``flatten`` gives the message as the bytes SMTP carries (``FlatMessage``), for a composer
  that runs in another process: bytes cross a process boundary cheaply, a message object not.
  ``mail_bytes.flat_invoice_email`` gives the same ``FlatMessage`` without building the message.
"""

from __future__ import annotations

import base64
import binascii
import email
import functools
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import date
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.addresses import NeedsSmtpUtf8, ascii_domain, needs_downgrade
from invoicing.delivery.headers import address_header, folded_header
from invoicing.errors import InvalidInput
from invoicing.validation import has_control_characters, without_control_characters

#: Locale of every e-mail text (dates, money); the product UI is British English.
LOCALE = "en_GB"
# Parsed once: babel parses a locale given as a string again on every call.
_LOCALE = Locale.parse(LOCALE)

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new class for every header it parses; reusing them
    makes composing noticeably cheaper (it matters at hundreds of invoices a run)."""

    @functools.lru_cache(maxsize=128)  # noqa: B019 - one module-level instance, never freed anyway
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


#: ``SMTP`` policy (CRLF, refuses CR/LF in header values) with the caching registry.
POLICY = policy.SMTP.clone(header_factory=_CachingHeaderRegistry())


def _header(name: str, value: str) -> BaseHeader:
    """A parsed header to reuse: the policy stores an already-parsed header as is."""
    header: BaseHeader = POLICY.header_factory(name, value)
    return header


# The same in every message; parsed once instead of for every invoice.
_MIME_VERSION = _header("MIME-Version", "1.0")
# RFC 3834: keeps vacation responders from answering an automated invoice.
_AUTO_SUBMITTED = _header("Auto-Submitted", "auto-generated")
_TEXT_PLAIN = _header("Content-Type", 'text/plain; charset="utf-8"')
_TEXT_HTML = _header("Content-Type", 'text/html; charset="utf-8"')
_APPLICATION_PDF = _header("Content-Type", "application/pdf")
_QUOTED_PRINTABLE = _header("Content-Transfer-Encoding", "quoted-printable")
_BASE64 = _header("Content-Transfer-Encoding", "base64")


@dataclass(frozen=True)
class _Facts:
    """The values printed in subject and bodies, already formatted."""

    number: str
    seller: str
    buyer: str
    period: str
    total: str
    due: str
    orders: str
    order_count: str
    filename: str
    #: Credit notes only: the invoice credited, its date, and why.
    original: str = ""
    original_date: str = ""
    reason: str = ""

    @property
    def credit(self) -> bool:
        return bool(self.original)


def compose_invoice_email(
    doc: InvoiceDocument, pdf: bytes, *, mail_from: str, to: str, message_id: str, resend: bool = False
) -> EmailMessage:
    """Build the e-mail carrying invoice ``doc`` with ``pdf`` attached as ``<number>.pdf``.

    ``mail_from`` is an address, optionally with a display name (``Inkwell <inv@x>``);
    without one the seller's legal name is shown. ``resend`` marks the e-mail as a
    copy of an invoice sent before (subject and first paragraph say so).

    Structure: ``multipart/mixed`` [``multipart/alternative`` [text, HTML], PDF].
    ``invoicing.delivery.mail_bytes.flat_invoice_email`` writes the same message straight to bytes.
    """
    parts = email_parts(doc, mail_from=mail_from, to=to, message_id=message_id, resend=resend)
    message = EmailMessage(policy=POLICY)
    message["From"] = address_header("From", parts.sender)
    message["To"] = parts.to
    message["Subject"] = folded_header("Subject", parts.subject)
    message["Date"] = doc.issued_at
    message["Message-ID"] = parts.message_id
    # Lets mailbox rules and the .eml outbox find the invoice without parsing the subject.
    message["X-Invoice-Number"] = parts.number
    message["Auto-Submitted"] = _AUTO_SUBMITTED
    message["MIME-Version"] = _MIME_VERSION
    bodies = _multipart(
        "alternative", parts.alternative_boundary,
        _leaf(_TEXT_PLAIN, _QUOTED_PRINTABLE, parts.text),
        _leaf(_TEXT_HTML, _QUOTED_PRINTABLE, parts.html),
    )
    attachment = _leaf(_APPLICATION_PDF, _BASE64, base64.encodebytes(pdf).decode("ascii"))
    attachment["Content-Disposition"] = f'attachment; filename="{parts.filename}"'
    message["Content-Type"] = f'multipart/mixed; boundary="{parts.mixed_boundary}"'
    message.set_payload([bodies, attachment])
    return message


@dataclass(frozen=True)
class EmailParts:
    """What goes into the invoice e-mail besides the PDF, as both of its writers place it.

    ``compose_invoice_email`` and ``mail_bytes.flat_invoice_email`` take every value from
    here, so they cannot disagree on content. Header values are one line without control
    characters (not yet folded or encoded); ``text`` and ``html`` are the bodies already in
    UTF-8 quoted-printable, with ``\\n`` line ends.
    """

    sender: Address
    to: str
    subject: str
    message_id: str
    #: The ``X-Invoice-Number`` header value.
    number: str
    text: str
    html: str
    filename: str
    alternative_boundary: str
    mixed_boundary: str


def email_parts(doc: InvoiceDocument, *, mail_from: str, to: str, message_id: str, resend: bool) -> EmailParts:
    """The content of ``doc``'s e-mail (arguments as for ``compose_invoice_email``)."""
    facts = _facts(doc)
    alternative, mixed = _stable_boundaries(message_id)
    text = (_credit_text if facts.credit else _text_body)(facts, resend=resend)
    html_body = (_credit_html if facts.credit else _html_body)(facts, resend=resend)
    return EmailParts(
        sender=_from_header(mail_from, facts.seller),
        to=_one_line(to),
        subject=_subject(facts, resend=resend),
        message_id=_one_line(message_id),
        number=facts.number,
        text=_quoted_printable(text),
        html=_quoted_printable(html_body),
        filename=facts.filename,
        alternative_boundary=alternative,
        mixed_boundary=mixed,
    )


@dataclass(frozen=True)
class FlatMessage:
    """A composed e-mail as bytes: ``message.as_bytes(policy=email.policy.SMTP)`` of the message ``flatten`` got.

    Those are exactly the bytes ``aiosmtplib``'s ``send_message`` transmits and the ``.eml``
    outbox writes for that message when no address in it or in the envelope needs SMTPUTF8
    (``ascii_addresses`` says whether its header addresses are plain ASCII). It never carries a
    ``Bcc`` header. ``message_id`` and ``invoice_number`` are the ``Message-ID`` and
    ``X-Invoice-Number`` header values, for logs and file names.
    """

    data: bytes
    message_id: str
    invoice_number: str
    ascii_addresses: bool

    def parsed(self) -> EmailMessage:
        """The message read back from ``data`` (for the rare path that must change its headers)."""
        message = email.message_from_bytes(self.data, policy=POLICY)
        assert isinstance(message, EmailMessage)  # the policy's message factory
        return message


def flatten(message: EmailMessage) -> FlatMessage:
    """``message`` (as ``compose_invoice_email`` makes it: no ``Bcc``) as a ``FlatMessage``."""
    if "Bcc" in message or "Resent-Bcc" in message:
        raise ValueError("a message to flatten must not name BCC recipients in its headers")
    return FlatMessage(
        data=message.as_bytes(policy=policy.SMTP),
        message_id=str(message.get("Message-ID", "")),
        invoice_number=str(message.get("X-Invoice-Number", "")),
        ascii_addresses=not needs_downgrade(message, "", []),
    )


def message_id_for(tenant_id: int, number: int, domain: str, resend: int = 0) -> str:
    """Stable Message-ID of an invoice e-mail (a resend gets its own, numbered)."""
    suffix = f".r{resend}" if resend else ""
    return f"<invoice.{tenant_id}.{number}{suffix}@{domain}>"


def credit_message_id_for(tenant_id: int, number: int, domain: str, resend: int = 0) -> str:
    """Stable Message-ID of a credit note's e-mail (its own namespace: numbers repeat across sequences)."""
    suffix = f".r{resend}" if resend else ""
    return f"<credit-note.{tenant_id}.{number}{suffix}@{domain}>"


def envelope_recipients(to: str, bcc: list[str]) -> list[str]:
    """SMTP RCPT TO list: ``to`` first, then BCC; an address listed twice gets one copy (case-insensitive)."""
    recipients: list[str] = []
    seen: set[str] = set()
    for address in (to, *bcc):
        key = address.strip().casefold()
        if key and key not in seen:
            seen.add(key)
            recipients.append(address.strip())
    return recipients


def mail_domain(mail_from: str) -> str:
    """The domain of ``MAIL_FROM`` (``invoices@inkwell.example`` → ``inkwell.example``), for Message-IDs.

    Always ASCII: an international domain comes back as its IDNA A-label
    (``bücher.example`` → ``xn--bcher-kva.example``), since a Message-ID must be ASCII.
    """
    _, address = parseaddr(mail_from)
    local, at, domain = address.rpartition("@")
    refusal = (f"{mail_from!r} is not an e-mail address; set MAIL_FROM to one, "
               "e.g. invoices@yourcompany.example")
    if not (local and at and domain) or has_control_characters(mail_from):
        raise InvalidInput("mail_from", refusal)
    try:
        return ascii_domain(domain).lower()
    except NeedsSmtpUtf8 as exc:
        raise InvalidInput("mail_from", f"{refusal} ({exc})") from None


def envelope_sender(mail_from: str) -> str:
    """The bare address of ``MAIL_FROM`` for SMTP ``MAIL FROM`` (display name dropped)."""
    _, address = parseaddr(mail_from)
    mail_domain(address)  # validates
    return address


def attachment_filename(number: str) -> str:
    """``<number>.pdf`` with anything but letters, digits, ``.``, ``_`` and ``-`` replaced (no paths, no quotes)."""
    safe = _UNSAFE_FILENAME.sub("-", number).strip(".-") or "invoice"
    return f"{safe}.pdf"


def period_text(doc: InvoiceDocument) -> str:
    """``doc.period()`` as the e-mail states it: ``01 Nov–07 Nov 2026``, ``07 Nov 2026`` (one day),
    ``up to 07 Nov 2026`` (no known start)."""
    period = doc.period()
    first, last = period.first, period.last
    if first is None:
        return f"up to {_day(last)}"
    if first == last:
        return _day(first)
    if first.year == last.year:
        return f"{format_date(first, 'dd MMM', locale=_LOCALE)}–{_day(last)}"
    return f"{_day(first)}–{_day(last)}"


def _facts(doc: InvoiceDocument) -> _Facts:
    count = doc.order_count
    return _Facts(
        number=_one_line(doc.number),
        seller=_one_line(doc.seller.legal_name or doc.tenant_name),
        buyer=_one_line(doc.buyer.legal_name),
        period=period_text(doc),
        total=format_currency(doc.gross_total, doc.currency, locale=_LOCALE),
        due=_day(doc.due_date()),
        orders=f"{count} order{'s' if count != 1 else ''}",
        order_count=str(count),
        filename=attachment_filename(doc.number),
        original=_one_line(doc.original_number) if doc.kind == "credit_note" else "",
        original_date=_day(doc.original_issued_at.astimezone(ZoneInfo(doc.timezone)).date())
        if doc.kind == "credit_note" and doc.original_issued_at is not None else "",
        reason=_one_line(doc.reason),
    )


def _subject(facts: _Facts, *, resend: bool = False) -> str:
    copy = " (copy)" if resend else ""
    if facts.credit:
        return _one_line(f"Credit note {facts.number}{copy} for invoice {facts.original} from {facts.seller} — "
                         f"{facts.total} credited")
    return _one_line(f"Invoice {facts.number}{copy} from {facts.seller} — {facts.period} — {facts.total}")


def _text_body(facts: _Facts, *, resend: bool) -> str:
    copy = (
        f"This is a copy of invoice {facts.number}, sent again on request. If you have already "
        "received it, no action is needed: it is the same invoice, not a new one.\n\n"
        if resend else ""
    )
    return (
        f"Hello {facts.buyer},\n\n"
        f"{copy}"
        f"Please find attached invoice {facts.number} from {facts.seller} for the {facts.orders} dispatched "
        f"{facts.period}.\n\n"
        f"Invoice number: {facts.number}\n"
        f"Period:         {facts.period}\n"
        f"Orders:         {facts.order_count}\n"
        f"Total due:      {facts.total}\n"
        f"Due date:       {facts.due}\n\n"
        f"The invoice is attached as {facts.filename}.\n\n"
        f"{facts.seller}\n"
    )


def _html_body(facts: _Facts, *, resend: bool) -> str:
    e = {name: html.escape(value) for name, value in vars(facts).items()}
    copy = (
        f"<p><strong>This is a copy of invoice {e['number']}</strong>, sent again on request. If you have "
        "already received it, no action is needed: it is the same invoice, not a new one.</p>\n"
        if resend else ""
    )
    rows = "".join(
        f"<tr><th align=\"left\">{label}</th><td>{value}</td></tr>\n"
        for label, value in (
            ("Invoice number", e["number"]), ("Period", e["period"]), ("Orders", e["order_count"]),
            ("Total due", e["total"]), ("Due date", e["due"]),
        )
    )
    return (
        "<!DOCTYPE html>\n<html><body>\n"
        f"<p>Hello {e['buyer']},</p>\n{copy}"
        f"<p>Please find attached invoice {e['number']} from {e['seller']} for the {e['orders']} dispatched "
        f"{e['period']}.</p>\n"
        f"<table>\n{rows}</table>\n"
        f"<p>The invoice is attached as {e['filename']}.</p>\n"
        f"<p>{e['seller']}</p>\n</body></html>\n"
    )


def _credit_text(facts: _Facts, *, resend: bool) -> str:
    copy = f"This is a copy of credit note {facts.number}, sent again on request.\n\n" if resend else ""
    return (
        f"Hello {facts.buyer},\n\n"
        f"{copy}"
        f"Please find attached credit note {facts.number} from {facts.seller}. It credits invoice "
        f"{facts.original} of {facts.original_date}; nothing needs to be paid for the amount credited.\n\n"
        f"Credit note number: {facts.number}\n"
        f"Credits invoice:    {facts.original} ({facts.original_date})\n"
        f"Amount credited:    {facts.total}\n"
        f"Reason:             {facts.reason}\n\n"
        f"The credit note is attached as {facts.filename}.\n\n"
        f"{facts.seller}\n"
    )


def _credit_html(facts: _Facts, *, resend: bool) -> str:
    e = {name: html.escape(value) for name, value in vars(facts).items() if isinstance(value, str)}
    copy = f"<p><strong>This is a copy of credit note {e['number']}</strong>, sent again on request.</p>\n" \
        if resend else ""
    rows = "".join(
        f"<tr><th align=\"left\">{label}</th><td>{value}</td></tr>\n"
        for label, value in (
            ("Credit note number", e["number"]), ("Credits invoice", f"{e['original']} ({e['original_date']})"),
            ("Amount credited", e["total"]), ("Reason", e["reason"]),
        )
    )
    return (
        "<!DOCTYPE html>\n<html><body>\n"
        f"<p>Hello {e['buyer']},</p>\n{copy}"
        f"<p>Please find attached credit note {e['number']} from {e['seller']}. It credits invoice "
        f"{e['original']} of {e['original_date']}; nothing needs to be paid for the amount credited.</p>\n"
        f"<table>\n{rows}</table>\n"
        f"<p>The credit note is attached as {e['filename']}.</p>\n"
        f"<p>{e['seller']}</p>\n</body></html>\n"
    )


def _from_header(mail_from: str, seller: str) -> Address:
    name, address = parseaddr(_one_line(mail_from))
    local, _, domain = address.rpartition("@")
    return Address(display_name=_one_line(name or seller), username=local, domain=domain)


def _one_line(value: str) -> str:
    """``value`` with control characters and line/paragraph separators replaced by spaces (header-safe)."""
    return " ".join(without_control_characters(value).split())


def _leaf(content_type: BaseHeader, encoding: BaseHeader, payload: str) -> EmailMessage:
    part = EmailMessage(policy=POLICY)
    part["Content-Type"] = content_type
    part["Content-Transfer-Encoding"] = encoding
    part.set_payload(payload)
    return part


def _multipart(subtype: str, boundary: str, *parts: EmailMessage) -> EmailMessage:
    container = EmailMessage(policy=POLICY)
    container["Content-Type"] = f'multipart/{subtype}; boundary="{boundary}"'
    container.set_payload(list(parts))
    return container


def _quoted_printable(text: str) -> str:
    """UTF-8 quoted-printable, so the message is 7-bit clean for any server."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")


def _stable_boundaries(message_id: str) -> tuple[str, str]:
    """MIME boundaries derived from the Message-ID instead of random ones (same input → same bytes).

    ``=_`` cannot occur in base64 or quoted-printable output, so no body can contain a boundary.
    """
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    return f"=_{digest}.alt", f"=_{digest}.mixed"


def _day(value: date) -> str:
    return format_date(value, "dd MMM yyyy", locale=_LOCALE)
