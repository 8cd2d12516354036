"""The rounding rule, by worked examples an accountant can recompute, and by properties."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.billing.money import (
    line_net,
    minor_unit,
    parse_amount,
    parse_tax_rate,
    round_money,
    totals,
)
from invoicing.errors import InvalidInput


def test_three_times_0_333_is_rounded_once_per_line_not_per_unit():
    # 3 × 0.333 = 0.999 → 1.00 (rounding each unit first would give 0.99)
    assert line_net(3, D("0.333"), D("0"), "GBP") == D("1.00")


def test_half_a_penny_rounds_up():
    assert round_money(D("2.345"), "GBP") == D("2.35")
    assert round_money(D("2.344999"), "GBP") == D("2.34")


def test_currencies_round_to_their_own_minor_unit():
    assert minor_unit("JPY") == D("1") and round_money(D("1234.5"), "JPY") == D("1235")
    assert minor_unit("BHD") == D("0.001") and round_money(D("1.2345"), "BHD") == D("1.235")


def test_mixed_20_5_and_0_percent_lines_worked_example():
    # lines: 2 × (4.20 + 1.10) @20 %, 3 × 3.333 @20 %, 1 × 9.99 @5 %, 4 × (5.10 + 1.60) @0 %
    lines = [
        (line_net(2, D("4.20"), D("1.10"), "GBP"), D("20")),  # 10.60
        (line_net(3, D("3.333"), D("0"), "GBP"), D("20")),  # 9.999 → 10.00
        (line_net(1, D("9.99"), D("0"), "GBP"), D("5")),  # 9.99
        (line_net(4, D("5.10"), D("1.60"), "GBP"), D("0")),  # 26.80
    ]
    assert [net for net, _ in lines] == [D("10.60"), D("10.00"), D("9.99"), D("26.80")]
    result = totals(lines, "GBP")
    assert [(b.rate, b.net, b.tax) for b in result.bands] == [
        (D("20"), D("20.60"), D("4.12")),  # 20.60 × 20 % = 4.12
        (D("5"), D("9.99"), D("0.50")),  # 9.99 × 5 % = 0.4995 → 0.50
        (D("0"), D("26.80"), D("0.00")),
    ]
    assert (result.net, result.tax, result.gross) == (D("57.39"), D("4.62"), D("62.01"))


def test_vat_is_rounded_once_per_rate_not_per_line():
    # three lines of 0.05 @ 10 %: per line 0.005 → 0.01 each = 0.03; per rate 0.15 × 10 % = 0.015 → 0.02
    result = totals([(D("0.05"), D("10"))] * 3, "GBP")
    assert result.tax == D("0.02")


def test_rates_given_with_different_scales_share_one_band():
    result = totals([(D("1.00"), D("20")), (D("1.00"), D("20.000"))], "GBP")
    assert len(result.bands) == 1 and str(result.bands[0].rate) == "20"


def test_floats_are_refused_and_strings_are_exact():
    with pytest.raises(InvalidInput, match="not a float"):
        parse_amount(0.1, "cost", at_most=D(100))
    assert parse_amount("0.10", "cost", at_most=D(100)) == D("0.10")
    with pytest.raises(InvalidInput, match="not a number"):
        parse_amount("ten", "cost", at_most=D(100))
    with pytest.raises(InvalidInput, match="negative"):
        parse_amount("-1", "cost", at_most=D(100))
    with pytest.raises(InvalidInput, match="between 0 and 100"):
        parse_tax_rate("120")


money = st.decimals(min_value=D("0"), max_value=D("9999"), places=4, allow_nan=False, allow_infinity=False)
rate = st.sampled_from([D("0"), D("5"), D("7"), D("19"), D("20"), D("23")])


@given(st.lists(st.tuples(st.integers(1, 50), money, money, rate), min_size=1, max_size=30))
def test_totals_add_up_exactly_from_the_printed_figures(rows):
    lines = [(line_net(q, c, s, "EUR"), r) for q, c, s, r in rows]
    result = totals(lines, "EUR")
    assert result.net == sum(net for net, _ in lines)
    assert result.tax == sum(b.tax for b in result.bands)
    assert result.gross == result.net + result.tax
    for band in result.bands:
        assert band.tax == round_money(band.net * band.rate / 100, "EUR")
        assert band.tax.as_tuple().exponent == -2


@pytest.mark.parametrize("text", ["1E+999999999", "-1E+999999999", "1E+30", "9" * 40])
def test_an_amount_past_the_limit_in_any_spelling_is_refused_naming_the_limit(text):
    # abs() of 1E+999999999 overflows the decimal context: it was an unhandled error (a 500) before.
    with pytest.raises(InvalidInput, match="too large; at most 100"):
        parse_amount(text, "cost", at_most=D(100), allow_negative=True)


def test_minus_zero_is_zero_and_exponents_are_plain():
    assert str(parse_amount("-0", "cost", at_most=D(100))) == "0"
    assert str(parse_amount("1E+1", "cost", at_most=D(100))) == "10"
