"""Creating and changing dropship companies (the buyers).

Products and prices live in ``invoicing.ingest.catalog``, orders in ``invoicing.ingest.order_sync``.

Every function validates all of its input before writing anything and writes in
one transaction, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tortoise.transactions import in_transaction

from invoicing import validation
from invoicing.errors import Conflict, InvalidInput
from invoicing.ingest.batches import UpsertResult
from invoicing.parties.accounting import normalise_accounting, normalise_country
from models import (
    AuditEntry,
    Company,
    Integration,
    IntegrationKind,
    Invoice,
    Price,
    Tenant,
)


async def create_company(
    tenant: Tenant,
    short_name: str,
    *,
    name: str,
    country: str,
    currency: str,
    timezone: str = "UTC",
    channel: str = "",
    accounting: Mapping[str, Any] | None = None,
    actor: str = "cli",
) -> Company:
    """A dropship company with one (disabled) row per integration kind; accounting keys optional."""
    short = validation.short_name(short_name)
    values = {
        "name": validation.text(name, "name"),
        "country": normalise_country(country),
        "currency": validation.currency(currency),
        "timezone": validation.timezone(timezone),
        "slack_channel": validation.text(channel, "channel", max_len=80, required=False),
    }
    details = normalise_accounting({"country": values["country"], **(accounting or {})}, country=values["country"])
    if await Company.filter(tenant_id=tenant.id, short_name=short).exists():
        raise Conflict(f"Company '{short}' already exists in {tenant.name}.")
    async with in_transaction():
        company = await Company.create(tenant_id=tenant.id, short_name=short, **{**values, **details})
        await Integration.bulk_create([Integration(company_id=company.id, kind=kind) for kind in IntegrationKind])
        await AuditEntry.create(tenant_id=tenant.id, actor=actor, action="company.add", target=f"company:{short}",
                                new={**values, **details})
    return company


def _accounting(updates: Mapping[str, Any], country: str) -> dict[str, Any]:
    """Accounting keys validated for ``country``; errors name ``accounting.<key>``."""
    stated = str(updates.get("country") or "").strip()
    if stated and stated.upper() != country:
        raise InvalidInput("accounting.country", f"{stated!r} contradicts the company's country {country}")
    try:
        return normalise_accounting({k: v for k, v in updates.items() if k != "country"}, country=country)
    except InvalidInput as exc:
        raise InvalidInput(f"accounting.{exc.field}", exc.reason) from None


async def upsert_company(
    tenant: Tenant,
    short_name: str,
    *,
    name: str,
    country: str,
    currency: str,
    timezone: str = "UTC",
    channel: str | None = None,
    accounting: Mapping[str, Any] | None = None,
    actor: str = "cli",
) -> tuple[Company, UpsertResult]:
    """Create the company or bring it to the given state (the feed's ``PUT /companies/{co}``).

    Only the accounting keys given are changed (others keep their values); ``channel``
    None leaves the channel alone. Changing the currency is refused once the company
    has retailer prices or invoices, because those are in the old currency. A replay
    writes nothing and adds no audit entry.
    """
    short = validation.short_name(short_name)
    values: dict[str, Any] = {
        "name": validation.text(name, "name"),
        "country": normalise_country(country),
        "currency": validation.currency(currency),
        "timezone": validation.timezone(timezone),
    }
    if channel is not None:
        values["slack_channel"] = validation.text(channel, "channel", max_len=80, required=False)
    details = _accounting(accounting or {}, values["country"])
    company = await Company.get_or_none(tenant_id=tenant.id, short_name=short)
    if company is None:
        created = await create_company(
            tenant, short, name=values["name"], country=values["country"], currency=values["currency"],
            timezone=values["timezone"], channel=values.get("slack_channel", ""), accounting=details, actor=actor,
        )
        return created, UpsertResult.CREATED
    if values["country"] != company.country and company.vat_number and "vat_number" not in details:
        # A stored VAT number must stay valid for the new country.
        details["vat_number"] = _accounting({"vat_number": company.vat_number}, values["country"])["vat_number"]
    wanted = {**values, **details}
    changes = {k: (getattr(company, k), v) for k, v in wanted.items() if getattr(company, k) != v}
    if not changes:
        return company, UpsertResult.UNCHANGED
    if "currency" in changes and (
        await Price.filter(retailer_id=company.id).exists() or await Invoice.filter(company_id=company.id).exists()
    ):
        raise Conflict(f"Company '{short}' already has prices or invoices in {company.currency}; "
                       "its currency can no longer change.")
    async with in_transaction():
        company.update_from_dict({k: new for k, (_, new) in changes.items()})
        await company.save(update_fields=list(changes))
        await AuditEntry.create(tenant_id=tenant.id, actor=actor, action="company.update", target=f"company:{short}",
                                old={k: old for k, (old, _) in changes.items()},
                                new={k: new for k, (_, new) in changes.items()})
    return company, UpsertResult.UPDATED
