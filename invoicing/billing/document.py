"""The invoice as a document: a plain, picklable value built from the stored snapshot.

The PDF renderer and the e-mail composer take an ``InvoiceDocument`` and never touch
the database, so they are pure (same document → same bytes) and can run in a
process pool. What both print is computed here once (``InvoiceDocument.period``), so
the e-mail and the PDF state the same dates; each medium only formats them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from invoicing.billing.legal_notes import exemption_reason, legal_notes
from invoicing.billing.vat_rules import derive_category, exemption_code
from models import Invoice, InvoiceLine

if TYPE_CHECKING:  # line_rows imports models and sql; the document needs only the type
    from invoicing.billing.line_rows import LineRow


@dataclass(frozen=True)
class Party:
    """Seller or buyer as printed: the accounting keys at issue time."""

    legal_name: str
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""
    vat_number: str = ""
    company_number: str = ""
    email: str = ""
    phone: str = ""
    iban: str = ""
    bic: str = ""

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Party:
        known = cls.__dataclass_fields__
        return cls(**{k: str(v or "") for k, v in snapshot.items() if k in known})


@dataclass(frozen=True)
class DocumentLine:
    order_ref: str
    dispatched_at: datetime
    sku: str
    description: str
    quantity: int
    unit_cost: Decimal
    unit_shipping: Decimal
    tax_rate: Decimal
    net: Decimal
    #: EN 16931 VAT category code (BT-151): S, Z, E, AE, K, G or O.
    vat_category: str = "S"


@dataclass(frozen=True)
class DocumentTaxBand:
    """One VAT breakdown row (EN 16931 BG-23): per category *and* rate."""

    rate: Decimal
    net: Decimal
    tax: Decimal
    #: EN 16931 VAT category code (BT-118).
    category: str = "S"
    #: Exemption reason text (BT-120), in the invoice language; set on every 0 % band.
    exemption_reason: str = ""
    #: VATEX code (BT-121), e.g. ``VATEX-EU-IC`` for an intra-Community supply.
    exemption_code: str = ""


@dataclass(frozen=True)
class FxConversion:
    """The VAT restated in the seller's accounting currency (HMRC VAT Notice 700/21, Art. 230).

    ``rate`` converts one unit of the invoice currency into ``currency``; the rate, its date
    and its source (``ops``, ``feed`` or ``ecb``) are snapshotted at issue time.
    """

    currency: str
    rate: Decimal
    rate_date: date
    source: str
    #: (VAT rate, category, VAT amount in ``currency``) per breakdown row, in the document's order.
    tax_bands: tuple[tuple[Decimal, str, Decimal], ...]
    tax_total: Decimal


@dataclass(frozen=True)
class Period:
    """The days an invoice covers, both inclusive, in the document's time zone.

    ``first`` is None only when nothing says where the period starts (no previous
    cutoff, no ``starting_from`` and no lines).
    """

    first: date | None
    last: date


def invoice_period(start: datetime | None, cutoff: datetime, timezone: str, *,
                   earliest: datetime | None = None) -> Period:
    """The period from ``start`` (or, without one, the ``earliest`` dispatch) up to ``cutoff``.

    The cutoff is exclusive (orders dispatched strictly before it are invoiced), so a
    midnight cutoff's last day is the day before: a Sunday-to-Sunday weekly run covers
    Sunday to Saturday. A period never ends before it starts.
    """
    zone = ZoneInfo(timezone)
    last = (cutoff - timedelta(microseconds=1)).astimezone(zone).date()
    begin = start or earliest
    if begin is None:
        return Period(first=None, last=last)
    first = begin.astimezone(zone).date()
    return Period(first=first, last=max(first, last))


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything printed on one invoice. Datetimes are aware UTC; ``timezone`` is the
    seller's IANA zone in which dates are printed (the buyer's on invoices issued before issue 14)."""

    tenant_name: str
    number: str
    issued_at: datetime
    period_start: datetime | None
    period_end: datetime
    timezone: str
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    tax_bands: tuple[DocumentTaxBand, ...]
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    payment_terms_days: int
    order_count: int
    #: ``invoice`` or ``credit_note``; a credit note's amounts are positive and credit ``original_number``.
    kind: str = "invoice"
    #: Language of labels, dates and legal notes (ISO 639-1: en, de, fr, pl, es, it, nl).
    language: str = "en"
    #: Legal notes printed under the totals, already in ``language`` (one per VAT category that needs one).
    notes: tuple[str, ...] = ()
    fx: FxConversion | None = None
    original_number: str = ""
    original_issued_at: datetime | None = None
    #: Why a credit note was issued (printed on it).
    reason: str = ""

    def period(self) -> Period:
        """The invoiced days: from the period start — the previous cutoff or ``starting_from``;
        for a first run without one, the earliest line's dispatch — to the day before the cutoff."""
        earliest = min((line.dispatched_at for line in self.lines), default=None)
        return invoice_period(self.period_start, self.period_end, self.timezone, earliest=earliest)

    def due_date(self) -> date:
        """The day payment is due: the issue date in the document's time zone plus the payment terms."""
        return self.issued_at.astimezone(ZoneInfo(self.timezone)).date() + timedelta(days=self.payment_terms_days)

    @classmethod
    def from_models(cls, invoice: Invoice, lines: Iterable[InvoiceLine | LineRow], *,
                    tenant_name: str) -> InvoiceDocument:
        """The document of a stored invoice, exactly as snapshotted at issue time.

        Invoices issued before VAT categories existed have none stored: their lines and rows get
        the category ``vat_rules.derive_category`` gives their snapshotted seller, buyer and rate,
        and their notes follow from those rows (``legal_notes``), in English.
        """
        seller, buyer = Party.from_snapshot(invoice.seller), Party.from_snapshot(invoice.buyer)
        language = invoice.language or "en"

        def derived(rate: Decimal) -> str:
            return derive_category(seller.country, buyer.country, buyer.vat_number, rate)

        bands = tuple(_band(b, derived, seller.country, language) for b in invoice.tax_breakdown)
        notes = (tuple(invoice.notes) if invoice.notes is not None
                 else legal_notes(((b.category, b.rate, b.exemption_code) for b in bands), seller.country, language))
        return cls(
            tenant_name=tenant_name,
            number=invoice.display_number,
            issued_at=invoice.issued_at,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            timezone=invoice.timezone,
            currency=invoice.currency,
            seller=seller,
            buyer=buyer,
            lines=tuple(
                DocumentLine(
                    order_ref=line.order_ref,
                    dispatched_at=line.dispatched_at,
                    sku=line.sku,
                    description=line.description,
                    quantity=line.quantity,
                    unit_cost=Decimal(line.unit_cost),
                    unit_shipping=Decimal(line.unit_shipping),
                    tax_rate=Decimal(line.tax_rate),
                    net=Decimal(line.net),
                    vat_category=line.vat_category or derived(Decimal(line.tax_rate)),
                )
                for line in sorted(lines, key=lambda l: l.position)
            ),
            tax_bands=bands,
            net_total=Decimal(invoice.net_total),
            tax_total=Decimal(invoice.tax_total),
            gross_total=Decimal(invoice.gross_total),
            payment_terms_days=invoice.payment_terms_days,
            order_count=invoice.order_count,
            language=language,
            notes=notes,
            fx=fx_from_json(invoice.fx) if invoice.fx else None,
        )

    @classmethod
    async def load(cls, invoice: Invoice) -> InvoiceDocument:
        """Fetch lines and tenant name for a stored invoice."""
        await invoice.fetch_related("tenant")
        lines = await InvoiceLine.filter(invoice_id=invoice.id).order_by("position")
        return cls.from_models(invoice, lines, tenant_name=invoice.tenant.name)


