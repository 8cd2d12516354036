"""Where an export file goes, as plain values: an SFTP server with a pinned host key, or a local directory.

``parse_destination`` reads what ops type (``sftp://acme@files.example.com:2222/upload`` or
``/mnt/share/exports``); ``fingerprint`` prints a host key the way ``ssh-keygen -lf`` does, so an admin can
compare it with what the server's owner reads out. Secrets (private key, password) are never in a repr or str.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncssh

from invoicing.errors import InvalidInput

MAX_HOST = 253
MAX_PATH = 1000
DEFAULT_PORT = 22

# RFC 1123 host names (letters, digits, hyphens, dots), IPv4, or a bracketed IPv6 literal's content.
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?)*\.?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+$")
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class SftpTarget:
    """An SFTP destination. ``host_key`` is the pinned OpenSSH public key line (None: not pinned yet, so
    nothing is uploaded); ``private_key`` (OpenSSH text) and ``password`` are already opened from the
    SecretBox and are never shown by repr/str."""

    host: str
    port: int
    username: str
    path: str
    host_key: str | None = None
    private_key: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"sftp://{self.username}@{_host_text(self.host)}:{self.port}{self.path}"

    def location(self, name: str) -> str:
        """The URL of ``name`` in this directory (no user name: it is for notifications)."""
        return f"sftp://{_host_text(self.host)}:{self.port}{_join(self.path, name)}"

    def remote_path(self, name: str) -> str:
        return _join(self.path, name)


@dataclass(frozen=True)
class LocalTarget:
    """A local directory (e.g. a mounted share) that must already exist."""

    path: Path

    def __str__(self) -> str:
        return self.path.as_uri()

    def location(self, name: str) -> str:
        return (self.path / name).as_uri()


Target = SftpTarget | LocalTarget


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if directory != "/" else "/" + name


def check_file_name(name: str) -> None:
    """A bare file name (no directory part, no control characters), as the export produces."""
    controls = any(ord(c) < 32 or ord(c) == 127 for c in name)
    if not name or name in {".", ".."} or "/" in name or "\\" in name or controls:
        raise InvalidInput("name", f"{name!r} is not a plain file name")
    if len(name) > 255:
        raise InvalidInput("name", "a file name has at most 255 characters")


def _check_path(path: str, field_name: str) -> str:
    if len(path) > MAX_PATH:
        raise InvalidInput(field_name, f"the path has {len(path)} characters; at most {MAX_PATH}")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise InvalidInput(field_name, "the path contains a control character (e.g. a line break)")
    if not path.startswith("/"):
        raise InvalidInput(field_name, f"{path!r} is not an absolute path (it must start with /)")
    if any(part == ".." for part in path.split("/")):
        raise InvalidInput(field_name, "the path may not contain '..'")
    return path.rstrip("/") or "/"


def parse_destination(text: str) -> tuple[str, str, int, str] | Path:
    """``sftp://[user@]host[:port]/path`` → ``(user, host, port, path)`` (user ``""`` when not given, port 22);
    an absolute path or ``file:///…`` → ``Path``. Anything else → ``InvalidInput`` saying what is wrong."""
    text = text.strip()
    if not text:
        raise InvalidInput("destination", "give sftp://user@host[:port]/path or an absolute directory path")
    if len(text) > MAX_HOST + MAX_PATH + 100:
        raise InvalidInput("destination", "the destination is too long")
    if text.startswith("/"):
        return Path(_check_path(text, "destination"))
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in {"", "localhost"}:
            raise InvalidInput("destination", "a file:// destination must be on this machine (file:///dir)")
        return Path(_check_path(unquote(parts.path), "destination"))
    if scheme != "sftp":
        raise InvalidInput("destination", f"{text[:60]!r} is neither sftp://user@host[:port]/path nor an absolute "
                                          "directory path")
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise InvalidInput("destination", "an sftp:// destination has no ?query or #fragment")
    if parts.password is not None:
        raise InvalidInput("destination", "do not put a password in the URL; set it with password= (stored sealed)")
    user = unquote(parts.username or "")
    if user and not _USER.match(user):
        raise InvalidInput("username", f"{user[:64]!r} is not a valid user name")
    host = parts.hostname or ""
    if not host:
        raise InvalidInput("host", "the sftp:// destination has no host")
    if len(host) > MAX_HOST:
        raise InvalidInput("host", f"the host name has {len(host)} characters; at most {MAX_HOST}")
    if not (_HOST.match(host) or ("[" in parts.netloc and _IPV6.match(host))):
        raise InvalidInput("host", f"{host!r} is not a valid host name or address")
    try:
        port = parts.port if parts.port is not None else DEFAULT_PORT
    except ValueError:
        raise InvalidInput("port", "the port must be a number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise InvalidInput("port", "the port must be a number from 1 to 65535")
    return user, host.rstrip("."), port, _check_path(unquote(parts.path or "/"), "path")


def public_key(key_line: str, *, field_name: str = "host_key") -> asyncssh.SSHKey:
    """The key of an OpenSSH public key line; ``InvalidInput`` when it is not one."""
    if len(key_line) > 16_384 or "\n" in key_line.strip():
        raise InvalidInput(field_name, "give one OpenSSH public key line, e.g. \"ssh-ed25519 AAAA…\"")
    try:
        return asyncssh.import_public_key(key_line.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise InvalidInput(field_name, "this is not an OpenSSH public key line (expected e.g. \"ssh-ed25519 "
                                       "AAAA…\", as in the server's /etc/ssh/ssh_host_*_key.pub)") from None


def openssh_line(key: asyncssh.SSHKey) -> str:
    """``"<algorithm> <base64>"`` without a comment: the form we pin and compare."""
    algorithm, body = key.export_public_key("openssh").decode("ascii").split()[:2]
    return f"{algorithm} {body}"


def fingerprint(key_line: str) -> str:
    """``SHA256:<base64, no padding>`` exactly as ``ssh-keygen -lf`` prints it."""
    return public_key(key_line).get_fingerprint("sha256")
