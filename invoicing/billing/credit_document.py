"""A stored credit note as a printable ``InvoiceDocument`` (``kind="credit_note"``).

The document is built from the credit note's own snapshot (its lines, bands and totals)
plus, from the **original invoice's** document, what the credit note repeats: language,
the exemption reason and VATEX code of each VAT band, and the legal notes when the credit
note itself has a band outside the standard rate. The VAT in the seller's accounting
currency is restated at the invoice's snapshotted rate (never a new rate). The renderer
and the e-mail composer stay pure: they never touch the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from invoicing.billing.document import DocumentLine, DocumentTaxBand, FxConversion, InvoiceDocument
from invoicing.billing.money import plain, round_money
from invoicing.errors import NotFound
from invoicing.validation import storable
from models import CreditNote, CreditNoteLine, Invoice, InvoiceLine


def credit_document(note: CreditNote, lines: Iterable[CreditNoteLine], original: InvoiceDocument) -> InvoiceDocument:
    """The credit note ``note`` (with its ``lines``) that credits the invoice ``original``."""
    reasons = {(b.category, plain(b.rate)): b for b in original.tax_bands}
    bands = []
    for stored in note.tax_breakdown:
        category, rate = str(stored.get("category") or "S"), Decimal(stored["rate"])
        known = reasons.get((category, plain(rate)))
        bands.append(DocumentTaxBand(rate=rate, net=Decimal(stored["net"]), tax=Decimal(stored["tax"]),
                                     category=category, exemption_reason=known.exemption_reason if known else "",
                                     exemption_code=known.exemption_code if known else ""))
    printed = tuple(
        DocumentLine(order_ref=line.order_ref, dispatched_at=line.dispatched_at, sku=line.sku,
                     description=line.description, quantity=line.quantity, unit_cost=Decimal(line.unit_cost),
                     unit_shipping=Decimal(line.unit_shipping), tax_rate=Decimal(line.tax_rate),
                     net=Decimal(line.net), vat_category=line.vat_category)
        for line in sorted(lines, key=lambda l: l.position)
    )
    return dataclasses.replace(
        original, kind="credit_note", number=note.display_number, issued_at=note.issued_at, lines=printed,
        tax_bands=tuple(bands), net_total=Decimal(note.net_total), tax_total=Decimal(note.tax_total),
        gross_total=Decimal(note.gross_total), payment_terms_days=0, order_count=len({l.order_ref for l in printed}),
        notes=original.notes if any(b.category != "S" for b in bands) else (),
        fx=_restated(original.fx, bands), original_number=original.number, original_issued_at=original.issued_at,
        reason=note.reason,
    )


def _restated(fx: FxConversion | None, bands: list[DocumentTaxBand]) -> FxConversion | None:
    if fx is None:
        return None
    rows = tuple((b.rate, b.category, round_money(b.tax * fx.rate, fx.currency)) for b in bands)
    return dataclasses.replace(fx, tax_bands=rows, tax_total=sum((r[2] for r in rows), Decimal(0)))


async def load_credit_document(note: CreditNote) -> InvoiceDocument:
    """Fetch the credit note's lines and its original invoice, and build the document."""
    invoice = await Invoice.get(id=note.invoice_id).prefetch_related("tenant")
    original = InvoiceDocument.from_models(invoice, await InvoiceLine.filter(invoice_id=invoice.id),
                                           tenant_name=invoice.tenant.name)
    return credit_document(note, await CreditNoteLine.filter(credit_note_id=note.id), original)


@dataclass(frozen=True)
class CreditNoteDetail:
    """A stored credit note (the printable document) plus its lines as stored and its company."""

    note: CreditNote
    lines: tuple[CreditNoteLine, ...]
    document: InvoiceDocument
    company: str


async def get_credit_note(tenant_id: int, number: str) -> CreditNoteDetail:
    """The tenant's credit note ``number`` (e.g. ``CN-000001``); another tenant's is ``NotFound``."""
    wanted = number.strip()
    note = await CreditNote.filter(tenant_id=tenant_id, display_number=wanted).select_related("company").first() \
        if storable(wanted, 40) else None
    if note is None:
        raise NotFound(f"No credit note {wanted}.")
    lines = tuple(await CreditNoteLine.filter(credit_note_id=note.id).order_by("position"))
    invoice = await Invoice.get(id=note.invoice_id).prefetch_related("tenant")
    original = InvoiceDocument.from_models(invoice, await InvoiceLine.filter(invoice_id=invoice.id),
                                           tenant_name=invoice.tenant.name)
    return CreditNoteDetail(note=note, lines=lines, document=credit_document(note, lines, original),
                            company=note.company.short_name)


@dataclass(frozen=True)
class CreditSummary:
    """One credit note of an invoice, as listed with it."""

    number: str
    issued_at: datetime
    gross: Decimal


async def credits_of(tenant_id: int, invoice_number: str) -> tuple[CreditSummary, ...]:
    """The credit notes of the tenant's invoice ``invoice_number``, oldest first (none: empty)."""
    notes = await CreditNote.filter(tenant_id=tenant_id, invoice__display_number=invoice_number.strip()
                                    ).order_by("number")
    return tuple(CreditSummary(n.display_number, n.issued_at, Decimal(n.gross_total)) for n in notes)
