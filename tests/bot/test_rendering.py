"""The render pool: PDFs rendered in worker processes, each replaced after a bounded number of renders."""

from __future__ import annotations

import time

from bot.rendering import RENDERS_PER_WORKER, RenderPool, render_in_thread
from tests.invoicing.delivery.test_pdf import make_doc, make_line


async def test_a_worker_is_replaced_after_its_renders_and_the_bytes_stay_the_same():
    doc = make_doc([make_line(i) for i in range(3)])
    pool = RenderPool(workers=1, renders_per_worker=2)
    seen: set[int] = set()
    try:
        outputs = []
        for _ in range(4):
            outputs.append(await pool.render(doc))
            seen.update(pool.worker_pids())
    finally:
        pool.close()
    assert len(seen) >= 2  # the first worker left after two renders
    assert set(outputs) == {await render_in_thread(doc)}


def test_workers_are_recycled_by_default():
    assert RenderPool().renders_per_worker == RENDERS_PER_WORKER
    assert RenderPool(renders_per_worker=None).renders_per_worker is None


def test_warm_starts_every_worker_before_the_first_render():
    pool = RenderPool(workers=2)
    try:
        assert pool.worker_pids() == []
        pool.warm()
        deadline = time.monotonic() + 60
        while len(pool.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pool.worker_pids()) == 2
    finally:
        pool.close()
