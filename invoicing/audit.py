"""The audit log: the one way every change of configuration is recorded.

Callers write the entry **inside the transaction of the change**, after reading the
old values under the row lock, so the log replays to the final state: each entry's
``old`` is exactly the previous entry's ``new`` for the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from models import AuditEntry


@dataclass(frozen=True)
class LogEntry:
    """One recorded change as read back; ``at`` is aware UTC."""

    at: datetime
    actor: str
    action: str
    target: str
    old: Mapping[str, Any]
    new: Mapping[str, Any]


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys whose value differs, as ``(old, new)`` mappings of just those keys."""
    keys = [key for key in new if old.get(key) != new[key]]
    return {key: old.get(key) for key in keys}, {key: new[key] for key in keys}


def entry(
    tenant_id: int,
    *,
    actor: str,
    action: str,
    target: str,
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """One unsaved entry: ``actor`` (``slack:U…``, ``cli``, ``api:token-3``) did ``action`` to ``target``.

    For bulk writers (``AuditEntry.bulk_create``) that build many entries in one
    transaction; everyone else calls ``record``. ``old``/``new`` must be JSON-safe;
    pass only the keys that changed (see ``changed``). ``actor`` and ``target`` are cut
    to the 100 characters their columns hold.
    """
    return AuditEntry(
        tenant_id=tenant_id, actor=actor[:100], action=action, target=target[:100],
        old=dict(old or {}), new=dict(new or {}),
    )


async def record(
    tenant_id: int,
    *,
    actor: str,
    action: str,
    target: str,
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Write one entry (see ``entry``) on the current connection: inside the caller's
    transaction when there is one, so it commits or rolls back with the change.
    """
    written = entry(tenant_id, actor=actor, action=action, target=target, old=old, new=new)
    await written.save()
    return written


def _about(tenant_id: int, target: str | None) -> Any:
    query = AuditEntry.filter(tenant_id=tenant_id)
    if target is not None:
        query = query.filter(Q(target=target) | Q(target__startswith=f"{target}:"))
    return query


async def recent(tenant_id: int, *, target: str | None = None, limit: int = 25, offset: int = 0) -> list[LogEntry]:
    """The tenant's latest ``limit`` entries after skipping the ``offset`` newest, newest first.

    ``target`` narrows to entries about that target (``company:acme``) and its
    sub-targets (``company:acme:…``), never to another target that merely starts
    with the same letters (``company:acme2``).
    """
    return [LogEntry(e.at, e.actor, e.action, e.target, dict(e.old), dict(e.new))
            for e in await _about(tenant_id, target).order_by("-id").offset(offset).limit(limit)]


async def count(tenant_id: int, *, target: str | None = None) -> int:
    """How many entries ``recent`` can page through for the same ``target``."""
    return int(await _about(tenant_id, target).count())
