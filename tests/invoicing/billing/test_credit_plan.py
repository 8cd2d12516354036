"""The arithmetic of credit notes over plain values: never beyond what remains, exact once all is credited."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.billing.credit_plan import Band, CreditableLine, parse_selection, plan_credit
from invoicing.billing.money import line_net, totals
from invoicing.errors import Conflict, InvalidInput

WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def _lines(specs: list[tuple[int, Decimal, Decimal]], currency: str) -> list[CreditableLine]:
    return [CreditableLine(invoice_line_id=k, position=k, order_id=k, order_ref=f"O-{k}", dispatched_at=WHEN,
                           sku="MUG", description="Mug", quantity=quantity, unit_cost=cost, unit_shipping=Decimal(0),
                           tax_rate=rate, vat_category="S" if rate else "Z",
                           net=line_net(quantity, cost, Decimal(0), currency))
            for k, (quantity, cost, rate) in enumerate(specs, start=1)]


def _invoice_bands(lines: list[CreditableLine], currency: str) -> list[Band]:
    money = totals(((line.net, line.tax_rate) for line in lines), currency)
    return [Band("S" if b.rate else "Z", b.rate, b.net, b.tax) for b in money.bands]


def _after(lines: list[CreditableLine], plan) -> list[CreditableLine]:
    taken = {line.invoice_line_id: line for line in plan.lines}
    return [CreditableLine(**{**vars(line), "credited_quantity": line.credited_quantity + taken[line.position].quantity,
                              "credited_net": line.credited_net + taken[line.position].net})
            if line.position in taken else line for line in lines]


@pytest.mark.parametrize(("text", "expected"), [
    ("all", None), (" ALL ", None), ("1", {1: None}), ("1,4-6", {1: None, 4: None, 5: None, 6: None}),
    ("2:1, 3", {2: 1, 3: None}), (" 7 - 8 ", {7: None, 8: None}),
])
def test_line_selections_parse(text, expected):
    assert parse_selection(text) == expected


@pytest.mark.parametrize("text", ["", "0", "x", "1,,2", "3-1", "1,1", "2:0", "1-3:1", "²", "1" * 7, "1;2", "-1"])
def test_bad_line_selections_are_refused_naming_lines(text):
    with pytest.raises(InvalidInput) as refused:
        parse_selection(text)
    assert refused.value.field == "lines"


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(st.tuples(st.integers(1, 5), st.decimals("0.0001", "99.9999", places=4),
                             st.sampled_from([Decimal(20), Decimal("5.5"), Decimal(0), Decimal(7)])),
                   min_size=1, max_size=6),
    steps=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 5)), max_size=30),
    currency=st.sampled_from(["GBP", "JPY", "BHD"]),
)
def test_any_sequence_of_credits_never_exceeds_the_invoice_and_adds_up_exactly(specs, steps, currency):
    lines = _lines(specs, currency)
    bands = _invoice_bands(lines, currency)
    invoice_net = sum((b.net for b in bands), Decimal(0))
    invoice_tax = sum((b.tax for b in bands), Decimal(0))
    credited: list[Band] = []
    for position, units in steps:
        try:
            plan = plan_credit("000001", currency, lines, bands, credited, {position: units})
        except InvalidInput:
            continue
        assert plan.gross > 0 or plan.net == 0
        lines = _after(lines, plan)
        credited.extend(plan.bands)
        assert all(line.credited_quantity <= line.quantity and line.credited_net <= line.net for line in lines)
        assert plan.remaining_net >= 0 and plan.remaining_tax >= 0
    if any(line.remaining_quantity for line in lines):
        plan = plan_credit("000001", currency, lines, bands, credited, None)  # void what remains
        lines = _after(lines, plan)
        credited.extend(plan.bands)
        assert (plan.remaining_net, plan.remaining_tax) == (0, 0)
    assert sum((b.net for b in credited), Decimal(0)) == invoice_net
    assert sum((b.tax for b in credited), Decimal(0)) == invoice_tax
    with pytest.raises(Conflict):
        plan_credit("000001", currency, lines, bands, credited, None)
