"""The eligibility rules read two ways agree: the SQL scope filter and the Python rule, on a real database.

A run selects candidates with ``scope_filter`` and then checks each with
``ineligibility_reason``. That is only right if the filter leaves out exactly the orders a
scope rule refuses — no eligible order lost, no refused one let through — on both
backends, including NULL dispatch times, instants equal to the cutoff or to
``starting_from``, and bounds written in other time zones than UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.billing.eligibility import (
    AFTER_CUTOFF,
    ALREADY_INVOICED,
    BEFORE_STARTING_FROM,
    CANCELLED,
    NOT_DISPATCHED,
    RULES,
    OrderFacts,
    RunSettings,
    ineligibility_reason,
    scope_filter,
)
from models import Invoice, Order, OrderItem, OrderStatus
from tests import factories as f

CUTOFF = datetime(2026, 11, 8, tzinfo=UTC)
ZONES = (ZoneInfo("America/New_York"), timezone(timedelta(hours=5, minutes=30)), UTC)
#: The reasons a run never reports (its query leaves such orders out); the others are counted as skipped.
SCOPE_REASONS = {ALREADY_INVOICED, CANCELLED, NOT_DISPATCHED, BEFORE_STARTING_FROM, AFTER_CUTOFF}
_TICK = timedelta(microseconds=1)
_HOURS = st.integers(-10 * 24, 2 * 24).map(lambda h: timedelta(hours=h))


def near(moment: datetime) -> st.SearchStrategy[datetime]:
    """Instants on ``moment``, a microsecond either side, or hours away."""
    return st.one_of(st.sampled_from([moment, moment + _TICK, moment - _TICK]), _HOURS.map(lambda h: moment + h))


def in_any_zone(moments: st.SearchStrategy[datetime]) -> st.SearchStrategy[datetime]:
    """The same instants written in one of ``ZONES`` (a run's bounds may come in any zone)."""
    return st.builds(lambda moment, zone: moment.astimezone(zone), moments, st.sampled_from(ZONES))


def dispatch_times(bounds: list[datetime]) -> st.SearchStrategy[datetime | None]:
    """None, exactly on a bound (most often: where a wrong operator shows), a microsecond off, or hours off."""
    # hypothesis favours the first elements of a sampled list: the exact bounds come first.
    exact = [*bounds, *bounds, *(b + d for b in bounds for d in (_TICK, -_TICK)), None]
    return st.one_of(st.sampled_from(exact), st.builds(lambda b, h: b + h, st.sampled_from(bounds), _HOURS))


def orders(starting_from: datetime | None) -> st.SearchStrategy[list[OrderFacts]]:
    """Orders as stored: dispatch times in UTC, as every write path stores them (``order_sync``)."""
    bounds = [CUTOFF] if starting_from is None else [starting_from.astimezone(UTC), CUTOFF]
    return st.lists(
        st.builds(
            OrderFacts,
            # Weighted towards the orders a run may pick up, where the bounds decide.
            status=st.sampled_from([OrderStatus.DISPATCHED] * 5 + [s for s in OrderStatus if s != "dispatched"]),
            dispatched_at=dispatch_times(bounds),
            on_hold=st.booleans(),
            error=st.sampled_from([None, "", "artwork missing"]),
            invoiced=st.sampled_from([False, False, False, True]),
            item_count=st.integers(0, 2),
        ),
        min_size=1,
        max_size=10,
    )


@pytest.fixture
async def shop(db) -> tuple[int, int]:
    """A company and an issued invoice for "invoiced" orders to point at (its contents do not matter)."""
    t = await f.tenant()
    company = await f.company(t)
    invoice = await Invoice.create(
        tenant_id=t.id, company_id=company.id, number=1, display_number="000001", issued_at=CUTOFF,
        period_start=None, period_end=CUTOFF, currency="GBP", timezone="Europe/London", seller={}, buyer={},
        net_total=Decimal(0), tax_total=Decimal(0), gross_total=Decimal(0), tax_breakdown=[], order_count=0,
        payment_terms_days=30,
    )
    return company.id, invoice.id


# One database per test (the fixture), shared by its examples: each example replaces the orders.
@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_the_scope_filter_selects_exactly_the_orders_the_scope_rules_allow(shop, data):
    company_id, invoice_id = shop
    cutoff = CUTOFF.astimezone(data.draw(st.sampled_from(ZONES), "cutoff zone"))
    start = in_any_zone(near(CUTOFF - timedelta(days=3)))
    starting_from = data.draw(st.one_of(st.none(), start), "starting_from")
    facts = data.draw(orders(starting_from), "orders")
    include_errors = data.draw(st.booleans(), "include_errors")

    await OrderItem.all().delete()
    await Order.all().delete()
    by_id: dict[int, OrderFacts] = {}
    for i, order in enumerate(facts):
        row = await Order.create(
            company_id=company_id, external_ref=f"SO-{i}", status=order.status, dispatched_at=order.dispatched_at,
            on_hold=order.on_hold, error=order.error, invoice_id=invoice_id if order.invoiced else None,
        )
        await OrderItem.bulk_create([OrderItem(order_id=row.id, position=n, sku="MUG", quantity=1)
                                     for n in range(order.item_count)])
        by_id[row.id] = order

    selected = set(await Order.filter(scope_filter(cutoff, starting_from), company_id=company_id)
                   .values_list("id", flat=True))

    def reason(order: OrderFacts) -> str | None:
        return ineligibility_reason(order, cutoff=cutoff, starting_from=starting_from, include_errors=include_errors)

    run = RunSettings(cutoff=cutoff, starting_from=starting_from, include_errors=include_errors)
    eligible = {id_ for id_, order in by_id.items() if reason(order) is None}
    assert {id_ for id_ in selected if reason(by_id[id_]) is None} == eligible
    assert all(reason(order) is not None for id_, order in by_id.items() if id_ not in selected)
    # Exactly the scope rules: nothing a run should report as skipped is filtered away.
    in_scope = [rule for rule in RULES if rule.reason in SCOPE_REASONS]
    assert selected == {id_ for id_, order in by_id.items() if all(r.allows(order, run) for r in in_scope)}


def test_the_rules_filtered_in_sql_are_exactly_the_unreported_ones():
    assert {rule.reason for rule in RULES if rule.sql is not None} == SCOPE_REASONS
