"""VAT rules printed on invoices: when an intra-EU supply is reverse charged.

Article 196 of Council Directive 2006/112/EC makes the customer liable for the VAT
on a B2B supply from another member state. The invoice then shows 0 % VAT and must
say so (Article 226(11a)). We print the notice when:

* seller and buyer are in two different EU-27 member states,
* the buyer gave a VAT number (it is a taxable person), and
* at least one tax band of the invoice is at 0 %.

The United Kingdom is outside the EU VAT area; Northern Ireland (``XI``) is kept
out too for simplicity, as are all non-EU countries.
"""

from __future__ import annotations

from decimal import Decimal

from invoicing.billing.document import InvoiceDocument

__all__ = ["EU_VAT_COUNTRIES", "REVERSE_CHARGE_NOTE", "eu_country", "reverse_charge_applies"]

EU_VAT_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
     "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
)  # fmt: skip
"""ISO 3166 codes of the 27 member states (Greece as ``GR``; its VAT prefix is ``EL``)."""

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC)."
)


def eu_country(code: str) -> str | None:
    """The member state for a country code or VAT prefix ("el" → "GR"), or None outside the EU."""
    code = code.strip().upper()
    if code == "EL":
        code = "GR"
    return code if code in EU_VAT_COUNTRIES else None


def reverse_charge_applies(doc: InvoiceDocument) -> bool:
    """Whether the invoice must carry ``REVERSE_CHARGE_NOTE`` (rule in the module docstring)."""
    seller = eu_country(doc.seller.country)
    buyer = eu_country(doc.buyer.country)
    return (
        seller is not None
        and buyer is not None
        and seller != buyer
        and bool(doc.buyer.vat_number.strip())
        and any(band.rate == Decimal(0) for band in doc.tax_bands)
    )
