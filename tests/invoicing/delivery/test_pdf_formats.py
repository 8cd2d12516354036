"""The invoice's figures, formatted per locale; formatted again (from ``Formats``' cache), the same text."""

from __future__ import annotations

from decimal import Decimal

from invoicing.delivery.invoice_pdf.formats import Formats


def test_figures_per_locale_and_currency():
    gb, de = Formats("en_GB", "GBP", "Europe/London"), Formats("de_DE", "EUR", "Europe/Berlin")
    assert gb.money(Decimal("1234.5")) == "£1,234.50"
    assert de.money(Decimal("1234.5")) == "1.234,50\xa0€"
    assert de.money(Decimal("1234.5"), "GBP") == "1.234,50\xa0£"  # another currency on the same document
    assert gb.amount(Decimal("1234.5")) == de.amount(Decimal("1234.5")).replace(".", "#").replace(",", ".").replace(
        "#", ",")
    assert Formats("ja_JP", "JPY", "Asia/Tokyo").amount(Decimal("1234")) == "1,234"
    assert gb.unit(Decimal("3.3330")) == "3.333" and gb.unit(Decimal("3.30")) == "3.30"
    assert de.rate(Decimal("5.50")) == "5,5" and gb.rate(Decimal("20.000")) == "20"


def test_a_figure_formatted_again_is_what_babel_writes_for_it():
    from babel.numbers import format_currency, format_decimal

    gb = Formats("en_GB", "GBP", "UTC")
    for text in ("0", "0.5", "0.50", "1.005", "-12.30", "1234567.891", "1E+3", "0.8520", "0.852"):
        for _ in range(2):  # the second time from the cache
            assert gb.money(Decimal(text)) == format_currency(Decimal(text), "GBP", locale="en_GB")
            assert gb.number(Decimal(text)) == format_decimal(Decimal(text), "#,##0.###", locale="en_GB",
                                                               decimal_quantization=False)
