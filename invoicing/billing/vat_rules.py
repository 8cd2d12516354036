"""VAT rules printed on invoices: when an intra-EU supply is reverse charged.

Article 196 of Council Directive 2006/112/EC makes the customer liable for the VAT
on a B2B supply from another member state. The invoice then shows 0 % VAT and must
say so (Article 226(11a)). We print the notice when:

* seller and buyer are in two different EU-27 member states,
* the buyer gave a VAT number (it is a taxable person), and
* at least one tax band of the invoice is at 0 %.

Member states are ``invoicing.parties.countries.EU_MEMBER_STATES`` (the United Kingdom,
Northern Ireland ``XI`` and all non-EU countries are outside); ``eu_country`` also
accepts Greece's VAT prefix ``EL``.
"""

from __future__ import annotations

from decimal import Decimal

from invoicing.billing.document import InvoiceDocument
from invoicing.parties.countries import eu_member_state as eu_country

__all__ = ["REVERSE_CHARGE_NOTE", "eu_country", "reverse_charge_applies"]

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC)."
)


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
