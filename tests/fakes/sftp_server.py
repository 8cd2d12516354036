"""A real SFTP server (asyncssh with its SFTP subsystem) on 127.0.0.1, chrooted to a temp dir, scriptable.

    async with SftpServer(root, users={"acme": UserAuth(keys=[public_line])}) as server:
        ... server.port, server.host_key_line, server.fingerprint ...
        await server.stop(); await server.start()     # down, then up again: same port, same host key

Knobs: ``read_only(dir)`` (a real chmod, also enforced by the server itself because the tests may run as
root, which ignores permission bits), ``disk_full_after(n)`` (writes fail with "no space" once ``n`` more bytes
were written), ``write_delay`` (seconds slept per write request, so a test can stop the server or kill a
process mid-upload), ``posix_rename = False`` (a server without that extension). ``auth_attempts`` lists
the user names that tried to log in.

As a subprocess (for kill -9 tests and trials):
    python -m tests.fakes.sftp_server --root DIR --authorized KEYFILE --port-file F [--user acme]
        [--password PW] [--host-key KEYFILE] [--port N] [--write-delay S]
writes the port to F (atomically) and the host key line to F.hostkey, then serves until SIGTERM/SIGINT.
``await spawn_server(root, authorized, port_file, *options)`` starts it so and waits until it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncssh


@dataclass
class UserAuth:
    """Who may log in: OpenSSH public key lines and/or a password."""

    keys: list[str] = field(default_factory=list)
    password: str | None = None


class _Auth(asyncssh.SSHServer):
    def __init__(self, server: SftpServer) -> None:
        self._server = server
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._server._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        self._server.auth_attempts.append(username)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self._server.users.get(username)
        return user is not None and any(asyncssh.import_public_key(line) == key for line in user.keys)

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        user = self._server.users.get(username)
        return bool(user and user.password is not None and hmac.compare_digest(user.password, password))


class _Sftp(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, server: SftpServer) -> None:
        super().__init__(chan, chroot=os.fsencode(server.root))
        self._server = server

    def _check_writable(self, sftp_path: bytes) -> None:
        directory = os.path.dirname(os.fsdecode(self.map_path(sftp_path)))
        if not os.stat(directory).st_mode & stat.S_IWUSR:
            raise asyncssh.SFTPPermissionDenied("Permission denied")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_APPEND):
            self._check_writable(path)
        return super().open(path, pflags, attrs)

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if self._server.write_delay:
            await asyncio.sleep(self._server.write_delay)
        limit = self._server._space_left
        if limit is not None:
            if len(data) > limit:
                raise asyncssh.SFTPNoSpaceOnFilesystem("No space left on device")
            self._server._space_left = limit - len(data)
        self._server.bytes_written += len(data)
        return await _maybe(super().write(file_obj, offset, data))

    def remove(self, path: bytes) -> object:
        self._check_writable(path)
        return super().remove(path)

    def rename(self, oldpath: bytes, newpath: bytes) -> object:
        self._check_writable(newpath)
        return super().rename(oldpath, newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> object:
        if not self._server.posix_rename:
            raise asyncssh.SFTPOpUnsupported("posix-rename not supported")
        self._check_writable(newpath)
        self._server.renames += 1
        return super().posix_rename(oldpath, newpath)


async def _maybe(result: object) -> int:
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        result = await result
    assert isinstance(result, int)
    return result


class SftpServer:
    """See the module docstring. ``root`` is what the client sees as ``/``."""

    def __init__(self, root: Path, users: dict[str, UserAuth], *, host_key: asyncssh.SSHKey | None = None,
                 port: int = 0, host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.users = users
        self.host = host
        self.port = port
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self.write_delay = 0.0
        self.bytes_written = 0
        self.renames = 0
        self.posix_rename = True  # False: like a server without posix-rename@openssh.com
        self.auth_attempts: list[str] = []
        self._space_left: int | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection | None] = set()

    @property
    def host_key_line(self) -> str:
        algorithm, body = self.host_key.export_public_key("openssh").decode().split()[:2]
        return f"{algorithm} {body}"

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    def disk_full_after(self, n: int | None) -> None:
        """Writes beyond ``n`` more bytes fail with "no space" (None: unlimited again)."""
        self._space_left = n

    def read_only(self, directory: str, read_only: bool = True) -> None:
        """chmod a directory (client path, e.g. ``/upload``) to 0555, or back to 0755."""
        (self.root / directory.lstrip("/")).chmod(0o555 if read_only else 0o755)

    async def start(self) -> None:
        self._acceptor = await asyncssh.listen(
            self.host, self.port, server_factory=lambda: _Auth(self), server_host_keys=[self.host_key],
            sftp_factory=lambda chan: _Sftp(chan, self), allow_scp=False, reuse_address=True)
        self.port = self._acceptor.get_port()

    async def stop(self) -> None:
        """Close the listener and drop every open connection (as a crashed or stopped server does)."""
        if self._acceptor is not None:
            self._acceptor.close()
            for conn in list(self._connections):
                if conn is not None:
                    conn.abort()
            await self._acceptor.wait_closed()
            self._acceptor = None

    async def __aenter__(self) -> SftpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServerProcess:
    """The server running as a child process (``spawn_server``): kill it, start another on ``port``."""

    process: subprocess.Popen[bytes]
    port: int
    host_key_line: str


async def spawn_server(root: Path, authorized: Path, port_file: Path, *options: str,
                       stderr: IO[Any] | None = None, timeout: float = 30) -> ServerProcess:
    """``python -m tests.fakes.sftp_server`` as a child; returns once it listens (its port file is written).

    ``options`` are more command-line options (``--user``, ``--host-key``, ``--port``, ``--write-delay``).
    """
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.sftp_server", "--root", str(root),
                                "--authorized", str(authorized), "--port-file", str(port_file), *options],
                               cwd=REPOSITORY, stderr=stderr)
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the SFTP server exited during start-up (status {process.returncode})")
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"the SFTP server did not listen within {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return ServerProcess(process, int(port_file.read_text()), Path(f"{port_file}.hostkey").read_text().strip())


async def _serve(args: argparse.Namespace) -> None:
    keys = [line.strip() for line in Path(args.authorized).read_text().splitlines() if line.strip()]
    host_key = None
    if args.host_key:
        key_file = Path(args.host_key)
        if key_file.exists():
            host_key = asyncssh.read_private_key(key_file)
        else:
            host_key = asyncssh.generate_private_key("ssh-ed25519")
            key_file.write_bytes(host_key.export_private_key())
    server = SftpServer(Path(args.root), {args.user: UserAuth(keys=keys, password=args.password)},
                        host_key=host_key, port=args.port)
    server.write_delay = args.write_delay
    await server.start()
    port_file = Path(args.port_file)
    Path(str(port_file) + ".hostkey").write_text(server.host_key_line + "\n")
    part = port_file.with_name(port_file.name + ".tmp")
    part.write_text(f"{server.port}\n")
    os.replace(part, port_file)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--authorized", required=True, help="file of OpenSSH public key lines")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--user", default="acme")
    parser.add_argument("--password", default=None)
    parser.add_argument("--host-key", default=None, help="private host key file (created when missing)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--write-delay", type=float, default=0.0)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
