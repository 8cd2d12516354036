"""Exchange rates: which one restates an invoice's VAT in the seller's accounting currency.

A GB seller invoicing in EUR must also show the VAT in GBP with the rate used (HMRC
VAT Notice 700/21 §6; for a member state's currency, Article 230 Directive 2006/112/EC).
The seller's accounting currency is the tenant's ``currency`` (``seller set currency=``).

Rates are **never made up or fetched silently**: only rates on record (``models.FxRate``,
set by ops, pushed by the feed or imported from the ECB CSV) are used. The rate of an
invoice issued on day *D* (the issue date in the seller's time zone) is the **latest rate on
or before D**, found as, in this order of preference on the same day:

1. the pair itself (``EUR → GBP``);
2. the inverse pair (``GBP → EUR``): ``1 / rate``;
3. a cross rate via EUR from two EUR legs (the ECB publishes rates per 1 EUR):
   ``USD → GBP = (EUR → GBP) / (EUR → USD)``, dated the older of its two legs.

The candidate with the latest date wins. Derived rates (2, 3) are computed with
``Decimal`` and rounded half-up to 6 significant digits (the precision the ECB publishes),
and that rounded rate is the one printed and used. Each converted VAT amount is
``round_money(VAT × rate)`` in the seller currency (half-up to its minor unit) per breakdown
row; the converted total is the sum of the converted rows, so the printed figures add up.
A run that needs a rate that is not on record is refused, naming the pair and the day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.billing.document import DocumentTaxBand, FxConversion
from invoicing.billing.money import ZERO, parse_amount, plain, round_money
from invoicing.errors import InvalidInput, NotEligible
from invoicing.ingest.batches import UpsertResult
from models import FxRate, FxSource, Tenant

#: The largest rate we store (``FxRate.rate`` holds 10 integer digits and 10 decimals).
MAX_RATE = Decimal("1000000000")
SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class Quote:
    """A rate from ``base`` to ``quote`` valid on ``day``; ``source`` as recorded (a cross rate: its legs')."""

    base: str
    quote: str
    rate: Decimal
    day: date
    source: str


def parse_rate(value: object, field: str = "rate") -> Decimal:
    """A positive decimal with at most 10 decimals (``0.8523``); floats, zero and negatives are refused."""
    rate = parse_amount(value, field, at_most=MAX_RATE, max_places=10)
    if rate <= ZERO:
        raise InvalidInput(field, "must be above 0, e.g. 0.8523")
    return rate


def round_rate(rate: Decimal) -> Decimal:
    """``rate`` half-up to ``SIGNIFICANT_DIGITS`` significant digits (and at most 10 decimals)."""
    exponent = max(rate.adjusted() - SIGNIFICANT_DIGITS + 1, -10)
    rounded = rate.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP)
    if rounded.adjusted() > rate.adjusted():  # carried into a new digit (99999.95 → 100000.0): drop the extra one
        rounded = rounded.quantize(Decimal(1).scaleb(max(rounded.adjusted() - SIGNIFICANT_DIGITS + 1, -10)))
    return rounded


async def set_rate(tenant: Tenant, base: str, quote: str, rate: object, day: date, *, source: FxSource,
                   actor: str) -> tuple[FxRate, UpsertResult]:
    """Record the rate of ``base → quote`` on ``day``, replacing that day's rate; return it and what happened.

    Validates first (ISO 4217 codes, two different currencies, ``parse_rate``). One transaction
    writes the row and, when something changed, an ``fx.set`` audit entry (target ``fx:EUR/GBP``,
    old/new ``{"day", "rate", "source"}``).
    """
    base = validation.currency(base, "base")
    quote = validation.currency(quote, "quote")
    if base == quote:
        raise InvalidInput("quote", f"a rate needs two different currencies, not {base} twice")
    value = parse_rate(rate)
    async with in_transaction():
        row = await FxRate.filter(tenant_id=tenant.id, base=base, quote=quote, day=day).select_for_update().first()
        old = {"day": day.isoformat(), "rate": str(row.rate), "source": row.source.value} if row else {}
        result = UpsertResult.CREATED if row is None else UpsertResult.UPDATED
        if row is None:
            row = await FxRate.create(tenant_id=tenant.id, base=base, quote=quote, day=day, rate=value, source=source)
        elif row.rate == value and row.source == source:
            return row, UpsertResult.UNCHANGED
        else:
            row.rate, row.source = value, source
            await row.save(update_fields=["rate", "source", "updated_at"])
        await audit.record(tenant.id, actor=actor, action="fx.set", target=f"fx:{base}/{quote}", old=old,
                           new={"day": day.isoformat(), "rate": str(value), "source": source.value})
    return row, result


