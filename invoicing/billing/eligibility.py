"""Which orders a run may invoice (DESIGN.md rules 2 and 4–6): one list of rules, read two ways.

``RULES`` is the only statement of eligibility. Each rule says, in one row, why an order
fails it and how to test it on an order's facts; a rule that bounds *which orders a run
looks at at all* also says the same condition as a filter on ``Order``. From that list:

* ``ineligibility_reason`` checks an order in Python and names the first rule it fails;
* ``scope_filter`` is the SQL ``WHERE`` of a run's candidate query: the conjunction of
  the scope rules, so the database never returns an order those rules would refuse.

Scope rules (already invoiced, cancelled, not dispatched, outside the dispatch window)
are filtered in SQL and never reported: a run would otherwise list every order ever
invoiced. The others (on hold, error, no items) are checked in Python on the selected
orders, so ops see them counted per reason in the run report.

Every rule stands alone — a missing dispatch time satisfies no comparison, as NULL does
in SQL — so the conjunction means the same in Python and SQL whatever the order of the
list; the order only decides which reason is reported when several apply.
``tests/invoicing/billing/test_eligibility_sql.py`` checks both readings agree on real
SQLite and PostgreSQL databases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from operator import and_

from tortoise.expressions import Q

from invoicing.validation import EARLIEST, LATEST
from models import OrderStatus

# Reasons are shown to ops as-is and counted per reason in run reports.
ALREADY_INVOICED = "already invoiced"
CANCELLED = "cancelled"
NOT_DISPATCHED = "not dispatched yet"
ON_HOLD = "on hold"
HAS_ERROR = "has an error (include_errors is off)"
BEFORE_STARTING_FROM = "dispatched before starting_from"
AFTER_CUTOFF = "dispatched after this run's cutoff"
NO_ITEMS = "has no items"
DISPATCH_OUT_OF_RANGE = "dispatched_at is out of range (before 0001-01-02 or after 9999-12-30 UTC)"


@dataclass(frozen=True)
class OrderFacts:
    """The facts about an order that decide its eligibility."""

    status: OrderStatus
    dispatched_at: datetime | None
    on_hold: bool
    error: str | None
    invoiced: bool
    item_count: int


@dataclass(frozen=True)
class Window:
    """The dispatch window of a run, ``[starting_from, cutoff)`` (aware datetimes); no ``starting_from`` = open."""

    cutoff: datetime
    starting_from: datetime | None


@dataclass(frozen=True)
class RunSettings(Window):
    """The window plus the integration setting that decides eligibility."""

    include_errors: bool


@dataclass(frozen=True)
class Rule:
    """One condition an order must meet; ``reason`` is what ops read when it does not.

    ``sql`` is the same condition as a filter on ``Order`` for scope rules (failures are
    not reported), None for rules checked on the selected orders only.
    """

    reason: str
    allows: Callable[[OrderFacts, RunSettings], bool]
    sql: Callable[[Window], Q] | None = None


def _dispatched_before_cutoff(o: OrderFacts, s: RunSettings) -> bool:
    return o.dispatched_at is not None and o.dispatched_at < s.cutoff


def _dispatched_from_start(o: OrderFacts, s: RunSettings) -> bool:
    return s.starting_from is None or (o.dispatched_at is not None and o.dispatched_at >= s.starting_from)


RULES: tuple[Rule, ...] = (
    # An order is invoiced at most once, ever.
    Rule(ALREADY_INVOICED, lambda o, s: not o.invoiced, lambda w: Q(invoice_id__isnull=True)),
    Rule(CANCELLED, lambda o, s: o.status != OrderStatus.CANCELLED, lambda w: ~Q(status=OrderStatus.CANCELLED)),
    Rule(NOT_DISPATCHED, lambda o, s: o.status == OrderStatus.DISPATCHED and o.dispatched_at is not None,
         lambda w: Q(status=OrderStatus.DISPATCHED, dispatched_at__isnull=False)),
    # Always skipped; not a setting (product rule since 22-09-2021).
    Rule(ON_HOLD, lambda o, s: not o.on_hold),
    Rule(HAS_ERROR, lambda o, s: not o.error or s.include_errors),
    Rule(BEFORE_STARTING_FROM, _dispatched_from_start,
         lambda w: Q() if w.starting_from is None else Q(dispatched_at__gte=w.starting_from)),
    # A late or retried run never sweeps in later orders.
    Rule(AFTER_CUTOFF, _dispatched_before_cutoff, lambda w: Q(dispatched_at__lt=w.cutoff)),
    Rule(NO_ITEMS, lambda o, s: o.item_count > 0),
    # Rows stored before the feed bounded instants: no time zone could print such a date on the invoice.
    Rule(DISPATCH_OUT_OF_RANGE, lambda o, s: o.dispatched_at is None or EARLIEST <= o.dispatched_at < LATEST),
)


def ineligibility_reason(
    order: OrderFacts, *, cutoff: datetime, starting_from: datetime | None, include_errors: bool
) -> str | None:
    """Return None if the order may be invoiced by a run with ``cutoff``, else why not.

    Prices are checked separately (``invoicing.billing.pricing``): an order can be eligible
    here and still be skipped for a missing price.
    """
    settings = RunSettings(cutoff=cutoff, starting_from=starting_from, include_errors=include_errors)
    return next((rule.reason for rule in RULES if not rule.allows(order, settings)), None)


def scope_filter(cutoff: datetime, starting_from: datetime | None) -> Q:
    """The orders a run with this window looks at, as a filter on ``Order``: the scope rules of ``RULES``.

    An order it leaves out always has an ``ineligibility_reason``; the orders it selects
    still need ``ineligibility_reason`` for the rules checked in Python. The bounds may be in
    any zone: they are bound as UTC, because SQLite keeps datetimes as ISO text and compares
    them as text, which is chronological only between values with the same offset (stored
    ones are UTC).
    """
    window = Window(cutoff=cutoff.astimezone(UTC), starting_from=starting_from and starting_from.astimezone(UTC))
    return reduce(and_, (rule.sql(window) for rule in RULES if rule.sql is not None))
