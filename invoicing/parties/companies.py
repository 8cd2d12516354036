"""Creating and changing dropship companies (the buyers).

Products and prices live in ``invoicing.ingest.catalog``, orders in ``invoicing.ingest.order_sync``.

Every function validates all of its input before writing anything and writes in
one transaction, so bad input changes nothing. A change of an existing company
locks its row, reads the old values under that lock and records its audit entry in
the same transaction, so the audit log replays to the final state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.ingest.batches import UpsertResult
from invoicing.parties.accounting import (
    lock_party,
    normalise_accounting,
    normalise_country,
    update_accounting,
)
from models import (
    Company,
    Integration,
    IntegrationKind,
    Invoice,
    Price,
    Tenant,
)


async def find_company(tenant: Tenant, short_name: str) -> Company:
    """The tenant's company called ``short_name`` (other tenants' companies do not exist here)."""
    name = short_name.strip().lower()
    company = await Company.get_or_none(tenant_id=tenant.id, short_name=name) if validation.storable(name, 40) else None
    if company is None:
        raise NotFound(f"No company '{short_name}' in {tenant.name}. `/invoicing companies` lists them.")
    return company


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
        await audit.record(tenant.id, actor=actor, action="company.add", target=f"company:{short}",
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
    writes nothing and adds no audit entry. A change runs in one ``in_transaction()``
    that locks the company row, compares with the values read under the lock, writes
    and records one ``company.update`` audit entry; the company returned is the row as
    stored.
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
    if not _changes(company, values, details):
        return company, UpsertResult.UNCHANGED  # a replay: no lock, no write, no audit entry
    async with in_transaction():
        row = await lock_party(company)
        changes = _changes(row, values, details)  # again under the lock: the audit's old values
        if not changes:
            return row, UpsertResult.UNCHANGED
        if "currency" in changes and (
            await Price.filter(retailer_id=row.id).exists() or await Invoice.filter(company_id=row.id).exists()
        ):
            raise Conflict(f"Company '{short}' already has prices or invoices in {row.currency}; "
                           "its currency can no longer change.")
        row.update_from_dict({k: new for k, (_, new) in changes.items()})
        await row.save(update_fields=list(changes))
        await audit.record(tenant.id, actor=actor, action="company.update", target=f"company:{short}",
                           old={k: old for k, (old, _) in changes.items()},
                           new={k: new for k, (_, new) in changes.items()})
    return row, UpsertResult.UPDATED


def _changes(company: Company, values: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (old, new)}`` of what ``upsert_company`` would change on ``company`` as read."""
    wanted = {**values, **details}
    if values["country"] != company.country and company.vat_number and "vat_number" not in details:
        # A stored VAT number must stay valid for the new country.
        wanted["vat_number"] = _accounting({"vat_number": company.vat_number}, values["country"])["vat_number"]
    return {k: (getattr(company, k), v) for k, v in wanted.items() if getattr(company, k) != v}


async def set_accounting(company: Company, updates: Mapping[str, Any], *, actor: str) -> dict[str, tuple[Any, Any]]:
    """Change the company's accounting details (``ACCOUNTING_KEYS``); return ``{key: (old, new)}``.

    All-or-nothing (see ``update_accounting``). One ``in_transaction()`` (nested in the
    caller's when there is one) locks the company row, reads the old values under the
    lock, writes, and records one ``accounting.set`` audit entry (target
    ``company:<co>``, old/new as text) when something changed. ``company`` is refreshed
    in place with the stored accounting details.
    """
    async with in_transaction():
        changes = await update_accounting(company, updates)
        if changes:
            await audit.record(company.tenant_id, actor=actor, action="accounting.set",
                               target=f"company:{company.short_name}",
                               old={k: str(old) for k, (old, _) in changes.items()},
                               new={k: str(new) for k, (_, new) in changes.items()})
    return changes


def normalise_channel(channel: str) -> str:
    """A company's Slack channel as stored: ``#name``, a channel id (``C…``/``G…``) or "" (none)."""
    value = validation.text(channel, "channel", max_len=80, required=False)
    if value.lower() == "none":
        value = ""
    if value and not (value.startswith("#") or value[:1] in {"C", "G"}):
        raise InvalidInput("channel", f"{channel!r} is not a channel; pick one with #, e.g. channel=#billing")
    return value


async def set_channel(company: Company, channel: str, *, actor: str) -> bool:
    """Set the Slack channel run notices of ``company`` go to (``none`` clears it); True if it changed.

    The value is validated first (``normalise_channel``; ``InvalidInput`` names
    ``channel``). One ``in_transaction()`` (nested in the caller's when there is one)
    locks the company row, reads the old channel under the lock, writes, and records a
    ``company.channel`` audit entry (target ``company:<co>``, old/new ``{"channel": …}``)
    when it changed. ``company.slack_channel`` is refreshed in place.
    """
    value = normalise_channel(channel)
    return await set_company_column(company, "slack_channel", value, key="channel", actor=actor) != value


async def set_company_column(company: Company, column: str, value: object, *, key: str, actor: str) -> object:
    """Set one column of ``company`` under its row lock, audited as ``company.<key>`` when it changed;
    return the old value. One ``in_transaction()`` (nested in the caller's when there is one) locks the
    row, reads the old value under the lock, writes and records the entry (target ``company:<co>``, old/new
    ``{key: …}``); ``company`` is refreshed in place. Validate ``value`` before calling."""
    async with in_transaction():
        row = await lock_party(company)
        old = getattr(row, column)
        if old != value:
            setattr(row, column, value)
            await row.save(update_fields=[column])
            await audit.record(row.tenant_id, actor=actor, action=f"company.{key}",
                               target=f"company:{row.short_name}", old={key: old}, new={key: value})
    setattr(company, column, value)
    return old
