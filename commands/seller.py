"""``seller``: the tenant's own details, printed as the seller on every invoice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands.context import Args, CommandContext
from commands.replies import Reply, context, fields_section, header, md, mention, message
from invoicing.errors import InvalidInput
from invoicing.parties.accounting import missing_fields
from invoicing.parties.tenants import SELLER_KEYS, set_seller_details
from models import Tenant


def party_fields(details: Mapping[str, object]) -> list[tuple[str, str]]:
    address = ", ".join(str(details.get(k) or "") for k in ("address_line1", "address_line2", "city", "region",
                                                             "postcode", "country") if details.get(k))
    return [
        ("Legal name", str(details.get("legal_name") or "")),
        ("Address", address),
        ("VAT number", str(details.get("vat_number") or "")),
        ("Company number", str(details.get("company_number") or "")),
        ("E-mail", str(details.get("email") or "")),
        ("Phone", str(details.get("phone") or "")),
        ("Payment terms", f"{details.get('payment_terms_days')} days"),
        ("Bank", " / ".join(str(details[k]) for k in ("iban", "bic") if details.get(k))),
    ]


def missing_line(missing: list[str], fix: str) -> str:
    if not missing:
        return "All required details are set."
    return f":warning: Missing for invoicing: *{', '.join(missing)}*. Fix with `{fix}`."


def change_summary(changes: dict[str, tuple[Any, Any]]) -> str:
    """``city: Bristol → Bath, email: ∅ → ap@x.com`` (or ``nothing changed``)."""
    return ", ".join(f"{k}: {old or '∅'} → {new or '∅'}" for k, (old, new) in changes.items()) or "nothing changed"


def show_seller(tenant: Tenant) -> Reply:
    details = tenant.accounting_dict()
    return message(
        f"Seller details of {tenant.name}",
        header(f"Seller: {tenant.legal_name or tenant.name}"),
        fields_section(party_fields(details)
                       + [("Currency", tenant.currency), ("Time zone", tenant.timezone),
                          ("Invoice numbers", tenant.format_number(1) + ", …")]),
        context(missing_line(missing_fields(details, "seller"), "/invoicing seller set key=value")),
    )


async def seller(args: Args, ctx: CommandContext) -> Reply:
    tenant = await Tenant.get(id=ctx.tenant.id)
    if not args.words:
        args.only_options(())
        return show_seller(tenant)
    if args.words[0].lower() != "set":
        raise InvalidInput("seller", f"unknown action {args.words[0]!r}; use `seller` or `seller set key=value …`")
    args.no_extra_words(1)
    if not args.options:
        raise InvalidInput("seller set", f"give at least one key=value; keys: {', '.join(SELLER_KEYS)}")
    args.only_options(SELLER_KEYS)
    await ctx.require_admin("change the seller details")
    changes = await set_seller_details(tenant, args.options, actor=ctx.actor)
    summary = change_summary(changes)
    return message(f"Seller updated: {summary}", *show_seller(tenant).blocks[1:],
                   context(md("Updated by {}: {}", mention(ctx.user_id), summary)))
