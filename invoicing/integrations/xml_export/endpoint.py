"""The configured destination of one XML export as a ``destinations.Target``, with its secrets opened.

``location`` needs no secret (notices, the run reply); ``target`` opens the tenant's SSH key
(``keys.tenant_key``) or the sealed password with the ``SecretBox`` just before an upload
or a probe — the opened values live only in the returned target (whose repr hides them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoicing.errors import NotEligible
from invoicing.integrations.xml_export.destinations import LocalTarget, SftpTarget, Target
from invoicing.integrations.xml_export.settings import password_purpose
from invoicing.secrets import SecretBox
from models import Integration


def _bare(s: dict[str, Any]) -> Target | None:
    if s.get("dir"):
        return LocalTarget(Path(s["dir"]))
    if s.get("host") and s.get("username") and s.get("path"):
        return SftpTarget(host=str(s["host"]), port=int(s.get("port") or 22), username=str(s["username"]),
                          path=str(s["path"]), host_key=s.get("host_key") or None)
    return None


def location(s: dict[str, Any], name: str) -> str:
    """Where ``name`` goes (``sftp://host:port/path/name`` or ``file:///dir/name``); "" without a destination."""
    bare = _bare(s)
    return bare.location(name) if bare is not None else ""


async def target(row: Integration, tenant_id: int, box: SecretBox) -> Target:
    """The upload target of ``row`` (``NotEligible`` when none is configured); opens its secret."""
    s = row.settings or {}
    bare = _bare(s)
    if bare is None:
        raise NotEligible("The XML export has no destination: set host= username= path= or dir= first.")
    if isinstance(bare, LocalTarget):
        return bare
    if (s.get("auth") or "key") == "password":
        sealed = s.get("password")
        if not sealed:
            raise NotEligible("auth=password but no password is stored: set password= first.")
        return SftpTarget(host=bare.host, port=bare.port, username=bare.username, path=bare.path,
                          host_key=bare.host_key, password=box.open(str(sealed), purpose=password_purpose(row.id)))
    from invoicing.integrations.xml_export import keys  # the SSH key pair only when an SFTP upload needs it

    key = await keys.tenant_key(tenant_id, box)
    return SftpTarget(host=bare.host, port=bare.port, username=bare.username, path=bare.path,
                      host_key=bare.host_key, private_key=key.private_text)
