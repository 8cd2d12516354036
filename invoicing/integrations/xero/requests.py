"""Building a batch's request elements: the documents, the company settings, the contacts they name.

``build_batch`` loads what a batch of pushes needs in a few queries, makes sure the contacts exist in the
organisation (``contacts.ensure``, which raises when Xero cannot be reached: the batch then waits), and
returns each push's element as JSON text, or why it cannot be sent (``errors``: a VAT category without
a tax type, a contact Xero refused) — those fail alone, the others go.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

from invoicing.integrations.xero import contacts
from invoicing.integrations.xero.client import XeroClient
from invoicing.integrations.xero.company_settings import KIND, view
from invoicing.integrations.xero.payloads import (
    PayloadError,
    Totals,
    credit_note_element,
    encode,
    invoice_element,
    ours,
    purchase_order_element,
)
from models import (
    Company,
    CreditNote,
    CreditNoteLine,
    Integration,
    Invoice,
    InvoiceLine,
    Tenant,
    XeroConnection,
    XeroPush,
    XeroPushKind,
)


@dataclass
class Built:
    payloads: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


async def build_batch(client: XeroClient, connection: XeroConnection, kind: XeroPushKind,
                      rows: list[XeroPush], *, contact_lock: asyncio.Lock | None = None) -> Built:
    built = Built()
    companies = await Company.in_bulk({r.company_id for r in rows}, "id")
    settings = {row.company_id: view(companies[row.company_id], row) for row in await Integration.filter(
        company_id__in=list(companies), kind=KIND)}
    if kind == XeroPushKind.CREDIT_NOTE:
        notes = await CreditNote.in_bulk([r.credit_note_id for r in rows if r.credit_note_id], "id")
        note_lines: dict[int, list[CreditNoteLine]] = defaultdict(list)
        for cl in await CreditNoteLine.filter(credit_note_id__in=list(notes)).order_by("credit_note_id", "position"):
            note_lines[cl.credit_note_id].append(cl)
        credited = {i.id: i.display_number for i in await Invoice.filter(
            id__in=[n.invoice_id for n in notes.values()]).only("id", "display_number")}
    else:
        invoices = await Invoice.in_bulk([r.invoice_id for r in rows if r.invoice_id], "id")
        invoice_lines: dict[int, list[InvoiceLine]] = defaultdict(list)
        for il in await InvoiceLine.filter(invoice_id__in=list(invoices)).order_by("invoice_id", "position"):
            invoice_lines[il.invoice_id].append(il)
    if kind == XeroPushKind.PURCHASE_ORDER:
        seller = contacts.supplier(await Tenant.get(id=connection.tenant_id))
        party_of = {r.id: seller for r in rows}
    else:
        party_of = {r.id: contacts.buyer(companies[r.company_id]) for r in rows}
    ids = await contacts.ensure(client, connection, list({p.number: p for p in party_of.values()}.values()),
                                lock=contact_lock)
    for row in rows:
        contact = ids.get(party_of[row.id].number)
        if not isinstance(contact, str):
            built.errors[row.id] = str(contact or "The contact could not be written to Xero.")
            continue
        s = settings[row.company_id]
        try:
            if kind == XeroPushKind.CREDIT_NOTE:
                assert row.credit_note_id is not None
                note = notes[row.credit_note_id]
                element = credit_note_element(note, note_lines[note.id], credited.get(note.invoice_id, ""), s,
                                              contact_id=contact)
            elif kind == XeroPushKind.INVOICE:
                assert row.invoice_id is not None
                element = invoice_element(invoices[row.invoice_id], invoice_lines[row.invoice_id], s,
                                          contact_id=contact)
            else:
                assert row.invoice_id is not None
                element = purchase_order_element(invoices[row.invoice_id], invoice_lines[row.invoice_id], s,
                                                 contact_id=contact)
        except PayloadError as exc:
            built.errors[row.id] = str(exc)
            continue
        built.payloads[row.id] = encode(element)
    return built


async def our_totals(rows: list[XeroPush]) -> dict[int, Totals]:
    """Our totals of each push's document (a purchase order's are its invoice's)."""
    notes = await CreditNote.in_bulk([r.credit_note_id for r in rows if r.credit_note_id], "id")
    invoices = await Invoice.in_bulk([r.invoice_id for r in rows if r.invoice_id and not r.credit_note_id], "id")
    return {r.id: ours(notes[r.credit_note_id] if r.credit_note_id else invoices[r.invoice_id])  # type: ignore[index]
            for r in rows}
