"""``seller``: the tenant's own details, printed as the seller on every invoice."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from commands.context import Args, CommandContext
from commands.replies import Reply, context, fields_section, header, message
from invoicing import validation
from invoicing.errors import InvalidInput
from invoicing.parties.accounting import missing_fields, update_accounting
from models import ACCOUNTING_KEYS, AuditEntry, Tenant

SELLER_ONLY_KEYS = ("currency", "invoice_prefix")
SELLER_KEYS = (*ACCOUNTING_KEYS, *SELLER_ONLY_KEYS)


def party_fields(details: dict[str, object]) -> list[tuple[str, str]]:
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


def show_seller(tenant: Tenant) -> Reply:
    details = tenant.accounting_dict()
    return message(
        f"Seller details of {tenant.name}",
        header(f"Seller: {tenant.legal_name or tenant.name}"),
        fields_section(party_fields(details)
                       + [("Currency", tenant.currency), ("Invoice numbers", tenant.format_number(1) + ", …")]),
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
    extra: dict[str, str] = {}
    if "currency" in args.options:
        extra["currency"] = validation.currency(args.options["currency"])
    if "invoice_prefix" in args.options:
        prefix = validation.text(args.options["invoice_prefix"], "invoice_prefix", max_len=20, required=False)
        if prefix and not all(ch.isalnum() or ch in "-_/." for ch in prefix):
            raise InvalidInput("invoice_prefix", "letters, digits and - _ / . only (e.g. INK-)")
        extra["invoice_prefix"] = prefix
    updates = {k: v for k, v in args.options.items() if k not in SELLER_ONLY_KEYS}
    async with in_transaction():
        changes = await update_accounting(tenant, updates)
        for key, value in extra.items():
            if getattr(tenant, key) != value:
                changes[key] = (getattr(tenant, key), value)
                setattr(tenant, key, value)
        if extra:
            await tenant.save(update_fields=list(extra))
        if changes:
            await AuditEntry.create(
                tenant_id=tenant.id, actor=ctx.actor, action="seller.set", target="seller",
                old={k: str(old) for k, (old, _) in changes.items()},
                new={k: str(new) for k, (_, new) in changes.items()},
            )
    summary = ", ".join(f"{k}: {old or '∅'} → {new or '∅'}" for k, (old, new) in changes.items()) or "nothing changed"
    return message(f"Seller updated: {summary}", *show_seller(tenant).blocks[1:],
                   context(f"Updated by <@{ctx.user_id}>: {summary}"))
