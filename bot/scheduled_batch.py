"""A tick's claimed integrations of one kind, run as batches per tenant (``pdf_emailer.batch``).

The scheduler (``bot/scheduler.py``) hands over the claims of a kind that has a batch runner;
this module renews their leases in one statement, reads their companies and tenants in one
query, works out each one's due run (``scheduling.schedule.due_run``, as ``scheduled_run``
does) and calls the batch runner once per tenant. It returns what was run, what lost its lease
and what is left for the single-run path: a schedule that no longer parses, a company the batch
left out (refused, approval mode, a failed batch). Nothing here raises for one company's sake.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from bot.scheduled_run import ACTOR, ScheduledOutcome, log_done, trigger_for
from invoicing.clock import Clock
from invoicing.errors import InvoiceBotError
from invoicing.integrations.pdf_emailer.batch import BatchItem
from invoicing.integrations.registry import BatchRunner
from invoicing.scheduling import claims
from invoicing.scheduling.claims import Claim
from invoicing.scheduling.schedule import DueRun, due_run, parse_schedule
from models import Integration

log = logging.getLogger(__name__)


@dataclass
class BatchOutcomes:
    """``done``: run, with the due run to advance to; ``lost``: lease lost, nothing written (release them);
    ``alone``: for the single-run path; ``gone``: the integration was deleted after the claim."""

    done: list[tuple[Claim, ScheduledOutcome, DueRun]] = field(default_factory=list)
    lost: list[Claim] = field(default_factory=list)
    alone: list[Claim] = field(default_factory=list)
    gone: list[Claim] = field(default_factory=list)


async def run_batched(batch: list[Claim], runner: BatchRunner, *, replica: str, clock: Clock, grace: timedelta,
                      lease: timedelta) -> BatchOutcomes:
    """Run ``batch`` (claims of one kind) through ``runner``, one call per tenant."""
    out = BatchOutcomes()
    ours = await claims.renew_many(batch, replica, until=clock() + lease)
    rows = {row.id: row for row in await Integration.filter(id__in=[c.integration_id for c in batch if
                                                                       c.integration_id in ours])
            .select_related("company__tenant")}
    by_tenant: dict[int, list[tuple[Claim, Integration, DueRun]]] = defaultdict(list)
    for claim in batch:
        if claim.integration_id not in ours:
            log.warning("lease lost before the run replica=%s integration=%d", replica, claim.integration_id)
            out.lost.append(claim)
            continue
        row = rows.get(claim.integration_id)
        if row is None:
            out.gone.append(claim)
            continue
        try:
            due = due_run(parse_schedule(row.schedule), row.company.timezone, slot=claim.slot, now=clock(),
                          grace=grace)
        except (InvoiceBotError, ValueError, KeyError):  # no longer valid: the single run pauses it, with a notice
            out.alone.append(claim)
            continue
        by_tenant[row.company.tenant_id].append((claim, row, due))
    hold = functools.partial(_hold, replica=replica, clock=clock, lease=lease)
    for group in by_tenant.values():
        tenant = group[0][1].company.tenant
        items = [BatchItem(row.company, row.id, trigger_for(due), due.cutoff) for _, row, due in group]
        try:
            result = await runner(tenant, items, actor=ACTOR, clock=clock, hold=hold)
        except Exception:  # the batch runner promises not to raise; if it did, each company runs alone
            log.exception("batch runner failed tenant=%s companies=%d", tenant.name, len(items))
            result = {}
        for (claim, row, due), item in zip(group, items, strict=True):
            if claim.integration_id not in result:
                out.alone.append(claim)
                continue
            report = result[claim.integration_id]
            if report is None:
                log.warning("lease lost during the run, rolled back replica=%s integration=%d", replica,
                            claim.integration_id)
                out.lost.append(claim)
                continue
            log_done(tenant, row.company, item.trigger, due, report)
            outcome = ScheduledOutcome(tenant=tenant.name, company=row.company.short_name, trigger=item.trigger,
                                       slot=claim.slot, cutoff=due.cutoff, tenant_id=tenant.id,
                                       company_id=row.company.id, kind=claim.kind, report=report)
            out.done.append((claim, outcome, due))
    return out


async def _hold(integration_ids: list[int], *, replica: str, clock: Clock, lease: timedelta) -> set[int]:
    return await claims.hold_many(integration_ids, replica, until=clock() + lease)
