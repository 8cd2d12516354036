"""Country-dependent required fields and validated accounting values."""

import pytest

from invoicing.errors import InvalidInput
from invoicing.parties.accounting import (
    missing_fields,
    normalise_accounting,
    required_fields,
    update_accounting,
)
from models import Company
from tests import factories as f


def test_a_uk_seller_needs_vat_and_company_number():
    assert required_fields("seller", "GB") == [
        "legal_name", "address_line1", "city", "country", "postcode", "vat_number", "company_number"]


def test_a_us_party_needs_a_state_but_no_vat_number():
    assert required_fields("seller", "US") == ["legal_name", "address_line1", "city", "country", "postcode", "region"]
    assert "vat_number" not in required_fields("buyer", "DE")


def test_the_buyer_needs_the_accounting_email_invoices_go_to():
    assert "email" in required_fields("buyer", "FR") and "email" not in required_fields("seller", "FR")


def test_countries_without_postcodes_do_not_require_one():
    assert "postcode" not in required_fields("buyer", "HK")


def test_missing_fields_lists_empty_required_keys_in_order():
    assert missing_fields({"country": "DE", "legal_name": "X GmbH", "city": " "}, "seller") == [
        "address_line1", "city", "postcode", "vat_number"]


@pytest.mark.parametrize(
    ("country", "given", "stored"),
    [("GB", "GB 980 7806 84", "GB980780684"), ("DE", "136695976", "DE136695976"), ("GR", "094259216", "EL094259216")],
)
def test_vat_numbers_are_validated_with_stdnum_and_stored_compact_with_prefix(country, given, stored):
    assert normalise_accounting({"vat_number": given}, country=country) == {"vat_number": stored}


def test_an_invalid_vat_number_is_refused_with_the_reason():
    with pytest.raises(InvalidInput, match=r"vat_number: 'DE123' is not a valid DE VAT number \(.*length"):
        normalise_accounting({"vat_number": "DE123"}, country="DE")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("email", "ap@", "not a valid e-mail address"),
        ("email", "a@x.com\r\nBcc: evil@x.com", "line breaks"),
        ("iban", "GB00XXXX", "not a valid IBAN"),
        ("bic", "NOPE", "not a valid BIC"),
        ("country", "XX", "not an ISO 3166 country code"),
        ("payment_terms_days", "-3", "between 0 and 365"),
        ("colour", "red", "unknown accounting key"),
    ],
)
def test_bad_values_are_refused_with_an_actionable_message(key, value, message):
    with pytest.raises(InvalidInput, match=message):
        normalise_accounting({key: value}, country="GB")


async def test_an_update_with_one_bad_value_changes_nothing(db):
    t = await f.tenant()
    c = await f.company(t)
    with pytest.raises(InvalidInput):
        await update_accounting(c, {"legal_name": "New Name Ltd", "vat_number": "GB123"})
    assert (await Company.get(id=c.id)).legal_name == "Acme Ltd"


async def test_an_update_reports_old_and_new_values(db):
    t = await f.tenant()
    c = await f.company(t)
    changes = await update_accounting(c, {"legal_name": "Acme Gifts Ltd", "city": "Bristol"})
    assert changes == {"legal_name": ("Acme Ltd", "Acme Gifts Ltd")}
    assert (await Company.get(id=c.id)).legal_name == "Acme Gifts Ltd"
