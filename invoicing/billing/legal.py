"""The legal content an invoice is issued with: categories, breakdown, notes, language, FX.

Computed once, at issue time, from the seller (tenant), the buyer (company) and the
planned lines, and snapshotted on the invoice, so re-rendering an issued invoice years
later prints exactly what was issued. A pure function over plain values: the run
looks up the exchange rate (``fx.required_rate``) and passes it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from invoicing.billing.breakdown import CategorizedNet, tax_breakdown
from invoicing.billing.document import DocumentLine, DocumentTaxBand, FxConversion
from invoicing.billing.fx import Quote, restate
from invoicing.billing.languages import invoice_language
from invoicing.billing.legal_notes import legal_notes
from invoicing.billing.vat_rules import derive_category
from models import Company, Tenant


@dataclass(frozen=True)
class LegalContent:
    """``categories`` has one entry per planned line, in order."""

    language: str
    categories: tuple[str, ...]
    bands: tuple[DocumentTaxBand, ...]
    notes: tuple[str, ...]
    fx: FxConversion | None


def legal_content(tenant: Tenant, company: Company, lines: Sequence[DocumentLine],
                  quote: Quote | None) -> LegalContent:
    """The legal content of an invoice from ``tenant`` to ``company`` for ``lines``.

    A line's category is its price's (``vat_category``, already checked against its rate) or
    the derived one (``vat_rules``); ``quote`` is the rate to restate the VAT in the seller's
    currency (None when the invoice is in it).
    """
    language = invoice_language(company.language, company.country)
    categories = tuple(
        line.vat_category or derive_category(tenant.country, company.country, company.vat_number, line.tax_rate)
        for line in lines
    )
    bands = tax_breakdown(
        (CategorizedNet(line.net, line.tax_rate, category, getattr(line, "exempt_code", ""))
         for line, category in zip(lines, categories, strict=True)),
        company.currency, seller_country=tenant.country, language=language,
    )
    notes = legal_notes(((b.category, b.rate, b.exemption_code) for b in bands), tenant.country, language)
    return LegalContent(language=language, categories=categories, bands=bands, notes=notes,
                        fx=restate(bands, quote) if quote is not None else None)
