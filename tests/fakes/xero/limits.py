"""Xero's API limits, per organisation and per app, with sliding windows on the fake's clock.

Xero counts calls per organisation (tenant) and app: 5 in flight, 60 per rolling minute, 5,000 per rolling
day (1,000 on the Starter tier) and 10,000 per minute per app across all its organisations. A call over a
limit is answered 429 with ``Retry-After`` (whole seconds) and ``X-Rate-Limit-Problem`` naming the limit;
every answer carries ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining`` and ``X-AppMinLimit-Remaining``.
Rejected calls are not counted against the windows (they did no work). Limits are plain numbers so tests
and the benchmark can scale them (e.g. ``Limits(per_minute=600)``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

MINUTE = 60.0
DAY = 86_400.0


@dataclass(frozen=True)
class Limits:
    concurrent: int = 5
    per_minute: int = 60
    per_day: int = 5000
    starter_per_day: int = 1000
    app_per_minute: int = 10_000

    def daily(self, tier: str) -> int:
        return self.starter_per_day if tier == "starter" else self.per_day


@dataclass(frozen=True)
class Verdict:
    """Whether a call may go ahead; ``problem`` is the ``X-Rate-Limit-Problem`` value when it may not."""

    problem: str | None
    retry_after: int
    headers: dict[str, str]


@dataclass
class Window:
    """Timestamps (epoch seconds) of the calls counted in a sliding window."""

    length: float
    stamps: deque[float] = field(default_factory=deque)

    def count(self, now: float) -> int:
        while self.stamps and self.stamps[0] <= now - self.length:
            self.stamps.popleft()
        return len(self.stamps)

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.stamps[0] + self.length - now)) if self.stamps else 1


@dataclass
class OrgCounters:
    minute: Window = field(default_factory=lambda: Window(MINUTE))
    day: Window = field(default_factory=lambda: Window(DAY))
    in_flight: int = 0
    max_in_flight: int = 0


class RateLimiter:
    """Admits or refuses one call at a time; ``admit`` and ``release`` must bracket an admitted call.

    ``admit`` does not await, so on one event loop the check and the count are atomic.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.orgs: dict[str, OrgCounters] = {}
        self.apps: dict[str, Window] = {}

    def org(self, tenant_id: str) -> OrgCounters:
        return self.orgs.setdefault(tenant_id, OrgCounters())

    def app(self, client_id: str) -> Window:
        return self.apps.setdefault(client_id, Window(MINUTE))

    def admit(self, *, tenant_id: str, tier: str, client_id: str, now: float) -> Verdict:
        org, app = self.org(tenant_id), self.app(client_id)
        daily = self.limits.daily(tier)
        used_minute, used_day, used_app = org.minute.count(now), org.day.count(now), app.count(now)
        problem, retry = None, 0
        if used_day >= daily:
            problem, retry = "daily", org.day.retry_after(now)
        elif used_app >= self.limits.app_per_minute:
            problem, retry = "appminute", app.retry_after(now)
        elif used_minute >= self.limits.per_minute:
            problem, retry = "minute", org.minute.retry_after(now)
        elif org.in_flight >= self.limits.concurrent:
            problem, retry = "concurrent", 1
        else:
            org.minute.stamps.append(now)
            org.day.stamps.append(now)
            app.stamps.append(now)
            used_minute, used_day, used_app = used_minute + 1, used_day + 1, used_app + 1
            org.in_flight += 1
            org.max_in_flight = max(org.max_in_flight, org.in_flight)
        headers = {
            "X-MinLimit-Remaining": str(max(0, self.limits.per_minute - used_minute)),
            "X-DayLimit-Remaining": str(max(0, daily - used_day)),
            "X-AppMinLimit-Remaining": str(max(0, self.limits.app_per_minute - used_app)),
        }
        if problem is not None:
            headers["Retry-After"] = str(retry)
            headers["X-Rate-Limit-Problem"] = problem
        return Verdict(problem, retry, headers)

    def release(self, tenant_id: str) -> None:
        self.org(tenant_id).in_flight -= 1
