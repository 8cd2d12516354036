"""Creating and finding tenants (admin companies: the seller on every invoice)."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from invoicing import validation
from invoicing.errors import Conflict, InvalidInput, NotFound
from models import AuditEntry, Plan, Tenant


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
        tenant = await Tenant.create(
            name=name, slack_team_id=slack_team_id.strip() if slack_team_id else None, plan=plan_value, currency=currency
        )
        await AuditEntry.create(tenant=tenant, actor=actor, action="tenant.create", target=f"tenant:{name}",
                                new={"plan": plan_value.value, "currency": currency, "slack_team_id": slack_team_id})
    return tenant


async def get_tenant(name: str) -> Tenant:
    tenant = await Tenant.get_or_none(name=name)
    if tenant is None:
        raise NotFound(f"No tenant called '{name}'. `invoicebot tenant create` makes one.")
    return tenant
