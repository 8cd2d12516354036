"""Why an upload failed, in words a person can act on, and whether retrying can help.

Every failure of ``upload``/``probe`` is an ``UploadError`` with a ``kind``:

* permanent (stop retrying until the settings change; notify at once): ``auth``, ``host_key_unknown``,
  ``host_key_changed``, ``no_directory``, ``permission``;
* transient (retry with backoff): ``unreachable``, ``timeout``, ``protocol`` and ``disk_full``. A full disk is
  transient on purpose: the operator frees space and the next attempt succeeds without anyone touching our
  settings; the message still says at once what is wrong, so the first notification is actionable.

The message names the user, host, port and directory and says what to do. It never contains a password, a
private key or any other secret (only what the server said and public host-key fingerprints).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

import asyncssh

from invoicing.errors import InvoiceBotError

PERMANENT_KINDS = frozenset({"auth", "host_key_unknown", "host_key_changed", "no_directory", "permission"})
KINDS = PERMANENT_KINDS | {"disk_full", "unreachable", "timeout", "protocol"}
_SPACE_WORDS = ("no space", "disk full", "quota", "enospc", "insufficient space")


class UploadError(InvoiceBotError):
    """An upload or probe failed; ``str(error)`` is the explanation for the channel.

    ``offered_key``: for ``host_key_unknown``/``host_key_changed``, the key line the server presented (what an
    admin confirms with a button before it is pinned); None otherwise."""

    def __init__(self, message: str, *, kind: str, permanent: bool | None = None,
                 offered_key: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown upload error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.permanent = kind in PERMANENT_KINDS if permanent is None else permanent
        self.offered_key = offered_key

    def __repr__(self) -> str:
        return f"UploadError(kind={self.kind!r}, permanent={self.permanent}, message={self.message!r})"


@dataclass(frozen=True)
class Where:
    """What the messages name: the account and directory an operation was about."""

    host: str
    port: int
    user: str
    path: str
    with_key: bool = True

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def _said(exc: BaseException) -> str:
    """What the server or OS said, one short line (never our secrets: those are not in these exceptions)."""
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(reason).split())[:200]


def _is_space(exc: BaseException) -> bool:
    return isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded) or any(
        word in _said(exc).lower() for word in _SPACE_WORDS)


def auth_refused(where: Where) -> UploadError:
    if where.with_key:
        return UploadError(
            f"The server {where.server} refused the key for user '{where.user}' (auth). Install the public key "
            f"shown by `/invoicing xml key` in ~/.ssh/authorized_keys of '{where.user}' on host {where.host}, "
            "then run the test again.", kind="auth")
    return UploadError(
        f"The server {where.server} refused the password for user '{where.user}' (auth). Check the user name and "
        "set the password again.", kind="auth")


def no_directory(where: Where, what: str = "does not exist") -> UploadError:
    return UploadError(f"The directory {where.path} {what} on the server {where.host} (no_directory). Create it "
                       "or correct path=.", kind="no_directory")


def permission(where: Where) -> UploadError:
    return UploadError(f"Permission denied writing to {where.path} on {where.host} as '{where.user}' (permission). "
                       f"Give '{where.user}' write access to that directory.", kind="permission")


def disk_full(where: Where) -> UploadError:
    return UploadError(f"The server's disk is full (or the quota of '{where.user}' is used up) while writing to "
                       f"{where.path} on {where.host} (disk_full). Free some space there; the upload is retried.",
                       kind="disk_full")


def timed_out(where: Where, timeout: float, doing: str = "did not answer") -> UploadError:
    return UploadError(f"The server {where.server} {doing}: timed out after {timeout:g} s (timeout); the upload is "
                       "retried.", kind="timeout")


def host_key_unknown(where: Where, offered: str, fingerprint: str) -> UploadError:
    return UploadError(
        f"The host key of {where.server} is not pinned yet, so nothing was sent (host_key_unknown). The server "
        f"offers the key {fingerprint}: confirm this fingerprint with the server's owner, then pin it.",
        kind="host_key_unknown", offered_key=offered)


def host_key_changed(where: Where, offered: str | None, fingerprint: str | None, pinned: str) -> UploadError:
    now = f"it now offers {fingerprint}, " if fingerprint else ""
    return UploadError(
        f"The server {where.server} presented a different host key than the pinned one (host_key_changed): {now}"
        f"pinned is {pinned}. Nothing was sent. If the server was reinstalled, confirm the new fingerprint with "
        "its owner and pin it; otherwise someone may be intercepting the connection.",
        kind="host_key_changed", offered_key=offered)


def classify(exc: BaseException, where: Where, *, timeout: float) -> UploadError:
    """The ``UploadError`` for an asyncssh/OS failure (host-key failures are classified by the caller, which
    knows the offered key)."""
    if isinstance(exc, UploadError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        return auth_refused(where)
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return no_directory(where)
    if isinstance(exc, asyncssh.SFTPNotADirectory):
        return no_directory(where, "is not a directory")
    if isinstance(exc, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
        return permission(where)
    if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection | asyncssh.ConnectionLost):
        return UploadError(f"The connection to {where.server} was lost ({_said(exc)}) (unreachable); the upload is "
                           "retried.", kind="unreachable")
    if isinstance(exc, asyncssh.SFTPError) and _is_space(exc):
        return disk_full(where)
    if isinstance(exc, asyncssh.SFTPError):
        return UploadError(f"The SFTP server {where.server} reported a failure: {_said(exc)} (protocol). A full disk "
                           "or quota often shows like this; the upload is retried.", kind="protocol")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return UploadError(f"The server {where.server} does not offer SFTP to '{where.user}': {_said(exc)} "
                           "(protocol).", kind="protocol")
    if isinstance(exc, asyncssh.Error):
        return UploadError(f"The SSH connection to {where.server} failed: {_said(exc)} (protocol); the upload is "
                           "retried.", kind="protocol")
    if isinstance(exc, TimeoutError):
        return timed_out(where, timeout)
    if isinstance(exc, ConnectionRefusedError):
        return UploadError(f"Could not connect to {where.server} (connection refused) (unreachable): is the SFTP "
                           "server running on that port? The upload is retried.", kind="unreachable")
    if isinstance(exc, socket.gaierror):
        return UploadError(f"Could not connect to {where.server}: the host name was not found ({_said(exc)}) "
                           "(unreachable). Check host=; the upload is retried.", kind="unreachable")
    if isinstance(exc, OSError):
        return UploadError(f"Could not connect to {where.server} ({_said(exc)}) (unreachable); the upload is "
                           "retried.", kind="unreachable")
    raise exc


def classify_local(exc: OSError, directory: str) -> UploadError:
    """The ``UploadError`` for a local-directory failure (same kinds as SFTP)."""
    if exc.errno in {errno.ENOENT, errno.ENOTDIR}:
        return UploadError(f"The directory {directory} does not exist on this machine (no_directory). Create it "
                           "(or mount the share) or correct the destination.", kind="no_directory")
    if exc.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
        return UploadError(f"Permission denied writing to {directory} on this machine (permission). Give the "
                           "service's user write access to that directory.", kind="permission")
    if exc.errno in {errno.ENOSPC, errno.EDQUOT}:
        return UploadError(f"The disk holding {directory} is full (disk_full). Free some space there; the export "
                           "is retried.", kind="disk_full")
    return UploadError(f"Writing to {directory} failed: {_said(exc)} (unreachable); the export is retried.",
                       kind="unreachable")