def _band(stored: Mapping[str, str], derived: Callable[[Decimal], str], seller_country: str,
          language: str) -> DocumentTaxBand:
    """One stored ``tax_breakdown`` row; a row without ``category`` (older invoices) gets the derived one."""
    rate = Decimal(stored["rate"])
    category = stored.get("category") or derived(rate)
    if "category" in stored:
        reason, code = stored.get("exemption_reason", ""), stored.get("exemption_code", "")
    else:
        reason = exemption_reason(category, seller_country, language) if category != "S" else ""
        code = exemption_code(category)
    return DocumentTaxBand(rate=rate, net=Decimal(stored["net"]), tax=Decimal(stored["tax"]), category=category,
                           exemption_reason=reason, exemption_code=code)


def fx_from_json(data: Mapping[str, Any]) -> FxConversion:
    """The ``FxConversion`` snapshotted in ``Invoice.fx`` (``invoicing.billing.fx.fx_json`` writes it)."""
    return FxConversion(
        currency=data["currency"], rate=Decimal(data["rate"]), rate_date=date.fromisoformat(data["rate_date"]),
        source=data["source"], tax_total=Decimal(data["tax_total"]),
        tax_bands=tuple((Decimal(b["rate"]), b["category"], Decimal(b["tax"])) for b in data["tax_bands"]),
    )
