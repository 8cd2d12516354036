"""The render pool: PDFs rendered in worker processes, each replaced after a bounded number of renders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


OWNER = """
import sys, time
from bot.rendering import RenderPool
pool = RenderPool(workers=2)
pool.warm()
deadline = time.monotonic() + 60
while len(pool.worker_pids()) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
print(" ".join(map(str, pool.worker_pids())), flush=True)
time.sleep(600)
"""


def test_workers_exit_when_the_service_is_killed():
    # ``serve`` killed with SIGKILL (an OOM kill, a container stopped hard) runs no shutdown: its render
    # workers, blocked on the task queue, stayed behind for good, 85 MB each, and a restart added two more.
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert owner.stdout is not None
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
