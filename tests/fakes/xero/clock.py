"""The fake's sense of time: real by default, movable by tests (token expiry, limit windows, grace)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A clock that stands still until ``advance`` moves it; a ``Clock`` (callable → aware UTC datetime).

    Give the same instance to the service under test and to ``FakeXero(clock=…)`` so both agree on "now".
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class OffsetClock:
    """Any clock plus the seconds ``advance`` added (how a real-time fake still lets tests skip ahead)."""

    def __init__(self, base: Callable[[], datetime] | None = None) -> None:
        self._base = base or (lambda: datetime.now(UTC))
        self._offset = timedelta()

    def __call__(self) -> datetime:
        return self._base() + self._offset

    def advance(self, seconds: float) -> None:
        advance = getattr(self._base, "advance", None)
        if callable(advance):
            advance(seconds)
        else:
            self._offset += timedelta(seconds=seconds)
