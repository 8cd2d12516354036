"""What an EN 16931 e-invoice of ours always contains, and when one cannot be made.

Both syntaxes (CII for Factur-X, UBL for Peppol) are built from the same
``InvoiceDocument`` with the same conventions, stated here once:

* one invoice line per document line (BT-126 = position from 1), quantity in unit
  ``C62`` ("one"), net price (BT-146) = unit cost + unit shipping, line net (BT-131)
  as stored; the order reference and dispatch date go in the line note (BT-127);
* a credit note is type code 381 with positive amounts and the credited invoice as
  preceding-invoice reference (BT-25/BT-26); an invoice is 380;
* the due date (BT-9) is ``InvoiceDocument.due_date()``; the period (BG-14) is
  ``InvoiceDocument.period()``; an intra-Community supply (K) also names the
  deliver-to country (BT-80, the buyer's country: rule BR-IC-12);
* payment means (BG-16) only when the seller has an IBAN: 58 (SEPA credit transfer)
  for an IBAN of a SEPA country, else 30 (credit transfer), BIC when known;
* with ``doc.fx`` the VAT accounting currency (BT-6) and the total VAT in it (BT-111).

``refusal(doc)`` is the one place that decides an e-invoice cannot be made. EN 16931
allows at most two decimals on every amount (rules BR-DEC-*), so an invoice in a
three-decimal currency (BHD, KWD, …) gets no e-invoice — rounding it would make the XML
disagree with the legal PDF. The PDF still goes; the caller reports the reason.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from invoicing.billing.document import DocumentLine, InvoiceDocument
from invoicing.billing.money import minor_unit
from invoicing.parties.countries import EU_MEMBER_STATES, vat_prefix

#: BT-24 specification identifier of the EN 16931 core (Factur-X profile EN 16931 = "COMFORT").
EN16931 = "urn:cen.eu:en16931:2017"
#: BT-24 and BT-23 of Peppol BIS Billing 3.0 (UBL).
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_TYPE, CREDIT_NOTE_TYPE = "380", "381"
UNIT = "C62"

_CENT = Decimal("0.01")
# IBAN country prefixes of the SEPA scheme outside the EU (the EU states are added below).
_SEPA_EXTRA = frozenset({"GB", "CH", "NO", "IS", "LI", "MC", "SM", "AD", "VA", "GI"})


class EInvoiceUnavailable(Exception):
    """``build_cii``/``build_ubl`` refused ``doc``; ``reason`` is written for ops (see ``refusal``)."""

    def __init__(self, number: str, reason: str) -> None:
        super().__init__(f"no e-invoice for {number}: {reason}")
        self.number = number
        self.reason = reason


def refusal(doc: InvoiceDocument) -> str | None:
    """None if ``doc`` can be an EN 16931 e-invoice, else why not (one sentence for ops)."""
    reason = currency_refusal(doc.currency)
    if reason is not None:
        return reason
    if not doc.lines:
        return "the document has no lines"
    if not doc.seller.country or not doc.buyer.country:
        return "the seller's and the buyer's country are both required"
    if doc.kind == "credit_note" and not doc.original_number:
        return "a credit note must name the credited invoice"
    return _category_refusal(doc)


#: What EN 16931 requires of each VAT category beyond the rate (BR-S/Z/E/AE/IC/G/O-*): whether the
#: rate must be positive (True), zero (False) or absent (None), and whose VAT number must be stated.
_CATEGORY_RULES: dict[str, tuple[bool | None, tuple[str, ...]]] = {
    "S": (True, ("seller",)), "Z": (False, ("seller",)), "E": (False, ("seller",)),
    "AE": (False, ("seller", "buyer")), "K": (False, ("seller", "buyer")), "G": (False, ("seller",)),
    "O": (None, ()),
}


def _category_refusal(doc: InvoiceDocument) -> str | None:
    """The VAT categories contradict the rates or the parties (the XML would break the CEN rules)."""
    categories = {line.vat_category for line in doc.lines} | {band.category for band in doc.tax_bands}
    if "O" in categories and len(categories) > 1:
        return "an invoice with lines not subject to VAT (category O) cannot have other VAT categories"
    for category in sorted(categories):
        if category not in _CATEGORY_RULES:
            return f"VAT category {category!r} is not an EN 16931 code (S, Z, E, AE, K, G, O)"
        positive, vat_numbers = _CATEGORY_RULES[category]
        for party in vat_numbers:
            if not getattr(doc, party).vat_number:
                return f"VAT category {category} requires the {party}'s VAT number"
    rates = [(line.vat_category, line.tax_rate) for line in doc.lines]
    rates += [(band.category, band.rate) for band in doc.tax_bands]
    for category, rate in rates:
        positive = _CATEGORY_RULES[category][0]
        if positive is True and rate <= 0:
            return f"VAT category {category} needs a rate above 0 % (a 0 % line needs its exemption category)"
        if positive is False and rate != 0:
            return f"VAT category {category} must have a 0 % rate, not {rate} %"
    for band in doc.tax_bands:
        if states_exemption(band.category) and not (band.exemption_reason or band.exemption_code):
            return f"the {band.category} VAT breakdown needs an exemption reason or VATEX code"
    return None


def currency_refusal(currency: str) -> str | None:
    """Why an invoice in ``currency`` cannot be an EN 16931 e-invoice (more than 2 decimals), or None."""
    unit = minor_unit(currency)
    if unit >= _CENT:
        return None
    places = -int(unit.as_tuple().exponent)
    return (f"no e-invoice: EN 16931 allows at most 2 decimals and {currency.upper()} has {places}; "
            "the PDF is the invoice")


def check(doc: InvoiceDocument) -> None:
    """Raise ``EInvoiceUnavailable`` if ``refusal(doc)`` gives a reason."""
    reason = refusal(doc)
    if reason is not None:
        raise EInvoiceUnavailable(doc.number, reason)


def is_credit_note(doc: InvoiceDocument) -> bool:
    return doc.kind == "credit_note"


def amount(value: Decimal) -> str:
    """An amount as EN 16931 wants it: exactly two decimals, no exponent ("12.50", "1000.00")."""
    return f"{value.quantize(_CENT):f}"


def number(value: Decimal) -> str:
    """A price, rate or quantity without exponent notation and without trailing zeros past 2 decimals."""
    text = f"{value.normalize():f}"
    if "." not in text:
        return f"{value.quantize(_CENT):f}"
    whole, frac = text.split(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def unit_price(line: DocumentLine) -> Decimal:
    """BT-146: what one unit costs, shipping included (the line net is quantity × this, rounded once)."""
    return line.unit_cost + line.unit_shipping


def item_name(line: DocumentLine) -> str:
    """BT-153 (required): the description, or the SKU for a line without one."""
    return line.description or line.sku or "Item"


def header_notes(doc: InvoiceDocument) -> list[str]:
    """BT-22: a credit note's reason first, then the legal notes as printed on the PDF."""
    notes = [note for note in doc.notes if note]
    if is_credit_note(doc) and doc.reason:
        notes.insert(0, f"Reason: {doc.reason}")
    return notes


