"""One claimed integration's run, turned into a ``ScheduledOutcome``: every failure is an outcome, never an exception.

The scheduler (``bot/scheduler.py``) claims, leases and advances; this module decides the
run's cutoff (``due_run``: the slot, or a catch-up) and calls the kind's runner. A stored
schedule or zone that no longer parses pauses the integration with a notice; a refusal
(``InvoiceBotError``) or a bug of one company becomes that company's outcome, and the
others go on. ``LeaseLost`` is the one exception that passes: the run rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from invoicing.billing.runs import RunReport
from invoicing.clock import Clock
from invoicing.delivery import notices
from invoicing.errors import InvoiceBotError, NotEligible
from invoicing.integrations.registry import Runner
from invoicing.scheduling.claims import Claim, LeaseLost
from invoicing.scheduling.schedule import DueRun, due_run, parse_schedule
from models import Company, IntegrationKind, RunTrigger, Tenant

log = logging.getLogger(__name__)

ACTOR = "scheduler"


@dataclass(frozen=True)
class ScheduledOutcome:
    """What one scheduled run did, for notifications (Slack) — ``report`` or ``error``."""

    tenant: str
    company: str
    trigger: RunTrigger
    slot: datetime
    cutoff: datetime
    tenant_id: int = 0
    company_id: int = 0
    kind: IntegrationKind = IntegrationKind.PDF_EMAILER
    report: RunReport | None = None
    error: str | None = None
    # True when invoicing was refused (plan, missing details): ops must fix something.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Target:
    """What a claimed integration runs for: read once per run (fresh seller details and plan)."""

    tenant: Tenant
    company: Company
    schedule: str


async def run_integration(claim: Claim, target: Target, runner: Runner, *, clock: Clock, grace: timedelta,
                          hold: Callable[[], Awaitable[None]]) -> tuple[ScheduledOutcome, DueRun | None]:
    """Run one integration; every failure becomes an outcome (logged), never an exception."""
    company = target.company
    base: dict[str, Any] = dict(tenant=target.tenant.name, company=company.short_name, slot=claim.slot,
                                tenant_id=target.tenant.id, company_id=company.id, kind=claim.kind)
    try:
        due = due_run(parse_schedule(target.schedule), company.timezone, slot=claim.slot, now=clock(),
                      grace=grace)
    except (InvoiceBotError, ValueError, KeyError) as bad:  # a stored schedule or zone no longer valid
        log.error("cannot schedule tenant=%s company=%s schedule=%r error=%s", target.tenant.name,
                  company.short_name, target.schedule, bad)
        message = f"Schedule '{target.schedule}' cannot be computed ({bad}); runs paused until it is fixed."
        await notices.queue_schedule_problem(company, claim.integration_id, claim.slot, message, now=clock())
        return ScheduledOutcome(**base, trigger=RunTrigger.SCHEDULE, cutoff=claim.slot, error=message), None
    trigger = trigger_for(due)
    base.update(trigger=trigger, cutoff=due.cutoff)
    try:
        report = await runner(target.tenant, company, trigger=trigger, cutoff=due.cutoff,
                                                 clock=clock, actor=ACTOR,
                                                 lease_check=hold)
    except LeaseLost:
        raise
    except InvoiceBotError as refusal:
        log.warning("run refused tenant=%s company=%s trigger=%s cutoff=%s reason=%s", target.tenant.name,
                    company.short_name, trigger.value, due.cutoff.isoformat(), refusal.message)
        return ScheduledOutcome(**base, error=refusal.message, refused=isinstance(refusal, NotEligible)), due
    except Exception as exc:  # one company's bug must not stop the others
        log.exception("run failed tenant=%s company=%s trigger=%s cutoff=%s", target.tenant.name,
                      company.short_name, trigger.value, due.cutoff.isoformat())
        return ScheduledOutcome(**base, error=f"Run failed ({type(exc).__name__}); nothing was issued."), due
    log_done(target.tenant, company, trigger, due, report)
    return ScheduledOutcome(**base, report=report), due


def trigger_for(due: DueRun) -> RunTrigger:
    """How a scheduled run is recorded: ``catch_up`` after missed slots, else ``schedule``."""
    return RunTrigger.CATCH_UP if due.catch_up else RunTrigger.SCHEDULE


def log_done(tenant: Tenant, company: Company, trigger: RunTrigger, due: DueRun, report: RunReport) -> None:
    """The one log line of a finished scheduled run (single or batched)."""
    log.info("run done tenant=%s company=%s trigger=%s cutoff=%s outcome=%s invoice=%s next=%s",
             tenant.name, company.short_name, trigger.value, due.cutoff.isoformat(), report.outcome.value,
             report.invoice_number, due.next_run_at.isoformat())
