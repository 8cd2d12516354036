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

#: The two sequences on the tenant row: (counter column, prefix column, formatter method).
_INVOICES = ("last_invoice_number", "invoice_prefix", "format_number")
_CREDIT_NOTES = ("last_credit_note_number", "credit_note_prefix", "format_credit_number")


async def _take(tenant: Tenant, sequence: tuple[str, str, str], count: int = 1) -> list[tuple[int, str]]:
    """One ``UPDATE … RETURNING``: the increment, the row lock and the read of the new value
    (with the prefix and padding current at that moment) are one statement. ``count`` numbers are
    taken at once: the last is returned, the others are the ones just below it."""
    counter, prefix_column, formatter = sequence
    q = Statement()
    rows = await q.rows(
        f"UPDATE tenant SET {counter} = {counter} + {q(count)} "
        f"WHERE id = {q(tenant.id)} RETURNING {counter}, {prefix_column}, number_padding")
    last, prefix, padding = rows[0]
    setattr(tenant, counter, int(last))
    setattr(tenant, prefix_column, prefix)
    tenant.number_padding = int(padding)
    format_number = getattr(tenant, formatter)
    return [(number, str(format_number(number))) for number in range(int(last) - count + 1, int(last) + 1)]


async def take_next_number(tenant: Tenant) -> tuple[int, str]:
    """Return ``(number, display_number)`` for the next invoice of ``tenant`` (inside the run's transaction)."""
    return (await _take(tenant, _INVOICES))[0]


async def take_next_numbers(tenant: Tenant, count: int) -> list[tuple[int, str]]:
    """The next ``count`` numbers of ``tenant``'s invoices, ascending, as ``take_next_number`` gives one:
    one statement, the same lock; the caller must give every one of them to an invoice before commit."""
    if count < 1:
        raise ValueError("count must be at least 1")
    return await _take(tenant, _INVOICES, count)


async def peek_next_number(tenant_id: int) -> str:
    """The number the next invoice would get (dry runs); takes nothing."""
    tenant = await Tenant.get(id=tenant_id)
    return tenant.format_number(tenant.last_invoice_number + 1)


async def take_next_credit_number(tenant: Tenant) -> tuple[int, str]:
    """Return ``(number, display_number)`` for the next credit note of ``tenant``.

    The credit notes' own gapless sequence (``last_credit_note_number``), kept exactly like
    the invoice sequence: inside the caller's transaction, so a refused or rolled-back credit
    note takes no number. It locks the same row as ``take_next_number``, at the same place in
    the lock order.
    """
    return (await _take(tenant, _CREDIT_NOTES))[0]


async def peek_next_credit_number(tenant_id: int) -> str:
    """The number the next credit note would get (previews); takes nothing."""
    tenant = await Tenant.get(id=tenant_id)
    return tenant.format_credit_number(tenant.last_credit_note_number + 1)
