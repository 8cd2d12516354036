"""Shared pieces of the idempotent bulk upserts (companies, catalog, orders)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

#: Rows per bulk statement and per ``IN (…)`` list: well under SQLite's and asyncpg's parameter limits.
CHUNK = 1000


class TenantRef(Protocol):
    """A tenant as the order writes use it: ``id`` scopes what they read and write, ``name`` is for messages.

    A ``Tenant`` row is one; so is a ``TenantKey`` (a feed request's, from its verified token,
    without reading the tenant row again).
    """

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class TenantKey:
    id: int
    name: str


class UpsertResult(StrEnum):
    """What an idempotent write did; ``STALE`` means an out-of-order update was ignored."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
