"""``price <co|default> <sku> cost= shipping= tax= [name=]``: set one price of a product."""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import money
from commands.replies import Reply, message, section
from invoicing import validation
from invoicing.billing.limits import MAX_UNIT_PRICE, check_unit_price
from invoicing.billing.money import parse_amount, parse_tax_rate
from invoicing.errors import InvalidInput
from invoicing.ingest.catalog import PriceInput, set_product
from models import Company, Product


async def price(args: Args, ctx: CommandContext) -> Reply:
    who = args.word(0, "company (or default)").lower()
    sku = validation.sku(args.word(1, "SKU"))  # before the lookup: an over-long SKU cannot be compared
    args.no_extra_words(2)
    args.only_options(("cost", "shipping", "tax", "name"))
    if "cost" not in args.options:
        raise InvalidInput("cost", f"is required, e.g. price {who} {sku} cost=4.20 shipping=1.10 tax=20")
    cost_value = parse_amount(args.options["cost"], "cost", at_most=MAX_UNIT_PRICE)
    shipping_value = parse_amount(args.options.get("shipping", "0"), "shipping", at_most=MAX_UNIT_PRICE)
    check_unit_price(cost_value, shipping_value, cost_field="cost", shipping_field="shipping")
    tax_value = parse_tax_rate(args.options.get("tax", "0"), "tax")
    await ctx.require_admin("change prices")
    product = await Product.get_or_none(tenant_id=ctx.tenant.id, sku=sku)
    name = args.options.get("name") or (product.name if product else "")
    if not name:
        raise InvalidInput("name", f"SKU {sku} is new: give its name, e.g. name=\"Ceramic mug 11oz\"")
    retailer = None if who == "default" else who
    await set_product(
        ctx.tenant, sku, name=name, actor=ctx.actor,
        prices=[PriceInput(retailer, cost_value, shipping_value, tax_value)],
    )
    currency = ctx.tenant.currency
    if retailer:
        company = await Company.get(tenant_id=ctx.tenant.id, short_name=retailer)
        currency = company.currency
    cost, shipping = money(cost_value, currency), money(shipping_value, currency)
    target = "default price" if retailer is None else f"price for *{retailer}*"
    return message(f"{sku}: {target} set", section(
        f":white_check_mark: {sku} ({name}) — {target}: cost {cost} + shipping {shipping} per unit, "
        f"VAT {tax_value} %. Invoices already issued keep their prices."))

