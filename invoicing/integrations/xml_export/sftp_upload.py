"""SFTP delivery with asyncssh: a pinned host key, key (or password) authentication, temporary name + atomic rename.

What a caller may rely on:

* The connection trusts exactly the pinned host key (``known_hosts`` built from it alone; never "accept any",
  never ``~/.ssh/known_hosts``, ``~/.ssh/config`` or an SSH agent). No pinned key → ``host_key_unknown`` with
  the key the server offers, without authenticating; another key → ``host_key_changed`` with the new key.
* ``upload`` streams the file (pipelined write requests, constant memory) to
  ``<name>.part`` in the target directory, checks the stored size, asks the server to flush it (fsync, when the
  server offers it) and renames it over ``<name>`` with ``posix-rename@openssh.com`` — so the final name only
  ever shows a complete file, and uploading the same name again simply replaces it. A server without
  posix-rename gets remove + rename (a moment without the file, never a partial one).
* ``timeout`` bounds the connection and each step; the transfer itself may take longer, but fails when no
  block is acknowledged for ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncssh

from invoicing.integrations.xml_export import sftp_errors as errors
from invoicing.integrations.xml_export.sftp_errors import UploadError, Where
from invoicing.integrations.xml_export.targets import SftpTarget, fingerprint, openssh_line, public_key

_T = TypeVar("_T")
PROBE_PREFIX = ".invoicebot-probe-"
PART_SUFFIX = ".part"
_BLOCK = 256 * 1024  # bytes per write request (servers cap it: OpenSSH at 255 KiB, reported by limits@openssh.com)
# Up to 4 MiB outstanding (16 × 256 KiB; as fast as 64 in benchmarks/sftp_put.py at a quarter of the memory), and
# up to 128 requests when a server without limits@openssh.com gets asyncssh's safe 16 KiB writes (as put does).
_WINDOW = 4 * 1024 * 1024


@dataclass(frozen=True)
class Session:
    """An open SFTP session and how to drop its connection at once (a stalled server gets no polite close)."""

    sftp: asyncssh.SFTPClient
    abort: Callable[[], None]


class _PinnedClient(asyncssh.SSHClient):
    """Remembers the host key the server offered when it is not the pinned one (and refuses it)."""

    def __init__(self) -> None:
        self.offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = key
        return False


def _where(target: SftpTarget) -> Where:
    return Where(target.host, target.port, target.username, target.path, with_key=target.private_key is not None)


async def _step(awaitable: Awaitable[_T], where: Where, timeout: float) -> _T:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise errors.classify(exc, where, timeout=timeout) from None


async def offered_host_key(host: str, port: int, *, timeout: float, where: Where | None = None) -> str:
    """The key line the server presents, fetched without authenticating."""
    where = where or Where(host, port, "", "")
    key = await _step(asyncssh.get_server_host_key(host, port, config=[]), where, timeout)
    if key is None:
        raise UploadError(f"The server {where.server} presented no host key (protocol).", kind="protocol")
    return openssh_line(key)


@asynccontextmanager
async def sftp_session(target: SftpTarget, *, timeout: float) -> AsyncIterator[Session]:
    """An SFTP session on a connection that trusts only ``target.host_key``."""
    where = _where(target)
    if target.host_key is None:
        offered = await offered_host_key(target.host, target.port, timeout=timeout, where=where)
        raise errors.host_key_unknown(where, offered, fingerprint(offered))
    pinned = public_key(target.host_key)
    if target.private_key is None and target.password is None:
        raise UploadError(f"No key or password is set for user '{target.username}' on {where.server} (auth).",
                          kind="auth")
    client_keys = None
    if target.private_key is not None:
        try:
            client_keys = [asyncssh.import_private_key(target.private_key)]
        except (asyncssh.KeyImportError, ValueError):  # never echo the key text
            raise UploadError("The stored private key could not be read (auth); rotate the tenant key.",
                              kind="auth") from None
    client = _PinnedClient()
    methods = [m for m, given in (("publickey", client_keys), ("password", target.password)) if given is not None]
    try:
        conn = await asyncio.wait_for(asyncssh.connect(
            target.host, target.port, username=target.username, client_keys=client_keys, password=target.password,
            known_hosts=asyncssh.import_known_hosts(f"* {openssh_line(pinned)}\n"), client_factory=lambda: client,
            connect_timeout=timeout, agent_path=None, config=[], preferred_auth=methods, kbdint_auth=False,
            gss_host=None, disable_trivial_auth=True), timeout + 1)
    except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as exc:
        raise await _host_key_error(exc, client, target, where, timeout) from None
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise errors.classify(exc, where, timeout=timeout) from None
    try:
        sftp = await _step(conn.start_sftp_client(), where, timeout)
        yield Session(sftp, conn.abort)
        sftp.exit()
    finally:
        conn.close()
        try:
            await asyncio.wait_for(conn.wait_closed(), timeout)
        except TimeoutError:
            conn.abort()


async def _host_key_error(exc: Exception, client: _PinnedClient, target: SftpTarget, where: Where,
                          timeout: float) -> UploadError:
    assert target.host_key is not None
    pinned = fingerprint(target.host_key)
    if client.offered is not None:
        offered: str | None = openssh_line(client.offered)
    else:  # no common host key algorithm: the server's key is of another type than the pinned one
        try:
            offered = await offered_host_key(target.host, target.port, timeout=timeout, where=where)
        except UploadError:
            offered = None
        if offered is not None and public_key(offered) == public_key(target.host_key):
            return errors.classify(exc, where, timeout=timeout)
        if offered is None and isinstance(exc, asyncssh.KeyExchangeFailed):
            return errors.classify(exc, where, timeout=timeout)
    return errors.host_key_changed(where, offered, fingerprint(offered) if offered else None, pinned)


async def check_directory(sftp: asyncssh.SFTPClient, where: Where, timeout: float) -> None:
    attrs = await _step(sftp.stat(where.path), where, timeout)
    if attrs.permissions is not None and not stat.S_ISDIR(attrs.permissions):
        raise errors.no_directory(where, "is not a directory")


def _first_failure(tasks: set[asyncio.Future[int]]) -> BaseException | None:
    """The first error among finished ``tasks``, retrieving every one's (asyncio logs unretrieved errors at GC,
    and on CPython 3.11 that logging inside another ``ast.parse`` breaks it: "AST constructor recursion depth")."""
    errors_seen = [t.exception() for t in tasks if t.done() and not t.cancelled()]
    return next((e for e in errors_seen if e is not None), None)


async def _transfer(session: Session, source: Path, remote: str, where: Where, timeout: float) -> None:
    """Stream ``source`` to ``remote`` with up to ``_WINDOW`` bytes of write requests outstanding, fsync, close.

    Our own pipeline rather than ``SFTPClient.put`` (as fast in ``benchmarks/sftp_put.py``): it owns every
    request, so a failure or a stall (nothing acknowledged for ``timeout`` s → the connection is aborted) still
    collects each outstanding request's outcome, and memory stays at about ``_WINDOW`` whatever the size."""
    handle = await _step(session.sftp.open(remote, "wb"), where, timeout)
    block = min(handle.write_len or _BLOCK, _BLOCK)
    in_flight = max(16, min(128, _WINDOW // block))
    pending: set[asyncio.Future[int]] = set()
    failure: BaseException | None = None
    try:
        with source.open("rb") as local:
            offset = 0
            while failure is None:
                while len(pending) < in_flight and (chunk := local.read(block)):
                    pending.add(asyncio.ensure_future(handle.write(chunk, offset)))
                    offset += len(chunk)
                if not pending:
                    break
                done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    failure = errors.timed_out(where, timeout, "stopped accepting data")
                    session.abort()
                failure = failure or _first_failure(done)
    finally:
        if pending:  # an error, a stall or our cancellation: wait for (and so collect) every outstanding request
            if failure is None or isinstance(failure, UploadError):
                session.abort()
            await asyncio.wait(pending, timeout=timeout)
            for task in pending:
                task.cancel()
            _first_failure(pending)
    if failure is not None:
        raise errors.classify(failure, where, timeout=timeout) from None
    try:
        await _step(handle.fsync(), where, timeout)
    except UploadError as error:
        if error.kind != "protocol":  # e.g. no fsync@openssh.com on this server: the rename is still atomic
            raise
    await _step(handle.close(), where, timeout)


async def _replace(sftp: asyncssh.SFTPClient, temporary: str, final: str, where: Where, timeout: float) -> None:
    try:
        await _step(sftp.posix_rename(temporary, final), where, timeout)
        return
    except UploadError as error:
        if error.kind != "protocol":
            raise
    try:  # no posix-rename@openssh.com: plain SFTP rename refuses to replace, so remove the old copy first
        await sftp.remove(final)
    except asyncssh.SFTPNoSuchFile:
        pass
    except (OSError, asyncssh.Error) as exc:
        raise errors.classify(exc, where, timeout=timeout) from None
    await _step(sftp.rename(temporary, final), where, timeout)


async def upload_sftp(target: SftpTarget, name: str, source: Path, size: int, *, timeout: float) -> None:
    where = _where(target)
    final = target.remote_path(name)
    temporary = final + PART_SUFFIX
    async with sftp_session(target, timeout=timeout) as session:
        sftp = session.sftp
        await check_directory(sftp, where, timeout)
        try:
            await _transfer(session, source, temporary, where, timeout)
        except UploadError as error:
            if error.kind in {"disk_full", "protocol"}:  # the session still works: free the space the part holds
                with contextlib.suppress(OSError, asyncssh.Error, TimeoutError):
                    await asyncio.wait_for(sftp.remove(temporary), timeout)
            raise
        stored = await _step(sftp.stat(temporary), where, timeout)
        if stored.size != size:
            raise UploadError(f"The server {where.server} stored {stored.size} of {size} bytes of {name} "
                              "(protocol); the upload is retried.", kind="protocol")
        await _replace(sftp, temporary, final, where, timeout)


async def probe_sftp(target: SftpTarget, *, timeout: float) -> list[str]:
    where = _where(target)
    steps: list[str] = []
    async with sftp_session(target, timeout=timeout) as session:
        sftp = session.sftp
        how = "key" if target.private_key is not None else "password"
        assert target.host_key is not None
        steps.append(f"connected to {where.server} as '{target.username}' with the {how}; the host key "
                     f"{fingerprint(target.host_key)} matches the pinned one")
        await check_directory(sftp, where, timeout)
        steps.append(f"the directory {target.path} exists")
        probe_name = PROBE_PREFIX + secrets.token_hex(6)
        remote = target.remote_path(probe_name)
        body = b"InvoiceBot connection test; safe to delete.\n"
        try:
            async with await _step(sftp.open(remote, "wb"), where, timeout) as handle:
                await _step(handle.write(body), where, timeout)
            steps.append(f"wrote {probe_name} ({len(body)} bytes)")
        finally:
            try:
                await asyncio.wait_for(sftp.remove(remote), timeout)
            except asyncssh.SFTPNoSuchFile:
                pass
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                if steps[-1].startswith("wrote"):
                    raise errors.classify(exc, where, timeout=timeout) from None
        steps.append(f"removed {probe_name}")
    return steps
