"""Price lookup for one buyer: per-retailer price first, then the default price.

No currency conversion, ever: an invoice is in the buyer's currency, and a SKU
without a price in that currency makes its order skipped ("no PLN price for SKU
MUG"), never invoiced at another rate or at zero. Likewise an item whose stored
quantity or price an invoice line cannot hold (``invoicing.billing.limits``; rows
from before those bounds) makes its order skipped with the reason, never a failed run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tortoise.expressions import Q

from invoicing.billing.limits import line_problem
from invoicing.billing.money import line_net, plain
from invoicing.billing.vat_rules import check_category
from invoicing.errors import InvalidInput
from models import Price, Product


@dataclass(frozen=True)
class UnitPrice:
    cost_price: Decimal
    shipping: Decimal
    tax_rate: Decimal
    product_name: str
    #: The price's own VAT category ("" = derive it per invoice) and, for ``E``, its VATEX code.
    vat_category: str = ""
    exempt_code: str = ""


@dataclass(frozen=True)
class PriceBook:
    """The prices one buyer pays, by SKU; built once per run."""

    currency: str
    retailer: dict[str, Price]
    default: dict[str, Price]
    names: dict[str, str]

    def lookup(self, sku: str) -> UnitPrice | str:
        """The unit price of ``sku`` in the buyer's currency, or the reason there is none."""
        for price in (self.retailer.get(sku), self.default.get(sku)):
            if price is not None and price.currency == self.currency:
                return UnitPrice(
                    cost_price=Decimal(price.cost_price),
                    shipping=Decimal(price.shipping),
                    tax_rate=Decimal(price.tax_rate),
                    product_name=self.names.get(sku, sku),
                    vat_category=price.vat_category,
                    exempt_code=price.vat_exemption_code,
                )
        if sku in self.retailer or sku in self.default:
            return f"no {self.currency} price for SKU {sku}"
        return f"no price for SKU {sku}"


async def load_price_book(tenant_id: int, company_id: int, currency: str, skus: Iterable[str]) -> PriceBook:
    return (await load_price_books(tenant_id, {company_id: currency}, skus))[company_id]


async def load_price_books(tenant_id: int, currencies: Mapping[int, str], skus: Iterable[str]) -> dict[int, PriceBook]:
    """The price book of each buyer in ``currencies`` (company id → its currency), for ``skus``: two
    queries whatever the number of buyers (batched runs price many companies at once)."""
    wanted = sorted(set(skus))
    products = await Product.filter(tenant_id=tenant_id, sku__in=wanted) if wanted else []
    by_id = {p.id: p for p in products}
    retailer: dict[int, dict[str, Price]] = {company_id: {} for company_id in currencies}
    default: dict[str, Price] = {}
    if by_id:
        # Only these buyers' prices and the defaults: a product may have a price for every retailer.
        mine = Q(retailer_id__in=list(currencies)) | Q(retailer_id__isnull=True)
        for price in await Price.filter(mine, product_id__in=list(by_id)):
            sku = by_id[price.product_id].sku
            if price.retailer_id is None:
                default[sku] = price
            elif price.retailer_id in retailer:
                retailer[price.retailer_id][sku] = price
    names = {p.sku: p.name for p in products}
    return {company_id: PriceBook(currency=currency, retailer=retailer[company_id], default=default, names=names)
            for company_id, currency in currencies.items()}


class Priceable(Protocol):
    """What pricing reads of an order item: an ``OrderItem``, or ``order_items.Item`` (its row)."""

    @property
    def sku(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def description(self) -> str: ...


@dataclass(frozen=True)
class PricedItem:
    """An order item with its unit price and its line net (rounded, ``money.line_net``)."""

    item: Priceable
    price: UnitPrice
    net: Decimal


def price_items(items: Sequence[Priceable], book: PriceBook) -> tuple[PricedItem, ...] | str:
    """Every item of one order priced into a line, or the reason the order cannot be invoiced.

    The reason is the first item's: no price in the buyer's currency, a quantity or price
    that an invoice line cannot hold (``limits.line_problem``, checked before multiplying), or
    a VAT category that contradicts the rate (``category_problem``).
    """
    priced: list[PricedItem] = []
    for item in items:
        price = book.lookup(item.sku)
        if isinstance(price, str):
            return price
        problem = line_problem(item.quantity, price.cost_price, price.shipping, price.tax_rate)
        if problem is None:
            problem = category_problem(price)
        if problem is not None:
            return f"SKU {item.sku}: {problem}"
        priced.append(PricedItem(item, price, line_net(item.quantity, price.cost_price, price.shipping,
                                                        book.currency)))
    return tuple(priced)


def category_problem(price: UnitPrice) -> str | None:
    """Why the price's VAT category cannot be invoiced (it contradicts the rate), or None.

    ``price … category=`` refuses such a pair, but a feed or CSV update may change the rate of a
    price that has a category; the order is then skipped until ops fix the price.
    """
    try:
        check_category(price.vat_category, price.tax_rate, price.exempt_code)
    except InvalidInput:
        return (f"VAT category {price.vat_category} contradicts its {plain(price.tax_rate)} % rate; fix the price "
                "with `/invoicing price … category=`")
    return None
