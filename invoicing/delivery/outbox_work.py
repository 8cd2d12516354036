"""What one outbox pass sends: each delivery's document and e-invoice choice, loaded in a few queries.

The number of queries does not grow with the number of deliveries: invoices come with the
due rows (``prefetch_related``), lines (as rows: ``line_rows.lines_of``), tenants, credit notes and
PDF Emailer settings in one query each. The e-invoice choice is read when the pass starts, not per message.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from invoicing.billing.credit_document import credit_document
from invoicing.billing.document import InvoiceDocument
from invoicing.billing.line_rows import lines_of
from invoicing.delivery.einvoice.choice import AUTO, stored_choice, wants_facturx
from models import CreditNote, CreditNoteLine, Delivery, Integration, IntegrationKind, Tenant


@dataclass(frozen=True)
class Work:
    """The document a delivery carries (its invoice's, or its credit note's) and whether its PDF is a Factur-X."""

    doc: InvoiceDocument
    facturx: bool


async def load_work(deliveries: list[Delivery]) -> dict[int, Work]:
    """``Work`` by delivery id; ``deliveries`` come with their ``invoice`` prefetched."""
    invoices = {d.invoice_id: d.invoice for d in deliveries}
    ids = list(invoices)
    lines = await lines_of(ids)
    names = dict(await Tenant.filter(id__in={i.tenant_id for i in invoices.values()}).values_list("id", "name"))
    by_invoice = {
        invoice.id: InvoiceDocument.from_models(invoice, lines.get(invoice.id, ()),
                                                tenant_name=names[invoice.tenant_id])
        for invoice in invoices.values()
    }
    credit_ids = [d.credit_note_id for d in deliveries if d.credit_note_id is not None]
    notes = {n.id: n for n in await CreditNote.filter(id__in=credit_ids)} if credit_ids else {}
    credit_lines: dict[int, list[CreditNoteLine]] = defaultdict(list)
    for credit_line in await CreditNoteLine.filter(credit_note_id__in=credit_ids) if credit_ids else []:
        credit_lines[credit_line.credit_note_id].append(credit_line)
    settings: dict[int, dict[str, Any]] = {
        row.company_id: row.settings for row in await Integration.filter(
            company_id__in={i.company_id for i in invoices.values()}, kind=IntegrationKind.PDF_EMAILER)
    }
    work: dict[int, Work] = {}
    for d in deliveries:
        doc = by_invoice[d.invoice_id] if d.credit_note_id is None else credit_document(
            notes[d.credit_note_id], credit_lines[d.credit_note_id], by_invoice[d.invoice_id])
        company = d.invoice.company_id
        choice = stored_choice(settings[company]) if company in settings else AUTO
        work[d.id] = Work(doc, wants_facturx(choice, doc.buyer.country))
    return work
