"""How an e-mail leaves: over SMTP (aiosmtplib) or, with no SMTP server configured, into an outbox folder.

Both transports implement ``Transport``: ``send(message, sender, recipients)`` hands
one message over with an explicit envelope (so BCC recipients live in the envelope
only) and ``close()`` releases the connection. The message is an ``EmailMessage`` or a
``FlatMessage`` (composed in another process): when no address needs SMTPUTF8, a flat
message goes out as its bytes, exactly what the ``EmailMessage`` it was made from would
give; otherwise it is parsed back first, and its header bytes may differ from that
(the outbox composes such messages in-process). ``send`` either returns — the
server accepted the message for at least one recipient — or raises one of:

* ``TransientDeliveryError``: try again later (4xx replies, connection refused or
  reset, timeouts, the server hanging up);
* ``PermanentDeliveryError``: retrying the same message will not help (5xx
  replies, an untrusted TLS certificate, an address the client cannot encode).

International addresses (``invoicing.delivery.addresses``): when the server does not
announce SMTPUTF8, domains are sent as IDNA A-labels (``xn--…``) in the envelope and
the address headers; an address whose local part is not ASCII cannot be sent then:
as the To (or sender) address it fails the delivery permanently, naming the address,
as a BCC recipient it is left out with a warning. With SMTPUTF8 the message goes as is.

Both carry the server's ``code`` (None when there was no reply) and ``text``;
``reply`` is the ``"550 mailbox unavailable"`` form stored on the delivery.
"""

from __future__ import annotations

import asyncio
import copy
import email.policy
import hashlib
import json
import logging
import os
import re
import ssl
import tempfile
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from invoicing.delivery.addresses import NeedsSmtpUtf8, downgrade, needs_downgrade
from invoicing.delivery.mail import FlatMessage
from invoicing.errors import InvoiceBotError

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class DeliveryError(InvoiceBotError):
    """The message was not accepted; ``code`` is the SMTP reply code if the server answered."""

    def __init__(self, text: str, code: int | None = None) -> None:
        self.code = code
        self.text = text
        super().__init__(f"The invoice e-mail was not delivered: {self.reply}")

    @property
    def reply(self) -> str:
        """``"421 try later"`` — code and server text, or just the text without a reply."""
        return f"{self.code} {self.text}" if self.code is not None else self.text


class TransientDeliveryError(DeliveryError):
    """Worth retrying later: the server or the network is temporarily unavailable."""


class PermanentDeliveryError(DeliveryError):
    """Not worth retrying: the server rejected this message (5xx) or the setup cannot work."""


#: What a transport sends: a message object, or the same message already flattened.
Outgoing = EmailMessage | FlatMessage


class Transport(Protocol):
    """Hands messages over; ``recipients`` is the whole envelope (To and BCC), ``sender`` the MAIL FROM."""

    async def send(self, message: Outgoing, sender: str, recipients: list[str]) -> None: ...

    async def close(self) -> None: ...


