"""Recently verified feed tokens, so a busy OMS is not one token read per request.

Every feed request authenticates its bearer token; at one read by hash per request the
lookup costs about as much as a page of orders. ``VerifiedTokens`` remembers the
principal of a token that was *active* when read, for ``ttl`` seconds (default 1 s).

What a caller may rely on:

* **A revoked token stops working within ``ttl`` on every replica.** An entry's age is
  measured from the moment *before* its database read started, so a revocation that
  committed while the read was in flight is still seen at most ``ttl`` after the commit;
  nothing but a fresh read can extend an entry. Each replica has its own cache and the
  database stays the only shared truth — no invalidation messages to lose.
* Only tokens found active are cached: an unknown token is read every time, so a token
  created a moment ago works at once on every replica.
* The key is the token's sha256 (never the token); at most ``size`` entries are held,
  least recently used dropped first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

P = TypeVar("P")

#: How long a verified token is trusted without reading it again, in seconds.
DEFAULT_TTL = 1.0


class VerifiedTokens(Generic[P]):
    """Principals by token hash, each trusted for ``ttl`` seconds after the read that found it."""

    def __init__(self, ttl: float = DEFAULT_TTL, size: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0 or size < 1:
            raise ValueError("ttl must be >= 0 and size >= 1")
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, P]] = OrderedDict()

    def now(self) -> float:
        """Take this *before* the database read whose result is ``put`` (see the module doc)."""
        return self._clock()

    def get(self, digest: str) -> P | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        read_at, principal = entry
        if self._clock() - read_at >= self._ttl:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return principal

    def put(self, digest: str, principal: P, *, read_at: float) -> None:
        self._entries[digest] = (read_at, principal)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
