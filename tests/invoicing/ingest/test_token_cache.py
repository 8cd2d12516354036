"""The verified-token cache: entries age from before their read, expire, and are bounded."""

from __future__ import annotations

import pytest

from invoicing.ingest.token_cache import VerifiedTokens


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_an_entry_is_trusted_for_ttl_seconds_from_before_its_read() -> None:
    clock = Clock()
    cache: VerifiedTokens[str] = VerifiedTokens(ttl=1.0, clock=clock)
    read_at = cache.now()
    clock.t += 0.4  # the read took 0.4 s: a revocation may have committed meanwhile
    cache.put("h", "principal", read_at=read_at)
    clock.t += 0.59
    assert cache.get("h") == "principal"
    clock.t += 0.01  # 1.0 s after the read started, whatever the read took
    assert cache.get("h") is None
    assert len(cache) == 0


def test_a_hit_does_not_extend_an_entry() -> None:
    clock = Clock()
    cache: VerifiedTokens[str] = VerifiedTokens(ttl=1.0, clock=clock)
    cache.put("h", "p", read_at=cache.now())
    for _ in range(7):  # binary-exact steps: 7 × 0.125 s, then the eighth reaches 1 s
        clock.t += 0.125
        assert cache.get("h") == "p"
    clock.t += 0.125
    assert cache.get("h") is None


def test_least_recently_used_entries_go_first() -> None:
    cache: VerifiedTokens[str] = VerifiedTokens(ttl=60, size=2, clock=Clock())
    for key in ("a", "b"):
        cache.put(key, key, read_at=cache.now())
    assert cache.get("a") == "a"
    cache.put("c", "c", read_at=cache.now())
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("a", None, "c")


@pytest.mark.parametrize("ttl, size", [(-1.0, 10), (1.0, 0)], ids=["negative-ttl", "no-room"])
def test_nonsense_settings_are_refused(ttl: float, size: int) -> None:
    with pytest.raises(ValueError):
        VerifiedTokens(ttl=ttl, size=size)
