"""The BCC field as typed in the product UI: commas and spaces, no injection, no duplicates."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from invoicing.delivery.bcc import MAX_BCC, parse_bcc
from invoicing.errors import InvalidInput


def test_comma_separated_addresses_with_spaces_are_parsed_in_order():
    assert parse_bcc(" ops@inkwell.example,  finance@acme.example ,boss@acme.example") == [
        "ops@inkwell.example", "finance@acme.example", "boss@acme.example"]


def test_spaces_alone_also_separate_addresses():
    assert parse_bcc("ops@inkwell.example finance@acme.example") == ["ops@inkwell.example", "finance@acme.example"]


@pytest.mark.parametrize("text", ["", "   ", ",", " , ,, "])
def test_an_empty_value_means_no_bcc(text):
    assert parse_bcc(text) == []


def test_duplicates_are_dropped_case_insensitively_keeping_the_first_spelling():
    assert parse_bcc("Ops@Inkwell.example, a@b.com, ops@INKWELL.EXAMPLE, OPS@inkwell.example") == [
        "Ops@inkwell.example", "a@b.com"]


def test_a_semicolon_is_not_a_separator_and_names_the_entry():
    with pytest.raises(InvalidInput) as info:
        parse_bcc("a@b.com;c@d.com")
    assert info.value.field == "bcc" and "'a@b.com;c@d.com'" in info.value.reason


def test_an_invalid_address_is_refused_naming_it():
    with pytest.raises(InvalidInput, match="'not-an-address' is not a valid e-mail address"):
        parse_bcc("ok@acme.example, not-an-address")


@pytest.mark.parametrize("text", [
    "a@b.com\r\nRCPT TO:<evil@x.com>", "a@b.com\nc@d.com", "a@b.com,\tc@d.com", "a@b.com\x00", "a@b.com\u2028",
    "a@b.com\x85",
])
def test_line_breaks_and_control_characters_are_refused(text):
    with pytest.raises(InvalidInput, match="line break or control character") as info:
        parse_bcc(text)
    assert info.value.field == "bcc"


def test_the_entry_with_a_line_break_is_named():
    with pytest.raises(InvalidInput, match=r"entry 2 \('c@d.com\\nBcc: x@y.com'\)"):
        parse_bcc("a@b.com, c@d.com\nBcc: x@y.com")


def test_at_most_twenty_distinct_addresses():
    twenty = [f"user{i}@acme.example" for i in range(MAX_BCC)]
    assert parse_bcc(",".join(twenty + twenty[:5])) == twenty
    with pytest.raises(InvalidInput, match="at most 20 addresses; 'extra@acme.example' is one too many"):
        parse_bcc(",".join([*twenty, "extra@acme.example"]))


_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=20).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s)
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_address = st.builds(lambda local, host, tld: f"{local}@{host}.{tld}", _local, _label, st.sampled_from(
    ["com", "co.uk", "de", "example", "org"]))
_separator = st.sampled_from([",", ", ", " ", " , ", ",,", "  "])


@given(st.text())
@example("a@b.com\r\nBcc: evil@x.com")
@example("a@b.com;b@c.com")
def test_any_text_either_parses_or_is_refused_as_invalid_bcc(text):
    try:
        addresses = parse_bcc(text)
    except InvalidInput as refusal:
        assert refusal.field == "bcc"
        return
    assert len(addresses) <= MAX_BCC
    for address in addresses:
        assert "\r" not in address and "\n" not in address and "," not in address and " " not in address
    assert len({a.casefold() for a in addresses}) == len(addresses)


@given(st.lists(_address, max_size=MAX_BCC), st.data())
def test_a_valid_list_round_trips(addresses, data):
    unique = list(dict.fromkeys(addresses))
    text = "".join(a + data.draw(_separator) for a in unique)
    assert parse_bcc(text) == unique
    assert parse_bcc(", ".join(parse_bcc(text))) == unique
