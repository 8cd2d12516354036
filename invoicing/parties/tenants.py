"""Creating and finding tenants (admin companies: the seller on every invoice), their seller details and admins.

Every change of an existing tenant runs in one transaction that locks the tenant
row, reads the old values under that lock, writes, and records its audit entry
there: concurrent changes queue on the row, and the audit log replays to the final
state (each entry's ``old`` is the previous entry's ``new``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.errors import Conflict, InvalidInput, NotFound
from invoicing.parties.accounting import accounting_changes, copy_accounting, lock_party
from models import ACCOUNTING_KEYS, Plan, Tenant

#: Seller details beyond the accounting keys.
SELLER_ONLY_KEYS: tuple[str, ...] = ("currency", "invoice_prefix", "credit_note_prefix", "timezone")
SELLER_KEYS: tuple[str, ...] = (*ACCOUNTING_KEYS, *SELLER_ONLY_KEYS)
#: A Slack user id (``U…``; ``W…`` on Enterprise Grid).
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


async def create_tenant(
    name: str, *, slack_team_id: str | None = None, plan: str = "oms", currency: str = "GBP", actor: str = "cli"
) -> Tenant:
    name = validation.text(name, "name", max_len=100)
    try:
        plan_value = Plan(plan)
    except ValueError:
        raise InvalidInput("plan", f"{plan!r} is not a plan; use oms or oms_lite") from None
    currency = validation.currency(currency)
    if slack_team_id is not None and not slack_team_id.strip().startswith("T"):
        raise InvalidInput("slack-team", f"{slack_team_id!r} is not a Slack team id (they start with T)")
    if await Tenant.filter(name=name).exists():
        raise Conflict(f"A tenant called '{name}' already exists.")
    if slack_team_id and await Tenant.filter(slack_team_id=slack_team_id.strip()).exists():
        raise Conflict(f"Slack workspace {slack_team_id} is already linked to another tenant.")
    async with in_transaction():
        tenant = await Tenant.create(name=name, slack_team_id=slack_team_id.strip() if slack_team_id else None,
                                     plan=plan_value, currency=currency)
        await audit.record(tenant.id, actor=actor, action="tenant.create", target=f"tenant:{name}",
                           new={"plan": plan_value.value, "currency": currency, "slack_team_id": slack_team_id})
    return tenant


async def get_tenant(name: str) -> Tenant:
    tenant = await Tenant.get_or_none(name=name)
    if tenant is None:
        raise NotFound(f"No tenant called '{name}'. `invoicebot tenant create` makes one.")
    return tenant


def _seller_only(updates: Mapping[str, Any]) -> dict[str, str]:
    """The validated ``currency``, ``invoice_prefix`` and ``timezone`` among ``updates``."""
    clean: dict[str, str] = {}
    if "currency" in updates:
        clean["currency"] = validation.currency(str(updates["currency"]))
    if "timezone" in updates:  # the zone invoice dates are printed in (issue 14)
        clean["timezone"] = validation.timezone(str(updates["timezone"]))
    for key, example in (("invoice_prefix", "INK-"), ("credit_note_prefix", "CN-")):
        if key not in updates:
            continue
        prefix = validation.text(str(updates[key]), key, max_len=20, required=False)
        if prefix and not all(ch.isalnum() or ch in "-_/." for ch in prefix):
            raise InvalidInput(key, f"letters, digits and - _ / . only (e.g. {example})")
        clean[key] = prefix
    return clean


async def set_seller_details(tenant: Tenant, updates: Mapping[str, Any], *, actor: str) -> dict[str, tuple[Any, Any]]:
    """Change the seller details (``SELLER_KEYS``); return ``{key: (old, new)}`` of what changed.

    All-or-nothing: every value is validated before anything is written (accounting
    keys as in ``invoicing.parties.accounting``; ``currency`` ISO 4217; ``timezone`` IANA;
    ``invoice_prefix`` letters, digits and ``- _ / .``). One ``in_transaction()``
    (nested in the caller's when there is one) locks the tenant row, reads the old
    values under the lock, writes, and records one ``seller.set`` audit entry (target
    ``seller``, old/new as text) when something changed. ``tenant`` is refreshed in
    place with the stored seller details.
    """
    extra = _seller_only(updates)
    details = {k: v for k, v in updates.items() if k not in SELLER_ONLY_KEYS}
    async with in_transaction():
        row = await lock_party(tenant)
        changes = accounting_changes(row, details)
        changes.update({k: (getattr(row, k), v) for k, v in extra.items() if getattr(row, k) != v})
        if changes:
            row.update_from_dict({k: new for k, (_, new) in changes.items()})
            await row.save(update_fields=list(changes))
            await audit.record(row.id, actor=actor, action="seller.set", target="seller",
                               old={k: str(old) for k, (old, _) in changes.items()},
                               new={k: str(new) for k, (_, new) in changes.items()})
    copy_accounting(row, tenant)
    for key in SELLER_ONLY_KEYS:
        setattr(tenant, key, getattr(row, key))
    return changes


def _check_user(user_id: str) -> str:
    if not SLACK_USER_ID.match(user_id):
        raise InvalidInput("user", f"{user_id!r} is not a Slack user id (U… or W…)")
    return user_id


async def _change_admins(tenant: Tenant, user_id: str, action: Literal["add", "remove"], *, actor: str) -> bool:
    user_id = _check_user(user_id)
    async with in_transaction():
        row = await lock_party(tenant)
        old = list(row.admin_user_ids or [])
        if action == "add":
            new = old if user_id in old else [*old, user_id]
        else:
            new = [u for u in old if u != user_id]
        if new != old:
            row.admin_user_ids = new
            await row.save(update_fields=["admin_user_ids"])
            await audit.record(row.id, actor=actor, action=f"admins.{action}", target="admins",
                               old={"admins": ",".join(old)}, new={"admins": ",".join(new)})
    tenant.admin_user_ids = list(new)
    return new != old


async def add_admin(tenant: Tenant, user_id: str, *, actor: str) -> bool:
    """Put the Slack user ``user_id`` on the tenant's InvoiceBot admin list; False if already on it.

    One ``in_transaction()`` (nested in the caller's when there is one) locks the
    tenant row, so concurrent adds and removes never lose each other's change; a change
    records an ``admins.add`` audit entry (target ``admins``, old/new ``{"admins":
    "U1,U2"}``) in the same transaction. ``tenant.admin_user_ids`` is refreshed in place.
    """
    return await _change_admins(tenant, user_id, "add", actor=actor)


async def remove_admin(tenant: Tenant, user_id: str, *, actor: str) -> bool:
    """Take ``user_id`` off the tenant's InvoiceBot admin list; False if it was not on it.

    Same transaction, lock and audit guarantees as ``add_admin`` (action ``admins.remove``).
    """
    return await _change_admins(tenant, user_id, "remove", actor=actor)
