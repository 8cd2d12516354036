"""The XML export's own settings as ops type them, parsed to what ``Integration.settings`` stores.

Stored keys: ``host port username path`` (SFTP) or ``dir`` (a local directory; the two
exclude each other), ``content`` (``orders`` | ``invoices``), ``host_key`` (the pinned
OpenSSH line, without comment), ``auth`` (``key`` | ``password``), ``password`` (sealed)
and ``blocked`` (see ``settings``). Pure functions; each raises ``InvalidInput`` naming
the field. Host, user, path and directory are checked by ``destinations.parse_destination``
so what is stored is exactly what an upload accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoicing.errors import InvalidInput
from invoicing.integrations.xml_export import destinations

CONTENTS = ("orders", "invoices")
AUTHS = ("key", "password")
#: A change of any of these (or of the password) clears a block and re-queues failed files.
DESTINATION_KEYS = ("host", "port", "username", "path", "dir", "host_key", "auth")
MAX_PASSWORD = 1024


def _none(text: str) -> bool:
    return text.strip().lower() == "none"


def parse_fields(*, host: str | None = None, port: str | int | None = None, username: str | None = None,
                 path: str | None = None, dir: str | None = None, content: str | None = None,
                 host_key: str | None = None, auth: str | None = None) -> dict[str, Any]:
    """The stored values of the given fields (``None`` = not given)."""
    out: dict[str, Any] = {}
    if dir is not None and any(v is not None for v in (host, port, username, path)):
        raise InvalidInput("dir", "a destination is either a local directory (dir=) or an SFTP server (host= "
                                  "username= path=), not both")
    if host is not None:
        parsed = destinations.parse_destination(f"sftp://{host.strip()}/")
        assert isinstance(parsed, tuple)
        out["host"] = parsed[1]
    if port is not None:
        out["port"] = _port(port)
    if username is not None:
        name = username.strip()
        if not name:
            raise InvalidInput("username", "give the user name to log in as on the SFTP server")
        parsed = destinations.parse_destination(f"sftp://{name}@localhost/")
        assert isinstance(parsed, tuple)
        out["username"] = parsed[0]
    if path is not None:
        parsed = destinations.parse_destination(f"sftp://localhost{_absolute(path.strip(), 'path')}")
        assert isinstance(parsed, tuple)
        out["path"] = parsed[3]
    if dir is not None:
        if _none(dir):
            out["dir"] = None
        else:
            local = destinations.parse_destination(_absolute(dir.strip(), "dir"))
            if not isinstance(local, Path):
                raise InvalidInput("dir", "give an absolute directory path, e.g. dir=/mnt/share/exports")
            out["dir"] = str(local)
    if content is not None:
        value = content.strip().lower()
        if value not in CONTENTS:
            raise InvalidInput("content", f"{content!r} is not one of {', '.join(CONTENTS)}")
        out["content"] = value
    if host_key is not None:
        out["host_key"] = None if _none(host_key) else parse_host_key(host_key)
    if auth is not None:
        value = auth.strip().lower()
        if value not in AUTHS:
            raise InvalidInput("auth", f"{auth!r} is not one of {', '.join(AUTHS)} (key: the tenant's SSH key, "
                                       "shown by `/invoicing xml key`)")
        out["auth"] = value
    return out


def parse_password(text: str) -> str | None:
    """The password to seal, or None for ``none`` (remove it)."""
    if _none(text):
        return None
    if not text or len(text) > MAX_PASSWORD or any(ord(c) < 32 for c in text):
        raise InvalidInput("password", f"give 1 to {MAX_PASSWORD} characters without line breaks, or none")
    return text


def parse_host_key(text: str) -> str:
    """The pinned form of an OpenSSH public key line: ``"<algorithm> <base64>"`` (comment dropped)."""
    line = " ".join(text.split())
    destinations.fingerprint(line)  # InvalidInput("host_key", …) when it is not a key
    parts = line.split(" ")
    return f"{parts[0]} {parts[1]}"


def fingerprint_or_none(key: str | None) -> str | None:
    if not key:
        return None
    try:
        return destinations.fingerprint(key)
    except InvalidInput:
        return None


def content_of(s: dict[str, Any]) -> str:
    return str(s.get("content") or "orders")


def destination_text(s: dict[str, Any]) -> str:
    """``sftp://user@host:port/path`` or ``file:///dir``; ``""`` while incomplete (no host, user or path)."""
    if s.get("dir"):
        return Path(s["dir"]).as_uri()
    if s.get("host") and s.get("username") and s.get("path"):
        host = f"[{s['host']}]" if ":" in str(s["host"]) else s["host"]
        return f"sftp://{s['username']}@{host}:{s.get('port') or 22}{s['path']}"
    return ""


def _port(value: str | int) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        raise InvalidInput("port", f"{value!r} is not a number; give 1 to 65535 (SFTP is usually 22)") from None
    if not 1 <= port <= 65535:
        raise InvalidInput("port", f"{port} is out of range; give 1 to 65535")
    return port


def _absolute(text: str, field: str) -> str:
    if not text.startswith("/") and not text.startswith("file:"):
        raise InvalidInput(field, f"{text[:80]!r} is not an absolute path (it must start with /)")
    return text
