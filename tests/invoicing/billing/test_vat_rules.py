"""Which VAT category a line gets, and which categories a rate allows (EN 16931 BT-151)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.billing.vat_rules import CATEGORIES, check_category, derive_category, exemption_code, parse_category
from invoicing.errors import InvalidInput

ZERO, TWENTY = Decimal(0), Decimal(20)


@pytest.mark.parametrize(
    ("seller", "buyer", "vat_number", "rate", "category"),
    [
        pytest.param("DE", "DE", "DE136695976", TWENTY, "S", id="domestic DE→DE is standard rated"),
        pytest.param("DE", "DE", "", ZERO, "Z", id="domestic at 0 % is zero rated"),
        pytest.param("DE", "FR", "FR40303265045", ZERO, "K", id="DE→FR goods to a VAT-registered buyer: K"),
        pytest.param("DE", "EL", "EL094259216", ZERO, "K", id="Greece by its VAT prefix EL"),
        pytest.param("FR", "DE", "", ZERO, "Z", id="FR→DE without a buyer VAT number is not K"),
        pytest.param("FR", "DE", "", TWENTY, "S", id="FR→DE without a buyer VAT number charging VAT: S"),
        pytest.param("FR", "DE", "DE136695976", TWENTY, "S", id="a VAT charge is never K"),
        pytest.param("DE", "US", "", ZERO, "G", id="EU seller exporting outside the EU: G"),
        pytest.param("DE", "GB", "GB980780684", ZERO, "G", id="EU seller to the UK: export"),
        pytest.param("DE", "XI", "", ZERO, "G", id="Northern Ireland is outside the EU here"),
        pytest.param("GB", "US", "", ZERO, "G", id="GB→US: zero-rated export"),
        pytest.param("GB", "FR", "FR40303265045", ZERO, "G", id="GB→EU is an export from the UK, never K"),
        pytest.param("GB", "GB", "", ZERO, "Z", id="GB domestic at 0 %: zero rated"),
        pytest.param("GB", "XI", "", ZERO, "Z", id="GB→Northern Ireland stays in the UK"),
        pytest.param("GB", "GB", "GB980780684", TWENTY, "S", id="GB domestic standard rate"),
        pytest.param("US", "CA", "", ZERO, "G", id="another seller exporting"),
        pytest.param("US", "US", "", ZERO, "Z", id="another seller at home"),
    ],
)
def test_the_default_category_follows_countries_and_the_buyer_vat_number(seller, buyer, vat_number, rate, category):
    assert derive_category(seller, buyer, vat_number, rate) == category


@given(st.sampled_from(["DE", "FR", "GB", "US", "PL"]), st.sampled_from(["DE", "FR", "GB", "US", "JP"]),
       st.sampled_from(["", "X1"]), st.decimals(min_value=0, max_value=100, places=3))
def test_a_derived_category_never_contradicts_its_rate(seller, buyer, vat_number, rate):
    category = derive_category(seller, buyer, vat_number, rate)
    check_category(category, rate, "VATEX-EU-132" if category == "E" else "")


@pytest.mark.parametrize(("category", "rate", "why"), [
    ("S", ZERO, "S (standard rate) needs a VAT rate above 0 %"),
    ("K", TWENTY, "K is a 0 % category but the VAT rate is 20 %"),
    ("G", Decimal("7.7"), "G is a 0 % category"),
    ("AE", TWENTY, "AE is a 0 % category"),
    ("Z", Decimal("5"), "Z is a 0 % category"),
])
def test_a_category_that_contradicts_the_rate_is_refused(category, rate, why):
    with pytest.raises(InvalidInput) as refused:
        check_category(category, rate)
    assert refused.value.field == "category" and why in refused.value.reason


def test_an_exempt_price_needs_its_vatex_code_and_no_other_category_takes_one():
    assert check_category("E", ZERO, "vatex-eu-132") == "VATEX-EU-132"
    assert check_category("E", ZERO, "VATEX-EU-132-1G") == "VATEX-EU-132-1G"
    assert check_category("E", ZERO, "VATEX-FR-FRANCHISE") == "VATEX-FR-FRANCHISE"
    for bad in ("", "VATEX-EU-IC", "VATEX-EU-999", "132"):
        with pytest.raises(InvalidInput, match="exemption"):
            check_category("E", ZERO, bad)
    with pytest.raises(InvalidInput, match="only for category=E"):
        check_category("K", ZERO, "VATEX-EU-132")


def test_categories_parse_case_insensitively_and_auto_clears_the_override():
    assert parse_category(" k ") == "K" and parse_category("ae") == "AE"
    assert parse_category("auto") == "" and parse_category("") == ""
    with pytest.raises(InvalidInput, match="not a VAT category"):
        parse_category("X")
    assert set(CATEGORIES) == {"S", "Z", "E", "AE", "K", "G", "O"}


def test_every_zero_rated_category_but_z_has_its_vatex_code():
    assert {c: exemption_code(c) for c in CATEGORIES} == {
        "S": "", "Z": "", "K": "VATEX-EU-IC", "G": "VATEX-EU-G", "AE": "VATEX-EU-AE", "E": "", "O": "VATEX-EU-O"}
    assert exemption_code("E", "VATEX-EU-132") == "VATEX-EU-132"
