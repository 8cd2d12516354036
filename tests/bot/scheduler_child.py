"""A scheduler replica in its own process, for the kill test.

``python -m tests.bot.scheduler_child DB_URL NOW_ISO MARKER`` runs one tick with
the clock fixed at NOW; inside the first run's transaction (orders marked, not
committed) it writes MARKER and blocks, so the test can SIGKILL it there.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from functools import partial
from pathlib import Path

from bot.db import database
from bot.scheduler import Scheduler
from invoicing.integrations.pdf_emailer.run import KIND, run_company

REPLICA = "doomed-replica"


async def main(url: str, now_iso: str, marker: str) -> None:
    now = datetime.fromisoformat(now_iso)

    def hang(step: str) -> None:
        if step == "orders_marked":
            Path(marker).write_text("inside the run's transaction\n")
            time.sleep(120)  # blocks the whole process, transaction open, until it is killed

    async with database(url, apply_migrations=False):
        scheduler = Scheduler(clock=lambda: now, runners={KIND: partial(run_company, checkpoint=hang)}, concurrency=1,
                              replica=REPLICA)
        await scheduler.tick()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