class SmtpTransport:
    """One lazily opened, reused SMTP connection; sends are serialised on it.

    The connection opens on the first ``send`` and stays open across sends and
    worker ticks. If it was dropped while idle (servers hang up after a few minutes)
    the send is retried once on a fresh connection; a failure on a fresh connection
    is reported as a ``TransientDeliveryError``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str = "",
        password: str | None = None,
        security: Security = "starttls",
        timeout: float = 60.0,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._smtp = aiosmtplib.SMTP(
            hostname=host,
            port=port,
            username=username or None,
            password=password if username else None,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            timeout=timeout,
            tls_context=tls_context,
            local_hostname=local_hostname,
        )
        self._lock = asyncio.Lock()
        #: How many times a connection was opened (reuse is visible in tests and metrics).
        self.connections_opened = 0

    def __repr__(self) -> str:  # never the password
        return f"SmtpTransport(host={self._host!r}, port={self._port})"

    async def send(self, message: Outgoing, sender: str, recipients: list[str]) -> None:
        async with self._lock:
            reused = self._smtp.is_connected
            try:
                await self._send_once(message, sender, recipients)
                return
            except asyncio.CancelledError:
                self._smtp.close()  # cancelled mid-command: the session state is unknown, start afresh
                raise
            except aiosmtplib.SMTPServerDisconnected as exc:
                self._smtp.close()
                if not reused:
                    raise TransientDeliveryError(f"mail server closed the connection ({exc.message})") from exc
            # At worst the server had the whole message when it hung up: a duplicate with
            # the same Message-ID, which at-least-once delivery accepts (see invoicing.delivery.outbox).
            log.info("smtp connection dropped while idle; reconnecting host=%s port=%d", self._host, self._port)
            try:
                await self._send_once(message, sender, recipients)
            except aiosmtplib.SMTPServerDisconnected as exc:
                self._smtp.close()
                raise TransientDeliveryError(f"mail server closed the connection ({exc.message})") from exc

    async def close(self) -> None:
        async with self._lock:
            if not self._smtp.is_connected:
                return
            try:
                await self._smtp.quit()
            except (aiosmtplib.SMTPException, OSError) as exc:
                # QUIT is a courtesy; the socket is closed either way.
                log.info("smtp quit failed host=%s error=%s", self._host, type(exc).__name__)
                self._smtp.close()

    async def _send_once(self, message: Outgoing, sender: str, recipients: list[str]) -> None:
        """One attempt; ``SMTPServerDisconnected`` is left to the caller, everything else is classified."""
        try:
            if not self._smtp.is_connected:
                await self._smtp.connect()
                self.connections_opened += 1
                log.info("smtp connected host=%s port=%d", self._host, self._port)
            if isinstance(message, FlatMessage) and _plain_ascii(message, sender, recipients):
                refused, _ = await self._send_flat(message, sender, recipients)
            else:
                if isinstance(message, FlatMessage):
                    message = message.parsed()
                if needs_downgrade(message, sender, recipients):
                    message, sender, recipients = await self._for_this_server(message, sender, recipients)
                refused, _ = await self._smtp.send_message(message, sender=sender, recipients=recipients)
        except aiosmtplib.SMTPServerDisconnected:
            raise
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            if not isinstance(exc, aiosmtplib.SMTPResponseException) or exc.code == 421:
                self._smtp.close()  # 421 closes the channel (RFC 5321 §3.8); start clean next time
            raise classify(exc) from exc
        if refused:
            # Accepted for some recipients: the invoice went out, so this is not a failure
            # of the delivery; the refused BCC copies are worth a warning for ops.
            log.warning(
                "smtp recipients refused message_id=%s refused=%s",
                _message_id(message), ", ".join(f"{rcpt}={r.code}" for rcpt, r in refused.items()),
            )

    async def _send_flat(
        self, message: FlatMessage, sender: str, recipients: list[str]
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        """``send_message`` of the message ``message`` was flattened from, without flattening it again.

        Same MAIL FROM options too: ``BODY=8BITMIME`` when the server offers it (the message is
        7-bit either way; ``send_message`` declares it, so this does as well).
        """
        await self._ehlo_if_needed()
        options = ["BODY=8BITMIME"] if self._smtp.supports_extension("8BITMIME") else []
        return await self._smtp.sendmail(sender, recipients, message.data, mail_options=options)

    async def _ehlo_if_needed(self) -> None:
        if self._smtp.is_ehlo_or_helo_needed:
            try:
                await self._smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await self._smtp.helo()  # no ESMTP at all: no extensions either

    async def _for_this_server(
        self, message: EmailMessage, sender: str, recipients: list[str]
    ) -> tuple[EmailMessage, str, list[str]]:
        """The message as this server can take it: unchanged with SMTPUTF8, else with ASCII addresses."""
        await self._ehlo_if_needed()
        if self._smtp.supports_extension("smtputf8"):
            return message, sender, recipients
        try:
            ascii_only = downgrade(message, sender, recipients)
        except NeedsSmtpUtf8 as exc:
            raise PermanentDeliveryError(
                f"the mail server does not support SMTPUTF8, and {exc.address!r} cannot be sent without it "
                f"({exc.reason}); use an ASCII address or a mail server that supports SMTPUTF8"
            ) from None
        if ascii_only.dropped:
            log.warning("smtp recipients left out: they need SMTPUTF8, which the server lacks "
                        "message_id=%s left_out=%s", message["Message-ID"], ", ".join(ascii_only.dropped))
        return ascii_only.message, ascii_only.sender, ascii_only.recipients


def _plain_ascii(message: FlatMessage, sender: str, recipients: list[str]) -> bool:
    """Whether no address of the message or the envelope needs SMTPUTF8 or a downgrade (the usual case)."""
    return message.ascii_addresses and sender.isascii() and all(r.isascii() for r in recipients)


def _message_id(message: Outgoing) -> str:
    return message.message_id if isinstance(message, FlatMessage) else str(message["Message-ID"])


def classify(exc: Exception) -> DeliveryError:
    """Map an aiosmtplib/socket error to a transient or permanent delivery error (see module docstring)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return _all_recipients_refused(exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # 4xx is temporary by definition; a 2xx/3xx where an error was raised means the
        # session got confused, which a fresh attempt fixes; 5xx is final.
        kind = TransientDeliveryError if exc.code < 500 else PermanentDeliveryError
        return kind(exc.message, exc.code)
    if isinstance(exc, ssl.SSLCertVerificationError) or isinstance(exc.__cause__, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"TLS certificate of the mail server is not trusted ({exc})")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentDeliveryError(f"mail server does not support what is required: {exc.message}")
    if isinstance(exc, ValueError):
        return PermanentDeliveryError(f"address cannot be sent over SMTP: {exc}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientDeliveryError(f"timed out talking to the mail server ({exc})")
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        return TransientDeliveryError(f"cannot reach the mail server ({exc})")
    raise TypeError(f"not a delivery error: {type(exc).__name__}")


def _all_recipients_refused(refusals: Sequence[aiosmtplib.SMTPRecipientRefused]) -> DeliveryError:
    """Transient only if every refusal was temporary; otherwise the first permanent one is reported."""
    permanent = [r for r in refusals if not 400 <= r.code < 500]
    worst = permanent[0] if permanent else refusals[0]
    kind = PermanentDeliveryError if permanent else TransientDeliveryError
    return kind(f"{worst.message} (recipient {worst.recipient})", worst.code)


class FileTransport:
    """Writes each message to ``<outbox>/<number>-<hash of Message-ID>.eml`` (the embedded default).

    The envelope (sender and all recipients, BCC included) goes to a sidecar
    ``<same name>.envelope.json`` written first, so a complete ``.eml`` always has
    its envelope and the ``.eml`` itself never names BCC recipients. Files are
    written to a temporary name and renamed, so a reader never sees half a file; the
    name depends only on the Message-ID, so re-sending a message after a crash
    overwrites its file instead of duplicating it.
    """

    def __init__(self, outbox_dir: Path) -> None:
        self._dir = Path(outbox_dir)

    def __repr__(self) -> str:
        return f"FileTransport(outbox_dir={str(self._dir)!r})"

    async def send(self, message: Outgoing, sender: str, recipients: list[str]) -> None:
        try:
            path = await asyncio.to_thread(self._write, message, sender, recipients)
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write to the outbox folder {self._dir} ({exc})") from exc
        log.info("message written to outbox path=%s recipients=%d", path, len(recipients))

    async def close(self) -> None:
        return None

    def path_for(self, message: Outgoing) -> Path:
        """Where ``message`` is (or will be) written; always inside the outbox folder."""
        if isinstance(message, FlatMessage):
            number_header, message_id = message.invoice_number, message.message_id
        else:
            number_header, message_id = str(message.get("X-Invoice-Number", "")), str(message.get("Message-ID", ""))
        number = _UNSAFE_NAME.sub("_", number_header).strip("_")[:40] or "message"
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:16]
        return self._dir / f"{number}-{digest}.eml"

    def _write(self, message: Outgoing, sender: str, recipients: list[str]) -> Path:
        if isinstance(message, FlatMessage):
            if _plain_ascii(message, sender, recipients):  # what the branch below would write for it
                return self._store(self.path_for(message), message.data, sender, recipients)
            message = message.parsed()
        if "Bcc" in message or "Resent-Bcc" in message:
            # As aiosmtplib does on the wire: BCC belongs to the envelope only.
            message = copy.deepcopy(message)
            del message["Bcc"], message["Resent-Bcc"]
        # An international address would be mangled into an encoded word by the SMTP policy;
        # such a file is written as an RFC 6532 (UTF-8 header) message instead.
        utf8 = needs_downgrade(message, sender, recipients)
        data = message.as_bytes(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
        return self._store(self.path_for(message), data, sender, recipients)

    def _store(self, path: Path, data: bytes, sender: str, recipients: list[str]) -> Path:
        self._dir.mkdir(parents=True, exist_ok=True)
        envelope = json.dumps({"mail_from": sender, "rcpt_to": recipients}, indent=2).encode()
        _atomic_write(path.with_name(path.stem + ".envelope.json"), envelope)
        _atomic_write(path, data)
        return path


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
