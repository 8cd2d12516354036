"""The scheduler loop: runs every due integration (of any kind) exactly once, across replicas and restarts.

One tick claims the due integrations and runs them with bounded concurrency:

1. **Claim** — ``invoicing.scheduling.claims.claim_due``: one statement leases the
   due integrations of every kind to this replica and returns each one's *slot*.
2. **Run** — the kind's run function (``runners[kind]``; the PDF Emailer's is
   ``invoicing.integrations.pdf_emailer.run.run_company``) with the slot as cutoff (see
   ``invoicing.scheduling.schedule.due_run`` for the catch-up rule). A company that fails
   (refused, failed, any exception) is logged, reported through ``on_result`` and
   never stops the others; the run itself records the refusal or failure.
3. **Advance** — ``next_run_at`` moves to the following slot and the lease is
   released, but only ``WHERE lease_owner = me AND next_run_at = slot``: a
   settings change made meanwhile (``invoicing.integrations.pdf_emailer.settings``) wins.

**Leases** (``invoicing.scheduling.claims`` has the why): short (``lease``, default 60 s,
``SCHEDULER_LEASE_SECONDS``), renewed by a heartbeat task every ``lease / 3`` while the
tick's runs are in flight, and checked by each run inside its own transaction. A
replica that dies mid-run stops renewing; its transaction rolls back with its
connection, and another replica claims the row about one lease later. A replica
whose heartbeat stopped (event loop blocked, database unreachable, process frozen)
loses its leases the same way, and its runs roll back instead of committing
(``LeaseLost``). A replica that starts frees the leases of its previous incarnation
(same host name and pid) at once. Orders are invoiced at most once in any case: runs
of one company serialise on the integration row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from bot.scheduled_batch import run_batched
from bot.scheduled_run import ScheduledOutcome, Target, run_integration
from invoicing.clock import Clock, utc_now
from invoicing.integrations.pdf_emailer import approvals
from invoicing.integrations.registry import BATCH_RUNNERS, RUNNERS, BatchRunner, Runner
from invoicing.scheduling import claims
from invoicing.scheduling.claims import Claim, LeaseLost
from invoicing.scheduling.schedule import DueRun
from models import Integration, IntegrationKind, RunOutcome

log = logging.getLogger(__name__)

#: The default lease: a few heartbeats long, and the longest a crashed replica's runs wait.
DEFAULT_LEASE = timedelta(seconds=60)


OnResult = Callable[[ScheduledOutcome], Awaitable[None]]
AfterCommit = Callable[[], Awaitable[None]]
#: ``sweep(now=, clock=)``: approval reminders and timeouts; truthy when it queued or issued something.
Sweep = Callable[..., Awaitable[object]]


async def _ignore_result(_: ScheduledOutcome) -> None:
    return None


def _incarnation() -> str:
    """``host-pid-``: shared by every replica id this process (or a pid reuse on this host) produces."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-"


def replica_id() -> str:
    """``host-pid-random``: unique per process, readable in ``lease_owner`` when debugging."""
    return f"{_incarnation()}{secrets.token_hex(3)}"


