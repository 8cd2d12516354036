"""Freed heap goes back to the system when the service is idle, at most once per interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.allocator import HeapTrimmer, _malloc_trim


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_it_trims_at_most_once_per_interval():
    now = [1000.0]
    trimmer = HeapTrimmer(interval=60, clock=lambda: now[0])
    if _malloc_trim() is None:
        assert trimmer.maybe_trim() is False  # not glibc: a no-op
        return
    assert trimmer.maybe_trim() is True
    now[0] += 59
    assert trimmer.maybe_trim() is False
    now[0] += 1
    assert trimmer.maybe_trim() is True


@pytest.mark.skipif(_malloc_trim() is None or not Path("/proc/self/status").exists(), reason="glibc and /proc only")
def test_a_fragmented_heap_is_given_back():
    blocks = [bytes(2000) + bytes([i % 256]) for i in range(50_000)]  # ~100 MB from malloc, not pymalloc
    survivors = blocks[::100]  # one block in a hundred stays: the heap cannot shrink from its top
    del blocks
    before = rss_mb()
    assert HeapTrimmer().maybe_trim()
    assert rss_mb() < before - 30
    assert len(survivors) == 500
