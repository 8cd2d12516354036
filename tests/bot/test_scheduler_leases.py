"""Scheduler leases across processes: short, renewed by a heartbeat while a run is live, lost when it stops.

Each test starts a real replica in a child process (``tests/bot/scheduler_child.py``)
with a two-second lease; the child and this process read the same real-time clock,
anchored at the slot.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

from bot.app import Service
from bot.scheduled_run import ScheduledOutcome
from bot.scheduler import Scheduler
from bot.settings import Settings
from models import Integration, Invoice, InvoiceRun, Order, RunTrigger
from tests import factories as f
from tests.bot import scheduler_child
from tests.bot.test_scheduler import ROOT, SLOT, SUNDAY, Recorder, at, due_company, integration, setup_tenant

LEASE = 2.0  # seconds, in every child: a heartbeat may come a beat late on a loaded machine


class Child:
    """A replica in its own process, and the files it talks through."""

    def __init__(self, process: asyncio.subprocess.Process, marker: Path) -> None:
        self.process = process
        self.marker = marker
        self.go = Path(f"{marker}.go")
        self.done = Path(f"{marker}.done")

    async def reached_its_run(self) -> None:
        deadline = time.monotonic() + 30
        while not self.marker.exists():
            assert self.process.returncode is None and time.monotonic() < deadline, "the child never reached its run"
            await asyncio.sleep(0.05)

    async def finished(self) -> list[str]:
        assert await asyncio.wait_for(self.process.wait(), 30) == 0
        return self.done.read_text().split()


async def start_child(db, tmp_path: Path, mode: str, epoch: float) -> Child:
    marker = tmp_path / "inside"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bot.scheduler_child", db.url, SLOT.isoformat(), str(epoch), str(marker), mode,
        str(LEASE), cwd=ROOT)
    return Child(process, marker)


def replica_in_this_process(epoch: float) -> Scheduler:
    return Scheduler(clock=scheduler_child.real_time_from(SLOT, epoch), lease=timedelta(seconds=LEASE),
                     replica="survivor")


async def tick_until(scheduler: Scheduler, count: int, *, within: float) -> list[ScheduledOutcome]:
    outcomes: list[ScheduledOutcome] = []
    deadline = time.monotonic() + within
    while len(outcomes) < count:
        assert time.monotonic() < deadline, f"only {len(outcomes)} of {count} taken over within {within} s"
        outcomes += await scheduler.tick()
        await asyncio.sleep(0.05)
    return outcomes


async def test_a_killed_replicas_integrations_are_taken_over_within_its_lease(db, tmp_path):
    t = await setup_tenant()
    for short in ("north", "south", "east"):
        await f.order(await due_company(t, short))
    epoch = time.time()
    child = await start_child(db, tmp_path, "hang", epoch)
    try:
        await child.reached_its_run()
        assert await Integration.filter(lease_owner=scheduler_child.REPLICA).count() == 3
        if db.backend == "postgres":
            assert await _idle_in_transaction() >= 1  # really killed inside the run's transaction
    finally:
        child.process.kill()
        await child.process.wait()
    killed = time.monotonic()

    outcomes = await tick_until(replica_in_this_process(epoch), 3, within=LEASE + 5)
    assert time.monotonic() - killed < LEASE + 3, "picked up within about one lease"
    assert sorted(o.company for o in outcomes) == ["east", "north", "south"]
    assert {o.trigger for o in outcomes} == {RunTrigger.SCHEDULE}  # seconds late, not 15 minutes
    assert sorted(await Invoice.all().values_list("number", flat=True)) == [1, 2, 3]
    assert await Order.filter(invoice_id=None).count() == 0
    assert await InvoiceRun.all().count() == 3  # the killed run left nothing behind
    assert await Integration.filter(lease_owner__not_isnull=True).count() == 0


async def test_a_live_run_slower_than_its_lease_keeps_it_and_runs_once(db, tmp_path):
    t = await setup_tenant()
    c = await due_company(t)
    await f.order(c)
    epoch = time.time()
    child = await start_child(db, tmp_path, "wait", epoch)
    try:
        await child.reached_its_run()
        survivor = replica_in_this_process(epoch)
        until = time.monotonic() + 3 * LEASE
        while time.monotonic() < until:  # three leases long, the heartbeat keeps it
            assert await survivor.tick() == []
            row = await integration(c)
            assert row.lease_owner == scheduler_child.REPLICA
            await asyncio.sleep(0.1)
        child.go.touch()
        assert await child.finished() == ["acme"]
    finally:
        if child.process.returncode is None:
            child.process.kill()
            await child.process.wait()
    assert await Invoice.all().values_list("number", flat=True) == [1]
    assert await InvoiceRun.all().count() == 1
    row = await integration(c)
    assert (row.next_run_at, row.lease_owner, row.lease_until) == (SUNDAY, None, None)


async def test_a_replica_whose_heartbeat_stops_loses_its_lease_and_its_run_does_not_commit(db, tmp_path):
    t = await setup_tenant()
    c = await due_company(t)
    await f.order(c)
    epoch = time.time()
    child = await start_child(db, tmp_path, "wait", epoch)
    try:
        await child.reached_its_run()
        os.kill(child.process.pid, signal.SIGSTOP)  # its event loop, heartbeat included, stands still
        [outcome] = await tick_until(replica_in_this_process(epoch), 1, within=LEASE + 5)
        assert outcome.report.invoice_number == "000001"
        late = await f.order(c, dispatched_at=SLOT - timedelta(hours=1))  # arrived late, still before the slot
        child.go.touch()
        os.kill(child.process.pid, signal.SIGCONT)
        assert await child.finished() == []  # its run found the lease gone and rolled back
    finally:
        if child.process.returncode is None:
            os.kill(child.process.pid, signal.SIGCONT)
            child.process.kill()
            await child.process.wait()
    assert await Invoice.all().values_list("number", flat=True) == [1]
    assert await InvoiceRun.all().count() == 1  # the stalled replica left no trace, not even a failed run
    assert (await Order.get(id=late.id)).invoice_id is None  # left for the next slot
    row = await integration(c)
    assert (row.next_run_at, row.lease_owner) == (SUNDAY, None)


async def test_a_starting_replica_releases_the_leases_of_its_previous_incarnation(db):
    t = await setup_tenant()
    mine = await due_company(t, "mine")
    theirs = await due_company(t, "theirs")
    previous = f"{socket.gethostname()[:40]}-{os.getpid()}-dead00"  # same host and pid, an earlier life
    await Integration.filter(company_id=mine.id).update(lease_owner=previous, lease_until=SLOT + timedelta(hours=1))
    await Integration.filter(company_id=theirs.id).update(lease_owner="elsewhere-1-abcdef",
                                                          lease_until=SLOT + timedelta(hours=1))
    seen = Recorder()
    scheduler = Scheduler(on_result=seen.on_result, clock=at(SLOT))
    loop = asyncio.create_task(scheduler.run_forever())
    try:
        await asyncio.wait_for(seen.arrived.wait(), 5)
    finally:
        scheduler.stop()
        await asyncio.wait_for(loop, 5)
    assert [o.company for o in seen.outcomes] == ["mine"]
    assert (await integration(theirs)).lease_owner == "elsewhere-1-abcdef"  # maybe alive: left alone


async def test_a_sleeping_replica_wakes_when_a_due_lease_runs_out(db):
    t = await setup_tenant()
    c = await due_company(t)
    clock = scheduler_child.real_time_from(SLOT, time.time())
    await Integration.filter(company_id=c.id).update(lease_owner="gone-1-abcdef",
                                                     lease_until=clock() + timedelta(seconds=LEASE))
    seen = Recorder()
    scheduler = Scheduler(on_result=seen.on_result, clock=clock, max_sleep=3600, replica="survivor")
    loop = asyncio.create_task(scheduler.run_forever())
    try:
        await asyncio.wait_for(seen.arrived.wait(), LEASE + 3)  # not after max_sleep (an hour)
    finally:
        scheduler.stop()
        await asyncio.wait_for(loop, 5)
    assert [o.company for o in seen.outcomes] == ["acme"]


def test_the_default_lease_is_a_minute_and_serve_uses_the_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings().scheduler_lease_seconds == 60
    service = Service(Settings(invoicebot_data_dir=tmp_path, scheduler_lease_seconds=7))
    assert service.scheduler.lease == timedelta(seconds=7)
    assert Scheduler().lease == timedelta(seconds=60)


async def _idle_in_transaction() -> int:
    from tortoise import connections

    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'idle in transaction' AND pid <> pg_backend_pid()")
    return rows[0]["n"]
