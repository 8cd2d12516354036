"""An ``InvoiceDocument`` as OASIS UBL 2.1 XML, Peppol BIS Billing 3.0 (EN 16931 CIUS).

``build_ubl(doc)`` gives an ``Invoice`` (type code 380), or for ``kind ==
"credit_note"`` a ``CreditNote`` (381) with a ``BillingReference`` to the credited
invoice. Pure and deterministic; raises ``EInvoiceUnavailable`` like ``build_cii``.
Same content conventions as the CII (``profile``); elements are written in the
order the UBL 2.1 schema requires. The credit note's due date goes in
``PaymentMeans/PaymentDueDate`` (UBL 2.1 ``CreditNote`` has no ``DueDate``) when
there are payment means, else it is stated in the payment terms note.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from lxml import etree
from lxml.etree import _Element

from invoicing.billing.document import DocumentLine, InvoiceDocument, Party
from invoicing.delivery.einvoice import profile as p

__all__ = ["UBL_NAMESPACES", "build_ubl"]

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
UBL_NAMESPACES = {"cac": CAC, "cbc": CBC}




def _cac(parent: _Element, tag: str) -> _Element:
    return etree.SubElement(parent, f"{{{CAC}}}{tag}")


def _cbc(parent: _Element, tag: str, text: str, **attrib: str) -> _Element:
    node = etree.SubElement(parent, f"{{{CBC}}}{tag}", attrib)
    node.text = text
    return node


def build_ubl(doc: InvoiceDocument) -> bytes:
    """The UBL XML (UTF-8, with declaration) of ``doc``; see ``profile`` for the conventions."""
    p.check(doc)
    zone = ZoneInfo(doc.timezone)
    credit = p.is_credit_note(doc)
    root_ns, root_tag = (CREDIT_NOTE_NS, "CreditNote") if credit else (INVOICE_NS, "Invoice")
    nsmap: dict[str | None, str] = {None: root_ns, "cac": CAC, "cbc": CBC}
    root = etree.Element(f"{{{root_ns}}}{root_tag}", nsmap=nsmap)  # type: ignore[arg-type]  # the default namespace
    _cbc(root, "CustomizationID", p.PEPPOL_CUSTOMIZATION)
    _cbc(root, "ProfileID", p.PEPPOL_PROFILE)
    _cbc(root, "ID", doc.number)
    _cbc(root, "IssueDate", doc.issued_at.astimezone(zone).date().isoformat())
    if credit:
        _cbc(root, "CreditNoteTypeCode", p.CREDIT_NOTE_TYPE)
    else:
        _cbc(root, "DueDate", doc.due_date().isoformat())
        _cbc(root, "InvoiceTypeCode", p.INVOICE_TYPE)
    for text in p.header_notes(doc):
        _cbc(root, "Note", text)
    _cbc(root, "DocumentCurrencyCode", doc.currency)
    if doc.fx is not None:
        _cbc(root, "TaxCurrencyCode", doc.fx.currency)
    period = doc.period()
    invoice_period = _cac(root, "InvoicePeriod")
    _cbc(invoice_period, "StartDate", (period.first or period.last).isoformat())
    _cbc(invoice_period, "EndDate", period.last.isoformat())
    if credit:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", doc.original_number)
        if doc.original_issued_at is not None:
            _cbc(reference, "IssueDate", doc.original_issued_at.astimezone(zone).date().isoformat())
    vat_ids = not p.outside_scope(doc)
    _party(_cac(root, "AccountingSupplierParty"), doc.seller, vat_ids)
    _party(_cac(root, "AccountingCustomerParty"), doc.buyer, vat_ids)
    if p.ships_intra_community(doc):
        location = _cac(_cac(root, "Delivery"), "DeliveryLocation")
        _cbc(_cac(_cac(location, "Address"), "Country"), "IdentificationCode", doc.buyer.country.upper())
    _payment(root, doc, credit)
    _taxes(root, doc)
    totals = _cac(root, "LegalMonetaryTotal")
    money = {"currencyID": doc.currency}
    _cbc(totals, "LineExtensionAmount", p.amount(doc.net_total), **money)
    _cbc(totals, "TaxExclusiveAmount", p.amount(doc.net_total), **money)
    _cbc(totals, "TaxInclusiveAmount", p.amount(doc.gross_total), **money)
    _cbc(totals, "PayableAmount", p.amount(doc.gross_total), **money)
    for position, line in enumerate(doc.lines, start=1):
        _line(root, doc.currency, position, line, zone, credit)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _party(role: _Element, party: Party, vat_ids: bool) -> None:
    node = _cac(role, "Party")
    if party.email:
        _cbc(node, "EndpointID", party.email, schemeID="EM")
    address = _cac(node, "PostalAddress")
    for tag, value in (("StreetName", party.address_line1), ("AdditionalStreetName", party.address_line2),
                       ("CityName", party.city), ("PostalZone", party.postcode), ("CountrySubentity", party.region)):
        if value:
            _cbc(address, tag, value)
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country.upper())
    vat = p.vat_id(party.vat_number, party.country) if vat_ids else ""
    if vat:
        scheme = _cac(node, "PartyTaxScheme")
        _cbc(scheme, "CompanyID", vat)
        _cbc(_cac(scheme, "TaxScheme"), "ID", "VAT")
    legal = _cac(node, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.legal_name)
    if party.company_number:
        _cbc(legal, "CompanyID", party.company_number)
    if party.phone or party.email:
        contact = _cac(node, "Contact")
        if party.phone:
            _cbc(contact, "Telephone", party.phone)
        if party.email:
            _cbc(contact, "ElectronicMail", party.email)


def _payment(root: _Element, doc: InvoiceDocument, credit: bool) -> None:
    seller = doc.seller
    if seller.iban:
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", p.payment_means_code(seller.iban))
        if credit:
            _cbc(means, "PaymentDueDate", doc.due_date().isoformat())
        _cbc(means, "PaymentID", doc.number)
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", p.compact(seller.iban))
        if seller.bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", p.compact(seller.bic))
    terms = p.terms_text(doc)
    if credit and not seller.iban:
        terms = f"{terms} (due {doc.due_date().isoformat()})"
    _cbc(_cac(root, "PaymentTerms"), "Note", terms)


def _taxes(root: _Element, doc: InvoiceDocument) -> None:
    money = {"currencyID": doc.currency}
    total = _cac(root, "TaxTotal")
    _cbc(total, "TaxAmount", p.amount(doc.tax_total), **money)
    for band in doc.tax_bands:
        subtotal = _cac(total, "TaxSubtotal")
        _cbc(subtotal, "TaxableAmount", p.amount(band.net), **money)
        _cbc(subtotal, "TaxAmount", p.amount(band.tax), **money)
        category = _cac(subtotal, "TaxCategory")
        exempt = p.states_exemption(band.category)
        _cbc(category, "ID", band.category)
        if p.has_rate(band.category):
            _cbc(category, "Percent", p.number(band.rate))
        if exempt and band.exemption_code:
            _cbc(category, "TaxExemptionReasonCode", band.exemption_code)
        if exempt and band.exemption_reason:
            _cbc(category, "TaxExemptionReason", band.exemption_reason)
        _cbc(_cac(category, "TaxScheme"), "ID", "VAT")
    if doc.fx is not None:  # BT-111: only the total, in the VAT accounting currency (BR-53)
        _cbc(_cac(root, "TaxTotal"), "TaxAmount", p.amount(doc.fx.tax_total), currencyID=doc.fx.currency)


def _line(root: _Element, currency: str, position: int, line: DocumentLine, zone: ZoneInfo, credit: bool) -> None:
    node = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    _cbc(node, "ID", str(position))
    _cbc(node, "Note", p.line_note(line.order_ref, line.dispatched_at.astimezone(zone).date()))
    _cbc(node, "CreditedQuantity" if credit else "InvoicedQuantity", str(line.quantity), unitCode=p.UNIT)
    _cbc(node, "LineExtensionAmount", p.amount(line.net), currencyID=currency)
    item = _cac(node, "Item")
    _cbc(item, "Name", p.item_name(line))
    if line.sku:
        _cbc(_cac(item, "SellersItemIdentification"), "ID", line.sku)
    category = _cac(item, "ClassifiedTaxCategory")
    _cbc(category, "ID", line.vat_category)
    if p.has_rate(line.vat_category):
        _cbc(category, "Percent", p.number(line.tax_rate))
    _cbc(_cac(category, "TaxScheme"), "ID", "VAT")
    _cbc(_cac(node, "Price"), "PriceAmount", p.number(p.unit_price(line)), currencyID=currency)
