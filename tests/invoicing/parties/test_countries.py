"""The EU member states and VAT prefixes, stated once for accounting details and VAT notices."""

from invoicing.billing.vat_rules import eu_country
from invoicing.parties.accounting import required_fields
from invoicing.parties.countries import EU_MEMBER_STATES, eu_member_state, vat_prefix


def test_the_eu_has_27_member_states_and_the_uk_is_not_one():
    assert len(EU_MEMBER_STATES) == 27
    assert "GB" not in EU_MEMBER_STATES and "XI" not in EU_MEMBER_STATES


def test_greece_is_gr_as_a_country_and_el_as_a_vat_prefix():
    assert vat_prefix("GR") == "EL" and vat_prefix("DE") == "DE"
    assert eu_member_state("el") == eu_member_state(" GR ") == "GR"


def test_every_member_state_means_the_same_to_accounting_and_to_vat_notices():
    for country in EU_MEMBER_STATES:
        assert eu_country(country) == country
        assert "vat_number" in required_fields("seller", country)
