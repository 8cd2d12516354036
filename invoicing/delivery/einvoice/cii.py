"""An ``InvoiceDocument`` as UN/CEFACT CII (D16B) XML, Factur-X / ZUGFeRD profile EN 16931.

``build_cii(doc)`` is pure and deterministic (same document → same bytes). It raises
``EInvoiceUnavailable`` when ``profile.refusal`` says the document cannot be an
EN 16931 e-invoice; for a document it accepts it returns XML that passes the CII
XSD and the official CEN Schematron (``tests/invoicing/delivery/einvoice`` runs both
over every kind of document).

Built with lxml element by element in schema order. drafthorse (the ZUGFeRD object
model) produced the same XML but took 430 ms for a 500-line invoice — more than the
whole Factur-X budget (250 ms, ``benchmarks/render.py``); lxml takes a few ms. The
tests parse every document back with drafthorse, so the two stay in agreement.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from lxml import etree
from lxml.etree import _Element

from invoicing.billing.document import DocumentLine, InvoiceDocument, Party
from invoicing.delivery.einvoice import profile as p

__all__ = ["CII_NAMESPACES", "build_cii"]

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
CII_NAMESPACES = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}




_SUB = etree.SubElement
_RAM_TAGS: dict[str, str] = {}


def _ram(parent: _Element, tag: str, text: str | None = None, **attrib: str) -> _Element:
    name = _RAM_TAGS.get(tag)
    if name is None:
        name = _RAM_TAGS[tag] = f"{{{RAM}}}{tag}"
    node = _SUB(parent, name, attrib) if attrib else _SUB(parent, name)
    if text is not None:
        node.text = text
    return node


def _date(parent: _Element, tag: str, day: date, namespace: str = UDT) -> None:
    holder = _ram(parent, tag)
    etree.SubElement(holder, f"{{{namespace}}}DateTimeString", format="102").text = day.strftime("%Y%m%d")


def build_cii(doc: InvoiceDocument) -> bytes:
    """The CII XML (UTF-8, with declaration) of ``doc``; see ``profile`` for the conventions."""
    p.check(doc)
    zone = ZoneInfo(doc.timezone)
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=CII_NAMESPACES)
    context = etree.SubElement(root, f"{{{RSM}}}ExchangedDocumentContext")
    _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", p.EN16931)
    header = etree.SubElement(root, f"{{{RSM}}}ExchangedDocument")
    _ram(header, "ID", doc.number)
    _ram(header, "TypeCode", p.CREDIT_NOTE_TYPE if p.is_credit_note(doc) else p.INVOICE_TYPE)
    _date(header, "IssueDateTime", doc.issued_at.astimezone(zone).date())
    for text in p.header_notes(doc):
        _ram(_ram(header, "IncludedNote"), "Content", text)
    trade = etree.SubElement(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    for position, line in enumerate(doc.lines, start=1):
        _line(trade, position, line, zone)
    agreement = _ram(trade, "ApplicableHeaderTradeAgreement")
    vat_ids = not p.outside_scope(doc)
    _party(_ram(agreement, "SellerTradeParty"), doc.seller, vat_ids)
    _party(_ram(agreement, "BuyerTradeParty"), doc.buyer, vat_ids)
    delivery = _ram(trade, "ApplicableHeaderTradeDelivery")
    if p.ships_intra_community(doc):
        _ram(_ram(_ram(delivery, "ShipToTradeParty"), "PostalTradeAddress"), "CountryID", doc.buyer.country.upper())
    _settlement(_ram(trade, "ApplicableHeaderTradeSettlement"), doc, zone)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _line(trade: _Element, position: int, line: DocumentLine, zone: ZoneInfo) -> None:
    item = _ram(trade, "IncludedSupplyChainTradeLineItem")
    document = _ram(item, "AssociatedDocumentLineDocument")
    _ram(document, "LineID", str(position))
    _ram(_ram(document, "IncludedNote"), "Content",
         p.line_note(line.order_ref, line.dispatched_at.astimezone(zone).date()))
    product = _ram(item, "SpecifiedTradeProduct")
    if line.sku:
        _ram(product, "SellerAssignedID", line.sku)
    _ram(product, "Name", p.item_name(line))
    price = _ram(_ram(item, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice")
    _ram(price, "ChargeAmount", p.number(p.unit_price(line)))
    _ram(_ram(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", str(line.quantity), unitCode=p.UNIT)
    settlement = _ram(item, "SpecifiedLineTradeSettlement")
    tax = _ram(settlement, "ApplicableTradeTax")
    _ram(tax, "TypeCode", "VAT")
    _ram(tax, "CategoryCode", line.vat_category)
    if p.has_rate(line.vat_category):
        _ram(tax, "RateApplicablePercent", p.number(line.tax_rate))
    _ram(_ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", p.amount(line.net))


def _party(node: _Element, party: Party, vat_ids: bool) -> None:
    _ram(node, "Name", party.legal_name)
    if party.company_number:
        _ram(_ram(node, "SpecifiedLegalOrganization"), "ID", party.company_number)
    address = _ram(node, "PostalTradeAddress")
    for tag, value in (("PostcodeCode", party.postcode), ("LineOne", party.address_line1),
                       ("LineTwo", party.address_line2), ("CityName", party.city)):
        if value:
            _ram(address, tag, value)
    _ram(address, "CountryID", party.country.upper())
    if party.region:
        _ram(address, "CountrySubDivisionName", party.region)
    if party.email:
        _ram(_ram(node, "URIUniversalCommunication"), "URIID", party.email, schemeID="EM")
    vat = p.vat_id(party.vat_number, party.country) if vat_ids else ""
    if vat:
        _ram(_ram(node, "SpecifiedTaxRegistration"), "ID", vat, schemeID="VA")


def _settlement(settlement: _Element, doc: InvoiceDocument, zone: ZoneInfo) -> None:
    seller = doc.seller
    if seller.iban:
        _ram(settlement, "PaymentReference", doc.number)
    if doc.fx is not None:
        _ram(settlement, "TaxCurrencyCode", doc.fx.currency)
    _ram(settlement, "InvoiceCurrencyCode", doc.currency)
    if seller.iban:
        means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _ram(means, "TypeCode", p.payment_means_code(seller.iban))
        _ram(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", p.compact(seller.iban))
        if seller.bic:
            _ram(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", p.compact(seller.bic))
    for band in doc.tax_bands:
        tax = _ram(settlement, "ApplicableTradeTax")
        _ram(tax, "CalculatedAmount", p.amount(band.tax))
        _ram(tax, "TypeCode", "VAT")
        exempt = p.states_exemption(band.category)
        if exempt and band.exemption_reason:
            _ram(tax, "ExemptionReason", band.exemption_reason)
        _ram(tax, "BasisAmount", p.amount(band.net))
        _ram(tax, "CategoryCode", band.category)
        if exempt and band.exemption_code:
            _ram(tax, "ExemptionReasonCode", band.exemption_code)
        if p.has_rate(band.category):
            _ram(tax, "RateApplicablePercent", p.number(band.rate))
    period = doc.period()
    billing = _ram(settlement, "BillingSpecifiedPeriod")
    _date(billing, "StartDateTime", period.first or period.last)
    _date(billing, "EndDateTime", period.last)
    terms = _ram(settlement, "SpecifiedTradePaymentTerms")
    _ram(terms, "Description", p.terms_text(doc))
    _date(terms, "DueDateDateTime", doc.due_date())
    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _ram(totals, "LineTotalAmount", p.amount(doc.net_total))
    _ram(totals, "TaxBasisTotalAmount", p.amount(doc.net_total))
    _ram(totals, "TaxTotalAmount", p.amount(doc.tax_total), currencyID=doc.currency)
    if doc.fx is not None:
        _ram(totals, "TaxTotalAmount", p.amount(doc.fx.tax_total), currencyID=doc.fx.currency)
    _ram(totals, "GrandTotalAmount", p.amount(doc.gross_total))
    _ram(totals, "DuePayableAmount", p.amount(doc.gross_total))
    if p.is_credit_note(doc):
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _ram(reference, "IssuerAssignedID", doc.original_number)
        if doc.original_issued_at is not None:
            _date(reference, "FormattedIssueDateTime", doc.original_issued_at.astimezone(zone).date(), QDT)