def ships_intra_community(doc: InvoiceDocument) -> bool:
    """Whether BT-80 (deliver-to country) is required: any intra-Community supply line (BR-IC-12)."""
    return any(line.vat_category == "K" for line in doc.lines)


def terms_text(doc: InvoiceDocument) -> str:
    """BT-20, in English like the rest of the structured data."""
    if doc.payment_terms_days <= 0:
        return "Due on receipt"
    return f"Payment within {doc.payment_terms_days} days of the invoice date"


def payment_means_code(iban: str) -> str:
    """58 (SEPA credit transfer) for an IBAN of a SEPA country, 30 (credit transfer) otherwise."""
    prefix = iban.replace(" ", "")[:2].upper()
    return "58" if prefix in EU_MEMBER_STATES or prefix in _SEPA_EXTRA else "30"


def compact(identifier: str) -> str:
    """IBAN/BIC/VAT ids without the spaces people type."""
    return identifier.replace(" ", "").upper()


def line_note(order_ref: str, dispatched: date) -> str:
    """BT-127: which order the line invoices and when it left (local date)."""
    return f"Order {order_ref}, dispatched {dispatched.isoformat()}"


#: Categories whose breakdown must state an exemption reason or VATEX code (BR-E-10, BR-AE-10, BR-IC-10,
#: BR-G-10, BR-O-10); on S and Z EN 16931 forbids one (BR-S-10, BR-Z-10), so a reason the PDF prints
#: beside a zero-rated band stays on the PDF only.
EXEMPT_CATEGORIES = frozenset({"E", "AE", "K", "G", "O"})


def states_exemption(category: str) -> bool:
    return category in EXEMPT_CATEGORIES


def has_rate(category: str) -> bool:
    """"Not subject to VAT" (O) has no rate (BR-O-05, BR-O-09); every other category does."""
    return category != "O"


def outside_scope(doc: InvoiceDocument) -> bool:
    """Whether the whole invoice is "not subject to VAT" (O): then no VAT identifiers (BR-O-02…04)."""
    return all(line.vat_category == "O" for line in doc.lines)


def vat_id(vat_number: str, country: str) -> str:
    """BT-31/BT-48: the VAT number with its country prefix (rule BR-CO-09), e.g. ``DE123456789``."""
    value = compact(vat_number)
    if value and not value[:2].isalpha():
        value = vat_prefix(country.strip().upper()) + value
    return value
