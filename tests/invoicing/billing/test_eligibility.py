"""The eligibility rule as a pure function, checked over every combination of facts."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from invoicing.billing.eligibility import OrderFacts, ineligibility_reason
from models import OrderStatus

CUTOFF = datetime(2026, 11, 8, tzinfo=UTC)
moments = st.one_of(st.none(), st.integers(-30 * 24, 30 * 24).map(lambda h: CUTOFF + timedelta(hours=h)))
facts = st.builds(
    OrderFacts,
    status=st.sampled_from(list(OrderStatus)),
    dispatched_at=moments,
    on_hold=st.booleans(),
    error=st.one_of(st.none(), st.just("artwork missing")),
    invoiced=st.booleans(),
    item_count=st.integers(0, 3),
)


@given(facts, moments, st.booleans())
def test_an_order_is_eligible_exactly_when_every_rule_allows_it(order, starting_from, include_errors):
    reason = ineligibility_reason(order, cutoff=CUTOFF, starting_from=starting_from, include_errors=include_errors)
    allowed = (
        not order.invoiced
        and order.status == OrderStatus.DISPATCHED
        and order.dispatched_at is not None
        and not order.on_hold
        and (order.error is None or include_errors)
        and (starting_from is None or order.dispatched_at >= starting_from)
        and order.dispatched_at < CUTOFF
        and order.item_count > 0
    )
    assert (reason is None) == allowed


@given(facts, moments)
def test_on_hold_is_never_eligible_whatever_the_settings(order, starting_from):
    held = OrderFacts(**{**order.__dict__, "on_hold": True})
    assert ineligibility_reason(held, cutoff=CUTOFF, starting_from=starting_from, include_errors=True) is not None
