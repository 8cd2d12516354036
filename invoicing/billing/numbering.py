"""The tenant's invoice number sequence: sequential, gapless, unique, never reused.

``take_next_number`` must be called inside the run's transaction. It increments
the tenant row with a single ``UPDATE … SET n = n + 1``, which takes the row lock
(PostgreSQL) or the database write lock (SQLite) until commit, so concurrent runs
of one tenant queue here; a rollback returns the number, so there are no gaps.
The ``(tenant, number)`` unique constraint is the last line of defence. Credit notes
have their own sequence on the same row (``take_next_credit_number``).
"""

from __future__ import annotations

from invoicing.sql import Statement
from models import Tenant


async def take_next_number(tenant: Tenant) -> tuple[int, str]:
    """Return ``(number, display_number)`` for the next invoice of ``tenant``.

    One ``UPDATE … RETURNING``: the increment, the row lock and the read of the new
    value (with the prefix and padding current at that moment) are one statement.
    """
    q = Statement()
    rows = await q.rows(
        "UPDATE tenant SET last_invoice_number = last_invoice_number + 1 "
        f"WHERE id = {q(tenant.id)} RETURNING last_invoice_number, invoice_prefix, number_padding")
    number, prefix, padding = rows[0]
    tenant.last_invoice_number, tenant.invoice_prefix, tenant.number_padding = int(number), prefix, int(padding)
    return tenant.last_invoice_number, tenant.format_number(tenant.last_invoice_number)


async def peek_next_number(tenant_id: int) -> str:
    """The number the next invoice would get (dry runs); takes nothing."""
    tenant = await Tenant.get(id=tenant_id)
    return tenant.format_number(tenant.last_invoice_number + 1)


async def take_next_credit_number(tenant: Tenant) -> tuple[int, str]:
    """Return ``(number, display_number)`` for the next credit note of ``tenant``.

    The credit notes' own gapless sequence (``last_credit_note_number``), kept exactly like
    the invoice sequence: one ``UPDATE … RETURNING`` on the same tenant row inside the
    caller's transaction, so a refused or rolled-back credit note takes no number. It locks
    the same row as ``take_next_number``, at the same place in the lock order.
    """
    q = Statement()
    rows = await q.rows(
        "UPDATE tenant SET last_credit_note_number = last_credit_note_number + 1 "
        f"WHERE id = {q(tenant.id)} RETURNING last_credit_note_number, credit_note_prefix, number_padding")
    number, prefix, padding = rows[0]
    tenant.last_credit_note_number, tenant.credit_note_prefix, tenant.number_padding = int(number), prefix, int(padding)
    return tenant.last_credit_note_number, tenant.format_credit_number(tenant.last_credit_note_number)


async def peek_next_credit_number(tenant_id: int) -> str:
    """The number the next credit note would get (previews); takes nothing."""
    tenant = await Tenant.get(id=tenant_id)
    return tenant.format_credit_number(tenant.last_credit_note_number + 1)
