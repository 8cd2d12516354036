"""Test documents built directly (as the document contract will carry them), one per e-invoice case."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from invoicing.billing.document import DocumentLine, DocumentTaxBand, FxConversion, InvoiceDocument, Party
from invoicing.billing.money import line_net, round_money

ISSUED = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)

SELLER_DE = Party(legal_name="Druckhaus Müller GmbH", address_line1="Hauptstraße 5", city="Berlin", postcode="10115",
                  country="DE", vat_number="DE136695976", company_number="HRB 12345", email="rechnung@druckhaus.de",
                  iban="DE89 3704 0044 0532 0130 00", bic="COBADEFFXXX")
BUYER_DE = Party(legal_name="Shirt & Co. KG", address_line1="Marktplatz 1", city="München", postcode="80331",
                 country="DE", vat_number="DE129273398", email="ap@shirt.de")
BUYER_FR = Party(legal_name="Les Tee-shirts « Étoile » SARL", address_line1="12 rue de la Paix", city="Paris",
                 postcode="75002", country="FR", vat_number="FR40303265045", email="compta@etoile.fr")
SELLER_GB = Party(legal_name="Ink & Thread Ltd", address_line1="1 King Street", city="London", postcode="EC2V 8AU",
                  country="GB", vat_number="GB980780684", company_number="09876543", iban="GB33BUKB20201555555555",
                  bic="BUKBGB22")
BUYER_US = Party(legal_name="Prairie Prints Inc.", address_line1="500 Main St", city="Omaha", region="NE",
                 postcode="68102", country="US")
BUYER_BH = Party(legal_name="Gulf Apparel W.L.L.", address_line1="Road 1701", city="Manama", country="BH")

REASONS = {
    "K": ("Intra-Community supply, exempt under Article 138 Directive 2006/112/EC", "VATEX-EU-IC"),
    "G": ("Export outside the EU, exempt under Article 146 Directive 2006/112/EC", "VATEX-EU-G"),
    "AE": ("Reverse charge, Article 196 Directive 2006/112/EC", "VATEX-EU-AE"),
    "E": ("Exempt under Article 132(1)(q) Directive 2006/112/EC", "VATEX-EU-132-1Q"),
    "O": ("Not subject to VAT", "VATEX-EU-O"),
    # The contract sets a reason on every 0 % band; on Z EN 16931 forbids one in the XML (BR-Z-10).
    "Z": ("Zero-rated goods", ""),
}


def lines(count: int, *, rate: str, category: str, currency: str = "EUR") -> tuple[DocumentLine, ...]:
    out = []
    for i in range(count):
        quantity = 1 + i % 4
        cost, shipping = Decimal("7.3350") + Decimal(i % 7), Decimal("1.20")
        out.append(DocumentLine(
            order_ref=f"ORD-{1000 + i}", dispatched_at=ISSUED - timedelta(days=1 + i % 6, hours=i % 5),
            sku=f"TEE-{i % 9:02d}", description=f"T-shirt “Ünïcode” size {'SMLX'[i % 4]} — print {i}",
            quantity=quantity, unit_cost=cost, unit_shipping=shipping, tax_rate=Decimal(rate),
            net=line_net(quantity, cost, shipping, currency), vat_category=category,
        ))
    return tuple(out)


def document(seller: Party, buyer: Party, doc_lines: tuple[DocumentLine, ...], *, currency: str = "EUR",
             number: str = "INK-000042", **extra: object) -> InvoiceDocument:
    by_band: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    for line in doc_lines:
        by_band[(line.vat_category, line.tax_rate)] += line.net
    bands = []
    for (category, rate), net in sorted(by_band.items()):
        reason, code = REASONS.get(category, ("", ""))
        bands.append(DocumentTaxBand(rate=rate, net=net, tax=round_money(net * rate / 100, currency),
                                     category=category, exemption_reason=reason, exemption_code=code))
    net_total = sum((b.net for b in bands), Decimal(0))
    tax_total = sum((b.tax for b in bands), Decimal(0))
    fields: dict[str, object] = dict(
        tenant_name="Ink", number=number, issued_at=ISSUED, period_start=ISSUED - timedelta(days=7),
        period_end=ISSUED, timezone="Europe/Berlin", currency=currency, seller=seller, buyer=buyer,
        lines=doc_lines, tax_bands=tuple(bands), net_total=net_total, tax_total=tax_total,
        gross_total=net_total + tax_total, payment_terms_days=30, order_count=len(doc_lines),
    )
    fields.update(extra)
    return InvoiceDocument(**fields)  # type: ignore[arg-type]


def domestic_de(count: int = 20) -> InvoiceDocument:
    return document(SELLER_DE, BUYER_DE, lines(count, rate="19", category="S"))


def intra_eu_de_fr() -> InvoiceDocument:
    return document(SELLER_DE, BUYER_FR, lines(5, rate="0", category="K"), language="fr",
                    notes=("Livraison intracommunautaire exonérée — article 138 de la directive 2006/112/CE",))


def export_gb_us() -> InvoiceDocument:
    return document(SELLER_GB, BUYER_US, lines(4, rate="0", category="G", currency="USD"), currency="USD",
                    timezone="Europe/London", notes=("Zero-rated export of goods.",))


def credit_note() -> InvoiceDocument:
    return document(SELLER_DE, BUYER_DE, lines(2, rate="19", category="S"), number="CN-000007", kind="credit_note",
                    original_number="INK-000042", original_issued_at=ISSUED - timedelta(days=20),
                    reason="Two shirts misprinted")


def foreign_currency_gb_eur() -> InvoiceDocument:
    """A GB seller invoicing a German buyer in EUR: VAT restated in GBP (BT-6, BT-111)."""
    doc = document(SELLER_GB, BUYER_DE, lines(6, rate="20", category="S"), timezone="Europe/London")
    rate = Decimal("0.8523")
    fx_bands = tuple((b.rate, b.category, round_money(b.tax * rate, "GBP")) for b in doc.tax_bands)
    fx = FxConversion(currency="GBP", rate=rate, rate_date=date(2026, 12, 1), source="ops", tax_bands=fx_bands,
                      tax_total=sum((t for _, _, t in fx_bands), Decimal(0)))
    return document(SELLER_GB, BUYER_DE, doc.lines, timezone="Europe/London", fx=fx)


def bhd() -> InvoiceDocument:
    return document(SELLER_GB, BUYER_BH, lines(3, rate="0", category="G", currency="BHD"), currency="BHD")


def category(code: str, rate: str = "0") -> InvoiceDocument:
    """A DE→DE invoice whose lines all have VAT category ``code``."""
    return document(SELLER_DE, BUYER_DE, lines(3, rate=rate, category=code))


def mixed_rates() -> InvoiceDocument:
    """Standard and zero-rated lines on one invoice: two breakdown rows."""
    return document(SELLER_DE, BUYER_DE, lines(3, rate="19", category="S") + lines(2, rate="0", category="Z"))


CASES = {
    "zero-rated-Z": lambda: category("Z"),
    "exempt-E": lambda: category("E"),
    "reverse-charge-AE": lambda: category("AE"),
    "outside-scope-O": lambda: category("O"),
    "S-and-Z": mixed_rates,
    "domestic-S": domestic_de,
    "intra-EU-K": intra_eu_de_fr,
    "export-G": export_gb_us,
    "credit-note": credit_note,
    "fx-GBP": foreign_currency_gb_eur,
    "500-lines": lambda: domestic_de(500),
}
