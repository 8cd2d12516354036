"""The tenant's invoice number sequence: sequential, gapless, unique, never reused.

``take_next_number`` must be called inside the run's transaction. It increments
the tenant row with a single ``UPDATE … SET n = n + 1``, which takes the row lock
(PostgreSQL) or the database write lock (SQLite) until commit, so concurrent runs
of one tenant queue here; a rollback returns the number, so there are no gaps.
The ``(tenant, number)`` unique constraint is the last line of defence.
"""

from __future__ import annotations

from tortoise.expressions import F

from models import Tenant


async def take_next_number(tenant_id: int) -> tuple[int, str]:
    """Return ``(number, display_number)`` for the next invoice of the tenant."""
    await Tenant.filter(id=tenant_id).update(last_invoice_number=F("last_invoice_number") + 1)
    tenant = await Tenant.get(id=tenant_id)
    return tenant.last_invoice_number, tenant.format_number(tenant.last_invoice_number)


async def peek_next_number(tenant_id: int) -> str:
    """The number the next invoice would get (dry runs); takes nothing."""
    tenant = await Tenant.get(id=tenant_id)
    return tenant.format_number(tenant.last_invoice_number + 1)
