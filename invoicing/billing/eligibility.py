"""Which orders a run may invoice (DESIGN.md rules 2 and 4–6), as one pure function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


@dataclass(frozen=True)
class OrderFacts:
    """The facts about an order that decide its eligibility."""

    status: OrderStatus
    dispatched_at: datetime | None
    on_hold: bool
    error: str | None
    invoiced: bool
    item_count: int


def ineligibility_reason(
    order: OrderFacts, *, cutoff: datetime, starting_from: datetime | None, include_errors: bool
) -> str | None:
    """Return None if the order may be invoiced by a run with ``cutoff``, else why not.

    Prices are checked separately (``invoicing.billing.pricing``): an order can be eligible
    here and still be skipped for a missing price.
    """
    if order.invoiced:
        return ALREADY_INVOICED  # an order is invoiced at most once, ever
    if order.status == OrderStatus.CANCELLED:
        return CANCELLED
    if order.status != OrderStatus.DISPATCHED or order.dispatched_at is None:
        return NOT_DISPATCHED
    if order.on_hold:  # always skipped; not a setting (product rule since 22-09-2021)
        return ON_HOLD
    if order.error and not include_errors:
        return HAS_ERROR
    if starting_from is not None and order.dispatched_at < starting_from:
        return BEFORE_STARTING_FROM
    if order.dispatched_at >= cutoff:
        return AFTER_CUTOFF  # a late or retried run never sweeps in later orders
    if order.item_count == 0:
        return NO_ITEMS
    return None
