"""Queue a document's Xero pushes in the transaction that issues it (the Xero outbox, like ``Delivery``).

``queue_pushes`` is called by the invoice run and by credit-note issuance, inside their transactions, so
an issued document and its pushes commit or roll back together. It writes nothing unless the company's
``xero`` integration is enabled: an invoice gets an ``invoice`` push (the tenant's organisation) and, with
``purchase_orders`` on, a ``purchase_order`` push (the company's organisation); a credit note gets a
``credit_note`` push. ``dedupe_key`` names the document, so a document is never queued twice per target.
The pushes are sent after commit by ``invoicing.integrations.xero.pushes``.
"""

from __future__ import annotations

from datetime import datetime

from models import CreditNote, Integration, IntegrationKind, Invoice, XeroPush, XeroPushKind


async def xero_integration(company_id: int) -> Integration | None:
    """The company's Xero integration when enabled (read before a document is numbered: see ``write_pushes``)."""
    return (await xero_integrations([company_id])).get(company_id)


async def xero_integrations(company_ids: list[int]) -> dict[int, Integration]:
    """The enabled Xero integrations of ``company_ids``, by company id, in one query (batched runs)."""
    rows = await Integration.filter(company_id__in=company_ids, kind=IntegrationKind.XERO, enabled=True)
    return {row.company_id: row for row in rows}


async def queue_pushes(company_id: int, *, now: datetime, invoice: Invoice | None = None,
                       credit_note: CreditNote | None = None) -> int:
    """Queue the Xero pushes of ``invoice`` or ``credit_note`` (in the caller's transaction); how many."""
    return await write_pushes(await xero_integration(company_id), now=now, invoice=invoice, credit_note=credit_note)


async def write_pushes(row: Integration | None, *, now: datetime, invoice: Invoice | None = None,
                       credit_note: CreditNote | None = None) -> int:
    """``queue_pushes`` with the integration already read (``xero_integration``): one INSERT, or nothing.

    The invoice run reads the integration before it takes its number, so only the INSERT happens
    while the tenant's sequence row is locked.
    """
    pushes = push_rows(row, now=now, invoice=invoice, credit_note=credit_note)
    if not pushes:
        return 0
    await XeroPush.bulk_create(pushes)
    return len(pushes)


def push_rows(row: Integration | None, *, now: datetime, invoice: Invoice | None = None,
              credit_note: CreditNote | None = None) -> list[XeroPush]:
    """``write_pushes``'s rows, not yet written (batched runs insert many at once); none unless enabled."""
    if row is None or not row.enabled:
        return []
    pushes: list[XeroPush] = []
    if invoice is not None:
        base = {"tenant_id": invoice.tenant_id, "company_id": row.company_id, "invoice_id": invoice.id,
                "number": invoice.display_number, "next_attempt_at": now}
        pushes.append(XeroPush(kind=XeroPushKind.INVOICE, dedupe_key=f"invoice:{invoice.id}", **base))
        if (row.settings or {}).get("purchase_orders"):
            pushes.append(XeroPush(kind=XeroPushKind.PURCHASE_ORDER, dedupe_key=f"po:{invoice.id}", **base))
    if credit_note is not None:
        pushes.append(XeroPush(kind=XeroPushKind.CREDIT_NOTE, dedupe_key=f"credit:{credit_note.id}",
                               tenant_id=credit_note.tenant_id, company_id=row.company_id,
                               invoice_id=credit_note.invoice_id, credit_note_id=credit_note.id,
                               number=credit_note.display_number, next_attempt_at=now))
    return pushes