class Scheduler:
    """Dispatches due invoice runs; drive it with ``run_forever()`` or, in tests, ``tick()``."""

    def __init__(
        self,
        *,
        on_result: OnResult = _ignore_result,
        after_commit: AfterCommit | None = None,
        clock: Clock = utc_now,
        runners: Mapping[IntegrationKind, Runner] = RUNNERS,
        batch_runners: Mapping[IntegrationKind, BatchRunner] | None = None,
        concurrency: int = 8,
        batch_size: int = 50,
        lease: timedelta = DEFAULT_LEASE,
        catch_up_grace: timedelta = timedelta(minutes=10),
        max_sleep: float = 60.0,
        shutdown_grace: float = 30.0,
        error_backoff: float = 5.0,
        replica: str | None = None,
        sweep: Sweep = approvals.sweep,
    ) -> None:
        if concurrency < 1 or batch_size < 1:
            raise ValueError("concurrency and batch_size must be at least 1")
        self.replica = (replica or replica_id())[:64]
        self._on_result = on_result
        self._after_commit = after_commit
        self._clock = clock
        self._runners = dict(runners)
        # A kind runs in batches (``bot/scheduled_batch.py``) unless its single runner was replaced
        # (tests that instrument a runner) and no batch runner was given for it.
        self._batch_runners = dict(batch_runners) if batch_runners is not None else {
            kind: batch for kind, batch in BATCH_RUNNERS.items() if self._runners.get(kind) is RUNNERS.get(kind)}
        self._slots = asyncio.Semaphore(concurrency)
        self._batch_size = batch_size
        self._lease = lease
        self._grace = catch_up_grace
        self._max_sleep = max_sleep
        self._shutdown_grace = shutdown_grace
        self._error_backoff = error_backoff
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._claimed_last = 0
        self._held: dict[int, Claim] = {}  # leases of the runs in flight, renewed by the heartbeat
        self._sweep = sweep

    @property
    def lease(self) -> timedelta:
        """How long a claim lasts without a renewal (the heartbeat renews every third of it)."""
        return self._lease

    # --- control -------------------------------------------------------------------------

    def wake(self) -> None:
        """Re-check at once (call after a settings change); harmless when already awake."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; ``run_forever`` lets in-flight runs finish (bounded) and returns."""
        self._stopping.set()
        self._wake.set()

    async def until_idle(self) -> None:
        """Wait until the loop has finished a tick and is sleeping (tests, health checks)."""
        await self._idle.wait()

    # --- the loop --------------------------------------------------------------------------

    async def run_forever(self, *, handle_signals: bool = False) -> None:
        """Tick, sleep until the earliest ``next_run_at`` (at most ``max_sleep``), repeat.

        Returns after ``stop()`` (or SIGTERM/SIGINT with ``handle_signals``) once the
        in-flight runs finished or ``shutdown_grace`` seconds passed; runs still going
        then are cancelled: their transactions roll back and their leases are released.
        """
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        log.info("scheduler started replica=%s", self.replica)
        try:
            await self._release_previous_incarnations()
            while not self._stopping.is_set():
                self._idle.clear()
                self._wake.clear()
                delay = await self._tick_within_grace()
                if self._stopping.is_set():
                    break
                if delay is None:
                    delay = await self._delay_until_due()
                if delay > 0:
                    self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            self._idle.set()
            log.info("scheduler stopped replica=%s", self.replica)

    async def _tick_within_grace(self) -> float | None:
        """One tick; returns a delay to sleep when the next tick should not come at once."""
        task = asyncio.create_task(self.tick())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                done, _ = await asyncio.wait({task}, timeout=self._shutdown_grace)
                if not done:
                    log.warning("shutdown grace over, cancelling runs replica=%s grace_s=%s",
                                self.replica, self._shutdown_grace)
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    return None
        except asyncio.CancelledError:  # the loop itself is cancelled: take the runs down with it
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        finally:
            stopping.cancel()
        if task.exception() is not None:  # a tick-wide failure (database down): log, back off, retry
            log.error("tick failed replica=%s", self.replica, exc_info=task.exception())
            return self._error_backoff
        # A full batch means more may be due right now.
        return 0.0 if self._claimed_last >= self._batch_size else None

    async def _release_previous_incarnations(self) -> None:
        """A process restarted with the same host and pid (containers: pid 1) frees its old leases now.

        Assumes one looping scheduler with a generated id per process (as in ``serve``):
        a second one started in the same process would free the first one's leases.
        """
        if not self.replica.startswith(_incarnation()):
            return  # an id given by the caller: nothing to recognise it by
        try:
            released = await claims.release_previous_incarnations(self.replica, _incarnation())
        except Exception:  # the leases then expire on their own
            log.exception("could not release leases of a previous incarnation replica=%s", self.replica)
            return
        if released:
            log.warning("released leases of a previous incarnation replica=%s count=%d", self.replica, released)

    async def _delay_until_due(self) -> float:
        now = self._clock()
        try:
            due_at = await claims.earliest_due(now, kinds=list(self._runners))
        except Exception:  # database trouble: poll again later
            log.exception("could not read the next due time replica=%s", self.replica)
            return self._error_backoff
        if due_at is None:
            return self._max_sleep
        return min(self._max_sleep, max(0.0, (due_at - now).total_seconds()))

    # --- one tick ----------------------------------------------------------------------------

    async def tick(self) -> list[ScheduledOutcome]:
        """Claim what is due now (one batch) and run it; returns when those runs are done."""
        if self._stopping.is_set():
            return []
        claims = await self.claim_due()
        self._claimed_last = len(claims)
        if claims:
            log.info("claimed replica=%s count=%d", self.replica, len(claims))
        self._held.update((claim.integration_id, claim) for claim in claims)
        heartbeat = asyncio.create_task(self._heartbeat()) if claims else None
        batched: dict[IntegrationKind, list[Claim]] = {}
        for claim in claims:
            if claim.kind in self._batch_runners:
                batched.setdefault(claim.kind, []).append(claim)
        alone = [claim for claim in claims if claim.kind not in batched]
        try:
            results, batch_results = await asyncio.gather(
                asyncio.gather(*(self._run_claimed(claim) for claim in alone), return_exceptions=True),
                asyncio.gather(*(self._run_batch(kind, group) for kind, group in batched.items()),
                               return_exceptions=True))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                await asyncio.gather(heartbeat, return_exceptions=True)
        outcomes: list[ScheduledOutcome] = []
        for kind, batch_result in zip(batched, batch_results, strict=True):
            if isinstance(batch_result, BaseException):  # the leases expire and a later tick retries the slots
                log.error("batched scheduling failed kind=%s replica=%s", kind.value, self.replica,
                          exc_info=batch_result)
            else:
                outcomes += batch_result
        for claim, result in zip(alone, results, strict=True):
            if isinstance(result, asyncio.CancelledError):  # that run only; its lease was released
                log.warning("run cancelled integration=%d replica=%s", claim.integration_id, self.replica)
            elif isinstance(result, BaseException):
                # Outside the run itself (loading the company, the database): the lease
                # expires and a later tick retries the slot; the others went on.
                log.error("scheduling failed integration=%d replica=%s", claim.integration_id, self.replica,
                          exc_info=result)
            elif result is not None:
                outcomes.append(result)
        await self._sweep_approvals()
        return outcomes

    async def _sweep_approvals(self) -> None:
        """Approval reminders and timeouts (``pdf_emailer.approvals.sweep``: safe on every replica, each
        decision under its integration's row lock); a failure is logged and never stops the tick."""
        try:
            swept = await self._sweep(now=self._clock(), clock=self._clock)
        except Exception:  # the next tick sweeps again
            log.exception("approval sweep failed replica=%s", self.replica)
            return
        if swept and self._after_commit is not None:
            try:
                await self._after_commit()  # e-mails and notices the sweep queued
            except Exception:  # the outboxes poll on their own schedule
                log.exception("after_commit failed after the approval sweep replica=%s", self.replica)

    async def claim_due(self) -> list[Claim]:
        """Lease up to ``batch_size`` due integrations of any kind to this replica (one statement)."""
        return await claims.claim_due(self.replica, now=self._clock(), lease=self._lease, limit=self._batch_size,
                                      kinds=list(self._runners))

    async def _heartbeat(self) -> None:
        """Renew every lease of the runs in flight, every ``lease / HEARTBEAT_FRACTION``, until cancelled.

        A failed renewal is logged and retried at the next beat; a lease lost meanwhile
        (another replica claimed it) stays lost and its run will not commit.
        """
        interval = self._lease.total_seconds() / claims.HEARTBEAT_FRACTION
        while True:
            await asyncio.sleep(interval)
            try:
                await claims.heartbeat(self.replica, list(self._held), until=self._clock() + self._lease)
            except Exception:  # database trouble: the next beat tries again
                log.warning("lease heartbeat failed replica=%s held=%d", self.replica, len(self._held), exc_info=True)

    async def _run_claimed(self, claim: Claim) -> ScheduledOutcome | None:
        async with self._slots:
            try:
                if self._stopping.is_set() or not await self._lease_still_ours(claim):
                    await self._release(claim)  # not started: free it for another replica now
                    return None
                target = await self._target(claim)
                if target is None:
                    return None
                outcome, due = await run_integration(claim, target, self._runners[claim.kind], clock=self._clock,
                                                     grace=self._grace, hold=functools.partial(self._hold, claim))
            except asyncio.CancelledError:  # shutdown past its grace: the run rolled back
                await asyncio.shield(self._release(claim))
                raise
            except LeaseLost:  # another replica has the slot; this run rolled back and leaves no trace
                log.warning("lease lost during the run, rolled back replica=%s integration=%d", self.replica,
                            claim.integration_id)
                return None
            finally:
                self._held.pop(claim.integration_id, None)
            await self._advance(claim, due)
        await self._announce(outcome)
        return outcome

    async def _run_batch(self, kind: IntegrationKind, batch: list[Claim]) -> list[ScheduledOutcome]:
        """Run ``batch`` through the kind's batch runner; what it leaves runs alone, as before."""
        async with self._slots:
            if self._stopping.is_set():
                for claim in batch:
                    self._held.pop(claim.integration_id, None)
                    await self._release(claim)
                return []
            try:
                ran = await run_batched(batch, self._batch_runners[kind], replica=self.replica, clock=self._clock,
                                        grace=self._grace, lease=self._lease)
            except asyncio.CancelledError:  # shutdown past its grace: the batch rolled back
                for claim in batch:
                    await asyncio.shield(self._release(claim))
                raise
            finally:
                for claim in batch:
                    self._held.pop(claim.integration_id, None)
        self._held.update((claim.integration_id, claim) for claim in ran.alone)  # _run_claimed lets them go
        for claim in (*ran.lost, *ran.gone):
            await self._release(claim)
        advanced = await claims.advance_many([(claim, due.next_run_at) for claim, _, due in ran.done], self.replica)
        for claim, _, _ in ran.done:
            if claim.integration_id not in advanced:
                await self._release(claim)
                log.info("next run left as changed meanwhile integration=%d", claim.integration_id)
        alone = await asyncio.gather(*(self._run_claimed(claim) for claim in ran.alone), return_exceptions=True)
        outcomes = [outcome for _, outcome, _ in ran.done]
        for outcome in outcomes:
            await self._announce(outcome, after_commit=False)
        if self._after_commit is not None and any(o.report is not None and o.report.outcome == RunOutcome.INVOICED
                                                  for o in outcomes):
            try:
                await self._after_commit()
            except Exception:  # the outbox retries deliveries on its own schedule
                log.exception("after_commit failed after a batch replica=%s", self.replica)
        for claim, result in zip(ran.alone, alone, strict=True):
            if isinstance(result, BaseException):
                log.error("scheduling failed integration=%d replica=%s", claim.integration_id, self.replica,
                          exc_info=result)
            elif result is not None:
                outcomes.append(result)
        return outcomes

    async def _target(self, claim: Claim) -> Target | None:
        row = await Integration.get_or_none(id=claim.integration_id).select_related("company__tenant")
        if row is None:  # the company was deleted after the claim
            return None
        # The one read of tenant and company for this run: fresh seller details and plan.
        return Target(row.company.tenant, row.company, row.schedule)

    async def _lease_still_ours(self, claim: Claim) -> bool:
        """Renew the lease before a run starts; False when it was lost while the run queued.

        The run checks again inside its transaction (``_hold``); this check keeps a run
        that lost its lease from even recording a refusal.
        """
        renewed = await claims.renew(claim, self.replica, until=self._clock() + self._lease)
        if not renewed:
            log.warning("lease lost before the run replica=%s integration=%d", self.replica, claim.integration_id)
        return bool(renewed)

    async def _hold(self, claim: Claim) -> None:
        """The runner's ``lease_check``: inside the run's transaction, the lease is ours or ``LeaseLost``."""
        await claims.hold(claim, self.replica, until=self._clock() + self._lease)

    async def _advance(self, claim: Claim, due: DueRun | None) -> None:
        """Set the next slot and release the lease — unless settings changed meanwhile (they win)."""
        try:
            advanced = await claims.advance(claim, self.replica, due.next_run_at if due else None)
            if not advanced:
                await self._release(claim)
                log.info("next run left as changed meanwhile integration=%d", claim.integration_id)
        except Exception:  # the lease then expires and another tick retries the slot
            log.exception("could not advance integration=%d replica=%s", claim.integration_id, self.replica)

    async def _release(self, claim: Claim) -> None:
        await claims.release(claim, self.replica)

    async def _announce(self, outcome: ScheduledOutcome, *, after_commit: bool = True) -> None:
        """Notify; a failing hook is logged and never affects the run or the other companies."""
        try:
            await self._on_result(outcome)
        except Exception:  # notifications are best effort; the run is recorded
            log.exception("on_result failed tenant=%s company=%s", outcome.tenant, outcome.company)
        if after_commit and self._after_commit is not None and outcome.report is not None and \
                outcome.report.outcome == RunOutcome.INVOICED:
            try:
                await self._after_commit()
            except Exception:  # the outbox retries deliveries on its own schedule
                log.exception("after_commit failed tenant=%s company=%s", outcome.tenant, outcome.company)