async def _latest(tenant_id: int, base: str, quote: str, day: date) -> FxRate | None:
    return await FxRate.filter(tenant_id=tenant_id, base=base, quote=quote, day__lte=day).order_by("-day").first()


async def _direct_or_inverse(tenant_id: int, base: str, quote: str, day: date) -> Quote | None:
    direct = await _latest(tenant_id, base, quote, day)
    inverse = await _latest(tenant_id, quote, base, day)
    if inverse is not None and (direct is None or inverse.day > direct.day):
        return Quote(base, quote, round_rate(Decimal(1) / Decimal(inverse.rate)), inverse.day, inverse.source.value)
    if direct is not None:
        return Quote(base, quote, plain(Decimal(direct.rate)), direct.day, direct.source.value)
    return None


async def find_rate(tenant_id: int, base: str, quote: str, day: date) -> Quote | None:
    """The rate to restate ``base`` amounts in ``quote`` on ``day`` (rule in the module docstring), or None."""
    pair = await _direct_or_inverse(tenant_id, base, quote, day)
    if "EUR" in (base, quote):
        return pair
    to_base = await _direct_or_inverse(tenant_id, "EUR", base, day)
    to_quote = await _direct_or_inverse(tenant_id, "EUR", quote, day)
    if to_base is None or to_quote is None:
        return pair
    cross_day = min(to_base.day, to_quote.day)
    if pair is not None and pair.day >= cross_day:
        return pair
    sources = sorted({to_base.source, to_quote.source})
    return Quote(base, quote, round_rate(to_quote.rate / to_base.rate), cross_day, "+".join(sources))


def issue_day(issued_at: datetime, timezone: str) -> date:
    """The issue date of an invoice issued at ``issued_at`` (aware) in the seller's ``timezone``."""
    return issued_at.astimezone(ZoneInfo(timezone)).date()


async def required_rate(tenant: Tenant, currency: str, issued_at: datetime) -> Quote | None:
    """The rate an invoice in ``currency`` issued at ``issued_at`` needs (None in the seller currency).

    Raises ``NotEligible`` naming the pair and the day when no rate is on record, so the run
    is refused before a number is taken.
    """
    if currency == tenant.currency:
        return None
    day = issue_day(issued_at, tenant.timezone)
    found = await find_rate(tenant.id, currency, tenant.currency, day)
    if found is None:
        raise NotEligible(
            f"No {currency}→{tenant.currency} exchange rate on or before {day.isoformat()}: the VAT of a "
            f"{currency} invoice must also be shown in {tenant.currency}. Set one with `/invoicing fx set "
            f"{currency} {tenant.currency} <rate> date={day.isoformat()}` (or import the ECB rates with "
            "`invoicebot import fx FILE`), then run again. Nothing was issued."
        )
    return found


def restate(bands: Iterable[DocumentTaxBand], quote: Quote) -> FxConversion:
    """The VAT of ``bands`` in ``quote.quote``: each row converted and rounded, the total their sum."""
    rows = tuple((b.rate, b.category, round_money(b.tax * quote.rate, quote.quote)) for b in bands)
    total = round_money(sum((tax for _, _, tax in rows), ZERO), quote.quote)
    return FxConversion(currency=quote.quote, rate=quote.rate, rate_date=quote.day, source=quote.source,
                        tax_bands=rows, tax_total=total)


def fx_json(fx: FxConversion) -> dict[str, Any]:
    """``fx`` as stored in ``Invoice.fx`` (decimal strings, ISO date)."""
    return {"currency": fx.currency, "rate": format(fx.rate, "f"), "rate_date": fx.rate_date.isoformat(),
            "source": fx.source, "tax_total": str(fx.tax_total),
            "tax_bands": [{"rate": str(r), "category": c, "tax": str(t)} for r, c, t in fx.tax_bands]}

