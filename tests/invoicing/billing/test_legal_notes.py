"""The wording of every 0 % row and legal note: one test per rule, in the invoice language."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.billing.breakdown import CategorizedNet, breakdown_json, tax_breakdown
from invoicing.billing.languages import LANGUAGES, default_language, invoice_language, parse_language
from invoicing.billing.legal_notes import exemption_reason, legal_notes
from invoicing.billing.money import totals
from invoicing.billing.vat_rules import derive_category
from invoicing.errors import InvalidInput

ZERO, TWENTY = Decimal(0), Decimal(20)


def notes_for(seller: str, buyer: str, vat_number: str, rate: Decimal, language: str = "en") -> tuple[str, ...]:
    category = derive_category(seller, buyer, vat_number, rate)
    code = {"K": "VATEX-EU-IC", "G": "VATEX-EU-G"}.get(category, "")
    return legal_notes([(category, rate, code)], seller, language)


def test_de_to_fr_goods_is_an_exempt_intra_community_supply_citing_the_ustg():
    assert notes_for("DE", "FR", "FR40303265045", ZERO, "de") == (
        "Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1b i. V. m. § 6a UStG).",)


def test_a_german_seller_invoicing_in_french_cites_the_ustg_and_article_138_in_french():
    (note,) = notes_for("DE", "FR", "FR40303265045", ZERO, "fr")
    assert note == ("Livraison intracommunautaire de biens exonérée de TVA (§ 4 Nr. 1b i. V. m. § 6a UStG; "
                    "article 138 de la directive 2006/112/CE).")


def test_other_eu_sellers_cite_article_138_never_the_reverse_charge_of_article_196():
    (note,) = notes_for("FR", "DE", "DE136695976", ZERO, "en")
    assert note == "Exempt intra-Community supply of goods (Article 138 Directive 2006/112/EC)."
    assert "196" not in note and "everse charge" not in note


def test_fr_to_de_without_a_buyer_vat_number_charges_vat_and_prints_no_note():
    assert derive_category("FR", "DE", "", TWENTY) == "S"
    assert notes_for("FR", "DE", "", TWENTY) == ()


def test_de_to_de_is_domestic_with_no_note():
    assert notes_for("DE", "DE", "DE136695976", Decimal(19), "de") == ()
    assert notes_for("DE", "DE", "DE136695976", ZERO, "de") == ()  # Z: a reason on its row, no note


def test_gb_to_us_is_a_zero_rated_export():
    assert notes_for("GB", "US", "", ZERO) == ("Zero-rated export of goods (VAT Notice 703).",)


def test_an_eu_export_cites_article_146_and_a_german_one_the_ustg():
    assert notes_for("NL", "US", "", ZERO, "nl") == (
        "Vrijgestelde uitvoer van goederen buiten de EU (artikel 146 van Richtlijn 2006/112/EG).",)
    assert notes_for("DE", "CH", "", ZERO, "de") == ("Steuerfreie Ausfuhrlieferung (§ 4 Nr. 1a i. V. m. § 6 UStG).",)


def test_another_sellers_export_claims_no_eu_article():
    (note,) = notes_for("US", "CA", "", ZERO)
    assert note == "Export of goods: no VAT charged." and "Article" not in note


def test_reverse_charge_cites_article_196_in_the_language_versions_wording():
    assert legal_notes([("AE", ZERO, "VATEX-EU-AE")], "FR", "fr") == ("Autoliquidation (article 196 de la directive "
                                                                       "2006/112/CE).",)
    assert legal_notes([("AE", ZERO, "VATEX-EU-AE")], "DE", "de") == (
        "Steuerschuldnerschaft des Leistungsempfängers (Art. 196 Richtlinie 2006/112/EG).",)
    assert legal_notes([("AE", ZERO, "VATEX-EU-AE")], "PL", "pl") == (
        "Odwrotne obciążenie (art. 196 dyrektywy 2006/112/WE).",)


def test_an_exempt_row_states_the_article_of_its_vatex_code():
    assert legal_notes([("E", ZERO, "VATEX-EU-132-1G")], "IT", "it") == (
        "Esente IVA (articolo 132 della direttiva 2006/112/CE).",)
    assert legal_notes([("E", ZERO, "VATEX-FR-FRANCHISE")], "FR", "fr") == ("TVA non applicable, art. 293 B du CGI.",)


def test_outside_the_scope_of_vat():
    assert legal_notes([("O", ZERO, "VATEX-EU-O")], "ES", "es") == ("No sujeto a IVA.",)


def test_a_note_never_stands_beside_a_standard_rate_row_that_contradicts_it():
    # A K row "at 20 %" cannot exist (refused at price time); if one did, it gets no note.
    assert legal_notes([("K", TWENTY, "VATEX-EU-IC")], "DE", "de") == ()
    assert legal_notes([("S", TWENTY, ""), ("S", Decimal(7), "")], "DE", "de") == ()


def test_a_mixed_invoice_gets_one_note_per_category_in_breakdown_order():
    notes = legal_notes([("S", TWENTY, ""), ("G", ZERO, "VATEX-EU-G"), ("K", ZERO, "VATEX-EU-IC"),
                         ("K", ZERO, "VATEX-EU-IC"), ("Z", ZERO, "")], "FR", "en")
    assert notes == ("Exempt intra-Community supply of goods (Article 138 Directive 2006/112/EC).",
                     "Exempt export of goods outside the EU (Article 146 Directive 2006/112/EC).")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("category", ["Z", "K", "G", "AE", "E", "O"])
def test_every_zero_rated_category_has_a_reason_in_every_language(language, category):
    reason = exemption_reason(category, "FR", language, "VATEX-EU-132" if category == "E" else "")
    assert reason and (language == "en" or reason != exemption_reason(category, "FR", "en", "VATEX-EU-132"))


def test_the_breakdown_is_per_category_and_rate_with_reason_and_vatex_on_every_zero_rate():
    lines = [CategorizedNet(Decimal("10.00"), TWENTY, "S"), CategorizedNet(Decimal("5.55"), ZERO, "K"),
             CategorizedNet(Decimal("4.45"), ZERO, "K"), CategorizedNet(Decimal("3.00"), ZERO, "Z"),
             CategorizedNet(Decimal("2.00"), TWENTY, "S"), CategorizedNet(Decimal("1.00"), ZERO, "E", "VATEX-EU-132")]
    bands = tax_breakdown(lines, "EUR", seller_country="FR", language="fr")
    assert [(b.category, b.rate, b.net, b.tax, b.exemption_code) for b in bands] == [
        ("S", TWENTY, Decimal("12.00"), Decimal("2.40"), ""),
        ("Z", ZERO, Decimal("3.00"), Decimal("0.00"), ""),
        ("K", ZERO, Decimal("10.00"), Decimal("0.00"), "VATEX-EU-IC"),
        ("E", ZERO, Decimal("1.00"), Decimal("0.00"), "VATEX-EU-132"),
    ]
    assert bands[0].exemption_reason == "" and all(b.exemption_reason for b in bands[1:])
    assert bands[1].exemption_reason == "Taux zéro"
    # Splitting by category never changes the money: the same totals as per rate.
    money = totals(((l.net, l.rate) for l in lines), "EUR")
    assert sum(b.tax for b in bands) == money.tax and sum(b.net for b in bands) == money.net
    assert breakdown_json(bands)[2] == {"rate": "0", "net": "10.00", "tax": "0.00", "category": "K",
                                        "exemption_reason": bands[2].exemption_reason,
                                        "exemption_code": "VATEX-EU-IC"}


@pytest.mark.parametrize(("country", "language"), [
    ("DE", "de"), ("AT", "de"), ("CH", "de"), ("FR", "fr"), ("BE", "fr"), ("LU", "fr"), ("PL", "pl"), ("ES", "es"),
    ("IT", "it"), ("NL", "nl"), ("GB", "en"), ("US", "en"), ("JP", "en"), ("", "en"),
])
def test_the_invoice_language_defaults_from_the_buyer_country(country, language):
    assert default_language(country) == language
    assert invoice_language("", country) == language
    assert invoice_language("it", country) == "it"


def test_languages_parse_and_unknown_ones_are_refused():
    assert parse_language(" DE ") == "de" and parse_language("auto") == ""
    with pytest.raises(InvalidInput, match="not an invoice language"):
        parse_language("pt")


@given(st.lists(st.tuples(st.sampled_from(["S", "Z", "K", "G", "AE", "E", "O"]),
                          st.sampled_from([Decimal(0), Decimal("7.7"), Decimal(20)])), max_size=8),
       st.sampled_from(["DE", "FR", "GB", "US"]), st.sampled_from(LANGUAGES))
def test_notes_come_only_from_zero_rated_rows_that_need_one(rows, seller, language):
    notes = legal_notes([(c, r, "VATEX-EU-132" if c == "E" else "") for c, r in rows], seller, language)
    needing = {c for c, r in rows if r == ZERO and c in {"K", "G", "AE", "E", "O"}}
    assert len(notes) == len(needing) and all(note.endswith(".") for note in notes)
