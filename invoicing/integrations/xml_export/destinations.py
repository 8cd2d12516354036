"""Deliver one export file to its destination: the API the export run, the upload outbox and `test` use.

* ``upload(target, name, source)`` puts ``source`` under ``name`` in the target directory so that ``name`` only
  ever shows a complete file (``<name>.part`` first, then an atomic rename that replaces an older copy). The
  same call after a crash or a lost answer is harmless: the same bytes end up under the same name, once.
* ``probe(target)`` connects, checks the directory, writes and removes ``.invoicebot-probe-<random>``; it returns
  the steps in words and raises on the first problem.
* ``server_host_key`` / ``fingerprint``: the "learn the host key on test, after an admin confirmed its
  fingerprint" flow. An SFTP target with no pinned key (or another key) is never uploaded to.
* Every failure is an ``UploadError`` with a ``kind``, ``permanent`` and a message to show as it is
  (see ``sftp_errors`` for the kinds and why a full disk counts as transient).

Implementations: ``sftp_upload`` (asyncssh) and ``local_upload`` (a directory or mounted share).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from invoicing.errors import InvalidInput
from invoicing.integrations.xml_export.local_upload import probe_local, upload_local
from invoicing.integrations.xml_export.sftp_errors import KINDS, PERMANENT_KINDS, UploadError
from invoicing.integrations.xml_export.sftp_upload import offered_host_key, probe_sftp, upload_sftp
from invoicing.integrations.xml_export.targets import (
    LocalTarget,
    SftpTarget,
    Target,
    check_file_name,
    fingerprint,
    parse_destination,
)

log = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "PERMANENT_KINDS",
    "LocalTarget",
    "SftpTarget",
    "Target",
    "UploadError",
    "Uploaded",
    "fingerprint",
    "parse_destination",
    "probe",
    "server_host_key",
    "upload",
]


@dataclass(frozen=True)
class Uploaded:
    """Where the file now is (``sftp://host:port/dir/name`` or ``file:///dir/name``) and its size in bytes."""

    location: str
    size: int


async def upload(target: Target, name: str, source: Path, *, timeout: float = 30) -> Uploaded:
    """Deliver ``source`` as ``name``; ``timeout`` (seconds, SFTP only) bounds connecting and each step, and the
    transfer fails when it makes no progress for that long. Raises ``UploadError`` (nothing under ``name`` changed) or
    ``InvalidInput`` for a bad ``name``/unreadable ``source``."""
    check_file_name(name)
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise InvalidInput("source", f"the export file {source} cannot be read ({exc.strerror})") from None
    started = time.monotonic()
    try:
        if isinstance(target, LocalTarget):
            size = await upload_local(target, name, source)
        else:
            await upload_sftp(target, name, source, size, timeout=timeout)
    except UploadError as error:
        log.info("upload failed location=%s kind=%s permanent=%s", target.location(name), error.kind, error.permanent)
        raise
    done = Uploaded(location=target.location(name), size=size)
    log.info("uploaded location=%s bytes=%d seconds=%.2f", done.location, size, time.monotonic() - started)
    return done


async def probe(target: Target, *, timeout: float = 15) -> list[str]:
    """Check that ``upload`` would work now; returns the steps done, in words."""
    if isinstance(target, LocalTarget):
        return await probe_local(target)
    return await probe_sftp(target, timeout=timeout)


async def server_host_key(host: str, port: int, *, timeout: float = 15) -> str:
    """The public key line (``"ssh-ed25519 AAAA…"``) the server presents, learned without authenticating.

    Show ``fingerprint(line)`` to an admin and pin the line only after they confirmed it."""
    return await offered_host_key(host, port, timeout=timeout)
