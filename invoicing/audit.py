"""The audit log: the one way every change of configuration is recorded.

Callers write the entry **inside the transaction of the change**, after reading the
old values under the row lock, so the log replays to the final state: each entry's
``old`` is exactly the previous entry's ``new`` for the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models import AuditEntry


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys whose value differs, as ``(old, new)`` mappings of just those keys."""
    keys = [key for key in new if old.get(key) != new[key]]
    return {key: old.get(key) for key in keys}, {key: new[key] for key in keys}


async def record(
    tenant_id: int,
    *,
    actor: str,
    action: str,
    target: str,
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Write one entry: ``actor`` (``slack:U…``, ``cli``, ``api:token-3``) did ``action`` to ``target``.

    ``old``/``new`` must be JSON-safe; pass only the keys that changed (see ``changed``).
    """
    return await AuditEntry.create(
        tenant_id=tenant_id, actor=actor[:100], action=action, target=target[:100],
        old=dict(old or {}), new=dict(new or {}),
    )
