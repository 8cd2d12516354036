"""The per-organisation pacer: never more than N starts in any window, ≤ concurrent in flight, Retry-After."""

from __future__ import annotations

import asyncio

from invoicing.integrations.xero.pacer import Limits, OrgPacer, Pacers


class FakeTime:
    """A clock that only moves when someone sleeps on it (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 1e-6)
        await asyncio.sleep(0)


def max_in_window(starts: list[float], window: float) -> int:
    return max(sum(1 for t in starts if s <= t < s + window) for s in starts)


async def test_no_window_ever_holds_more_than_the_limit_and_the_rate_is_kept():
    time = FakeTime()
    pacer = OrgPacer(Limits(per_minute=30, concurrent=5, window=60.0), now=time, sleep=time.sleep)
    starts: list[float] = []

    async def call() -> None:
        async with pacer.slot():
            starts.append(time())
            await time.sleep(0.3)

    await asyncio.gather(*(call() for _ in range(200)))
    assert len(starts) == 200
    assert max_in_window(starts, 60.0) <= 30
    # 200 calls at 30 per minute: a little over 6 minutes (the 2 % margin), not much more
    assert 6 * 60 <= starts[-1] <= 6.8 * 60


async def test_at_most_the_concurrent_limit_is_in_flight():
    time = FakeTime()
    pacer = OrgPacer(Limits(per_minute=1000, concurrent=5), now=time, sleep=time.sleep)
    in_flight = peak = 0

    async def call() -> None:
        nonlocal in_flight, peak
        async with pacer.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.001)
            in_flight -= 1

    await asyncio.gather(*(call() for _ in range(40)))
    assert peak == 5


async def test_retry_after_holds_only_that_organisation():
    time = FakeTime()
    pacers = Pacers(Limits(per_minute=60), now=time, sleep=time.sleep)
    slow, other = pacers.for_org("org-a"), pacers.for_org("org-b")
    assert pacers.for_org("org-a") is slow
    slow.back_off(30)
    async with other.slot():
        assert time() == 0.0  # the other organisation goes at once
    async with slow.slot():
        assert time() >= 30.0

