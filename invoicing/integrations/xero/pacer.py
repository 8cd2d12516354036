"""Per-organisation pacing of Xero calls, so we stay inside Xero's limits instead of meeting 429s.

Xero's limits are per organisation (and app): 5 calls in flight, 60 per minute, 5,000 per day
(1,000 on the Starter tier); a 429 says ``Retry-After`` seconds. What a caller may rely on:

* ``OrgPacer.slot()`` admits at most ``Limits.concurrent`` calls at once, and at most
  ``Limits.per_minute`` calls reach Xero in *any* window of ``Limits.window`` seconds, however long a
  call takes between its start and its arrival at Xero: a call counts in the sliding window from
  its start until ``window × (1 + margin)`` after it *finished* (its arrival lies between the two),
  so a call that was slow to leave can never meet a window of later calls. Waiting callers go in
  turn (FIFO).
* ``OrgPacer.back_off(seconds)`` (a 429's ``Retry-After``) holds that organisation's next calls
  until then; other organisations' pacers are not affected.
* The daily budget is not kept here but on the connection row (``budget.count_call``), so replicas
  share it. The minute window is per process: two replicas pushing to one organisation at once
  each keep their own window (the client still obeys the 429s that may follow).

Why not ``aiolimiter``: its leaky bucket lets a full burst through and then one call per
``period / rate``, so a window straddling the burst sees almost twice the rate (60 at once, 59 more
within the minute) — Xero would answer 429 — and it reads the loop's clock, which tests cannot scale.
A sliding window over in-flight and finished calls is 50 lines, exact, and takes the clock and
``sleep`` as arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

Now = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


@dataclass(frozen=True)
class Limits:
    """One organisation's limits. ``window`` is the length of Xero's "minute" in seconds of ``now``."""

    per_minute: int = 60
    concurrent: int = 5
    window: float = 60.0
    #: Added to the window (fraction of it): a call starts only when the one ``per_minute`` before it
    #: started more than ``window × (1 + margin)`` ago.
    margin: float = 0.02


class OrgPacer:
    """The limiter of one organisation (``Pacers.for_org`` makes one per Xero tenant id)."""

    def __init__(self, limits: Limits, *, now: Now = _loop_time, sleep: Sleep = asyncio.sleep) -> None:
        self.limits = limits
        self._now = now
        self._sleep = sleep
        # Completion times of finished calls still in the window (in order: the clock is monotonic).
        self._finished: deque[float] = deque()
        self._running = 0
        self._done = asyncio.Event()
        self._in_flight = asyncio.Semaphore(limits.concurrent)
        self._turn = asyncio.Lock()
        self._blocked_until = 0.0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the organisation's call slots for the duration of one HTTP request."""
        async with self._in_flight:
            await self._wait_turn()
            try:
                yield
            finally:
                self._running -= 1
                self._finished.append(self._now())
                self._done.set()

    def back_off(self, seconds: float) -> None:
        """No call of this organisation starts for ``seconds`` (a 429's ``Retry-After``)."""
        self._blocked_until = max(self._blocked_until, self._now() + max(0.0, seconds))

    @property
    def blocked_for(self) -> float:
        """Seconds until calls may start again after a ``back_off`` (0 when not blocked)."""
        return max(0.0, self._blocked_until - self._now())

    async def _wait_turn(self) -> None:
        span = self.limits.window * (1 + self.limits.margin)
        async with self._turn:
            while True:
                now = self._now()
                if now < self._blocked_until:
                    await self._sleep(self._blocked_until - now)
                    continue
                while self._finished and self._finished[0] <= now - span:
                    self._finished.popleft()
                if len(self._finished) + self._running < self.limits.per_minute:
                    self._running += 1
                    return
                if self._finished:
                    await self._sleep(self._finished[0] + span - now)
                else:  # the whole minute's allowance is in flight: wait for one to finish
                    self._done.clear()
                    await self._done.wait()


@dataclass
class Pacers:
    """One ``OrgPacer`` per organisation (Xero tenant id), created on first use with ``limits``."""

    limits: Limits = field(default_factory=Limits)
    now: Now = _loop_time
    sleep: Sleep = asyncio.sleep
    _pacers: dict[str, OrgPacer] = field(default_factory=dict)

    def for_org(self, xero_tenant_id: str) -> OrgPacer:
        pacer = self._pacers.get(xero_tenant_id)
        if pacer is None:
            pacer = self._pacers[xero_tenant_id] = OrgPacer(self.limits, now=self.now, sleep=self.sleep)
        return pacer
