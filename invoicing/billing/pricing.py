"""Price lookup for one buyer: per-retailer price first, then the default price.

No currency conversion, ever: an invoice is in the buyer's currency, and a SKU
without a price in that currency makes its order skipped ("no PLN price for SKU
MUG"), never invoiced at another rate or at zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from models import Price, Product


@dataclass(frozen=True)
class UnitPrice:
    cost_price: Decimal
    shipping: Decimal
    tax_rate: Decimal
    product_name: str


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
                )
        if sku in self.retailer or sku in self.default:
            return f"no {self.currency} price for SKU {sku}"
        return f"no price for SKU {sku}"


async def load_price_book(tenant_id: int, company_id: int, currency: str, skus: Iterable[str]) -> PriceBook:
    wanted = sorted(set(skus))
    products = await Product.filter(tenant_id=tenant_id, sku__in=wanted) if wanted else []
    by_id = {p.id: p for p in products}
    retailer: dict[str, Price] = {}
    default: dict[str, Price] = {}
    if by_id:
        for price in await Price.filter(product_id__in=list(by_id)):
            sku = by_id[price.product_id].sku
            if price.retailer_id == company_id:
                retailer[sku] = price
            elif price.retailer_id is None:
                default[sku] = price
    return PriceBook(currency=currency, retailer=retailer, default=default, names={p.sku: p.name for p in products})
