"""``price <co|default> <sku> cost= shipping= tax= [name=] [category=] [exemption=]``: set one price of a product."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from commands.context import Args, CommandContext
from commands.formatting import money
from commands.replies import Reply, message, section
from invoicing import validation
from invoicing.billing.limits import MAX_UNIT_PRICE, check_unit_price
from invoicing.billing.money import parse_amount, parse_tax_rate
from invoicing.billing.price_categories import apply_price_category
from invoicing.billing.vat_rules import check_category, parse_category
from invoicing.errors import InvalidInput
from invoicing.ingest.catalog import PriceInput, set_product
from models import Company, Product


async def price(args: Args, ctx: CommandContext) -> Reply:
    who = args.word(0, "company (or default)").lower()
    sku = validation.sku(args.word(1, "SKU"))  # before the lookup: an over-long SKU cannot be compared
    args.no_extra_words(2)
    args.only_options(("cost", "shipping", "tax", "name", "category", "exemption"))
    if "cost" not in args.options:
        raise InvalidInput("cost", f"is required, e.g. price {who} {sku} cost=4.20 shipping=1.10 tax=20")
    cost_value = parse_amount(args.options["cost"], "cost", at_most=MAX_UNIT_PRICE)
    shipping_value = parse_amount(args.options.get("shipping", "0"), "shipping", at_most=MAX_UNIT_PRICE)
    check_unit_price(cost_value, shipping_value, cost_field="cost", shipping_field="shipping")
    tax_value = parse_tax_rate(args.options.get("tax", "0"), "tax")
    category = parse_category(args.options["category"]) if "category" in args.options else None
    exemption = args.options.get("exemption", "")
    if category is not None:
        check_category(category, tax_value, exemption)  # refused before anything is written
    elif exemption:
        raise InvalidInput("exemption", "goes with category=E, e.g. category=E exemption=VATEX-EU-132")
    await ctx.require_admin("change prices")
    product = await Product.get_or_none(tenant_id=ctx.tenant.id, sku=sku)
    name = args.options.get("name") or (product.name if product else "")
    if not name:
        raise InvalidInput("name", f"SKU {sku} is new: give its name, e.g. name=\"Ceramic mug 11oz\"")
    retailer = None if who == "default" else who
    async with in_transaction():
        stored = await set_product(
            ctx.tenant, sku, name=name, actor=ctx.actor,
            prices=[PriceInput(retailer, cost_value, shipping_value, tax_value)],
        )
        company = await Company.get(tenant_id=ctx.tenant.id, short_name=retailer) if retailer else None
        vat_category, code = await apply_price_category(
            ctx.tenant.id, stored.id, company.id if company else None, category=category, exemption=exemption,
            target=f"price:{sku}:{retailer or 'default'}", actor=ctx.actor)
    currency = company.currency if company else ctx.tenant.currency
    cost, shipping = money(cost_value, currency), money(shipping_value, currency)
    target = "default price" if retailer is None else f"price for *{retailer}*"
    vat = f"VAT {tax_value} %, category {vat_category}{f' ({code})' if code else ''}" if vat_category else \
        f"VAT {tax_value} % (category derived per invoice)"
    return message(f"{sku}: {target} set", section(
        f":white_check_mark: {sku} ({name}) — {target}: cost {cost} + shipping {shipping} per unit, "
        f"{vat}. Invoices already issued keep their prices."))
