"""A scheduler replica in its own process, for the kill and stall tests.

``python -m tests.bot.scheduler_child DB_URL SLOT_ISO EPOCH MARKER MODE LEASE_S`` runs
one tick of a replica whose clock reads SLOT at wall time EPOCH (Unix seconds) and runs
on in real time from there, so the test process and the child agree on "now"; its
leases last LEASE_S seconds.

* ``hang``: inside the first run's transaction (orders marked, not committed) it writes
  MARKER and blocks the whole process (event loop included), so the test can SIGKILL
  it there.
* ``wait``: every run first writes MARKER and then waits, the event loop free, until the
  file ``MARKER.go`` exists (a live run slower than its lease; the test may also
  SIGSTOP the child meanwhile). When the tick is over, it writes the companies of its
  outcomes, one a line, to ``MARKER.done``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bot.db import database
from bot.scheduler import Scheduler
from invoicing.integrations.pdf_emailer.run import KIND, run_company

REPLICA = "doomed-replica"


def real_time_from(slot: datetime, epoch: float) -> Any:
    """A clock that reads ``slot`` at wall time ``epoch`` and runs on in real time."""
    return lambda: slot + timedelta(seconds=time.time() - epoch)


async def main(url: str, slot_iso: str, epoch: str, marker: str, mode: str, lease_s: str) -> None:
    clock = real_time_from(datetime.fromisoformat(slot_iso), float(epoch))
    go = Path(marker + ".go")

    def hang(step: str) -> None:
        if step == "orders_marked":
            Path(marker).write_text("inside the run's transaction\n")
            time.sleep(120)  # blocks the whole process, transaction open, until it is killed

    async def slow(*args: Any, **kwargs: Any) -> Any:
        Path(marker).write_text("run started\n")
        while not go.exists():
            await asyncio.sleep(0.05)
        return await run_company(*args, **kwargs)

    runner = partial(run_company, checkpoint=hang) if mode == "hang" else slow
    async with database(url, apply_migrations=False):
        scheduler = Scheduler(clock=clock, runners={KIND: runner}, concurrency=1, replica=REPLICA,
                              lease=timedelta(seconds=float(lease_s)))
        outcomes = await scheduler.tick()
    Path(marker + ".done").write_text("".join(f"{o.company}\n" for o in outcomes))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
