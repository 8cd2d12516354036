"""Shared pieces of the idempotent bulk upserts (companies, catalog, orders)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Any

#: Rows per bulk statement and per ``IN (…)`` list: well under SQLite's and asyncpg's parameter limits.
CHUNK = 1000


class UpsertResult(StrEnum):
    """What an idempotent write did; ``STALE`` means an out-of-order update was ignored."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
