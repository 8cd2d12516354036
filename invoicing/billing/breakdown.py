"""The VAT breakdown of an invoice: one row per (VAT category, rate), as EN 16931 BG-23 wants.

Money is still ``invoicing.billing.money``'s rule: VAT per row is computed over the
sum of its line nets and rounded once. Splitting a rate by category never changes a
VAT amount — only 0 % is shared by several categories (``Z``, ``K``, ``G`` …), and 0 % of
anything is 0 — so the invoice totals are exactly ``money.totals`` of the same lines.
An exempt (``E``) row is also split by its VATEX code, since each row states one reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from invoicing.billing.document import DocumentTaxBand
from invoicing.billing.legal_notes import exemption_reason
from invoicing.billing.money import HUNDRED, ZERO, plain, round_money
from invoicing.billing.vat_rules import CATEGORIES, exemption_code


@dataclass(frozen=True)
class CategorizedNet:
    """One line's contribution to the breakdown: its net, VAT rate (percent), category and E's VATEX code."""

    net: Decimal
    rate: Decimal
    category: str
    exempt_code: str = ""


def tax_breakdown(lines: Iterable[CategorizedNet], currency: str, *, seller_country: str,
                  language: str) -> tuple[DocumentTaxBand, ...]:
    """The rows, highest rate first, then in ``vat_rules.CATEGORIES`` order; 0 % rows carry reason and VATEX."""
    nets: dict[tuple[Decimal, str, str], Decimal] = {}
    for line in lines:
        key = (plain(line.rate), line.category, line.exempt_code if line.category == "E" else "")
        nets[key] = nets.get(key, ZERO) + line.net
    ordered = sorted(nets.items(), key=lambda kv: (-kv[0][0], CATEGORIES.index(kv[0][1]), kv[0][2]))
    return tuple(
        DocumentTaxBand(
            rate=rate, net=round_money(net, currency), tax=round_money(net * rate / HUNDRED, currency),
            category=category,
            exemption_reason=exemption_reason(category, seller_country, language, code) if category != "S" else "",
            exemption_code=exemption_code(category, code),
        )
        for (rate, category, code), net in ordered
    )


def breakdown_json(bands: Iterable[DocumentTaxBand]) -> list[dict[str, str]]:
    """The rows as stored in ``Invoice.tax_breakdown`` (decimal strings)."""
    return [{"rate": str(b.rate), "net": str(b.net), "tax": str(b.tax), "category": b.category,
             "exemption_reason": b.exemption_reason, "exemption_code": b.exemption_code} for b in bands]
