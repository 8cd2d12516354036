"""A real local SMTP server (aiosmtpd) that records what it received and can be scripted."""

from __future__ import annotations

import email
import email.policy
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    #: MAIL FROM parameters the client gave (``SMTPUTF8``, ``BODY=8BITMIME``, ``SIZE=…``).
    mail_options: tuple[str, ...] = ()

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    """Accepts every message, unless scripted: ``script`` replies to the next DATA commands, ``always`` to all."""

    received: list[Received] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    always: str | None = None
    data_commands: int = 0
    hang_up_on_next_mail: bool = False

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self.hang_up_on_next_mail:  # as a server does with a connection it considers idle
            self.hang_up_on_next_mail = False
            server.transport.close()
            return "421 4.4.2 idle too long"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.data_commands += 1
        if self.always:
            return self.always
        if self.script:
            return self.script.pop(0)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                      session.ssl is not None, tuple(envelope.mail_options)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, *, smtputf8: bool = True, **smtp_kwargs) -> tuple[Controller, RecordingHandler]:
    """Start a server on ``port``; ``smtputf8=False`` is a server that does not announce SMTPUTF8
    (and refuses non-ASCII addresses, as such servers do)."""
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost",
                            enable_SMTPUTF8=smtputf8, **smtp_kwargs)
    controller.start()
    return controller, handler
