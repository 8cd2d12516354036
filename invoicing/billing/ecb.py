"""Import of the ECB euro foreign exchange reference rates (``invoicebot import fx FILE``).

Reads both files the ECB publishes: ``eurofxref.csv`` (today: ``Date, USD, JPY, …`` then
one row dated like ``29 November 2024``) and ``eurofxref-hist.csv`` (every day since 1999,
dated ``2024-11-29``, ``N/A`` where a currency had no rate). Each value is the price of
**1 EUR** in that currency, stored as ``EUR → XXX`` with source ``ecb``; cross rates between
two other currencies are derived when an invoice needs one (``invoicing.billing.fx``).

All-or-nothing: every row is checked first and any bad row refuses the whole file, listing
the rows. A rate ops set (``fx set``) or the feed pushed for the same pair and day is kept
(a deliberate rate wins over the reference rate); earlier ECB rates are updated in place.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.billing.fx import parse_rate
from invoicing.errors import InvalidInput
from invoicing.ingest.batches import CHUNK, chunks
from models import FxRate, FxSource, Tenant

_MISSING = frozenset({"", "N/A", "-"})
#: Rows shown in a refusal; the count of bad rows is always complete.
MAX_ERRORS = 20


@dataclass(frozen=True)
class EcbImport:
    days: int
    rates: int
    created: int
    updated: int
    unchanged: int
    kept: int


def _day(value: str) -> date:
    text = value.strip()
    for form in ("%Y-%m-%d", "%d %B %Y"):
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (2024-11-29 or 29 November 2024)")


def parse_ecb_csv(data: bytes) -> dict[tuple[date, str], Decimal]:
    """``{(day, currency): rate per 1 EUR}`` from an ECB CSV; ``InvalidInput`` listing bad rows."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("file", "is not UTF-8 text; expected the ECB eurofxref CSV") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0] or rows[0][0].strip().lower() != "date":
        raise InvalidInput("file", "does not start with the ECB header `Date, USD, JPY, …`")
    header = [cell.strip() for cell in rows[0]]
    currencies: list[str | None] = [None]
    errors: list[str] = []
    for cell in header[1:]:
        try:
            currencies.append(validation.currency(cell) if cell else None)
        except InvalidInput:
            errors.append(f"header: {cell!r} is not an ISO 4217 currency code")
            currencies.append(None)
    rates: dict[tuple[date, str], Decimal] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            day = _day(row[0])
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        for position, cell in enumerate(row[1:], start=1):
            code = currencies[position] if position < len(currencies) else None
            if cell.strip() in _MISSING:
                continue
            if code is None:
                errors.append(f"line {number}: value {cell.strip()!r} under no currency column")
                continue
            try:
                rates[(day, code)] = parse_rate(cell.strip(), code)
            except InvalidInput as exc:
                errors.append(f"line {number}: {exc.message}")
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS]) + (f"; … {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS
                                                    else "")
        raise InvalidInput("file", f"{len(errors)} bad row(s), nothing was imported: {shown}")
    if not rates:
        raise InvalidInput("file", "holds no rates")
    return rates


async def import_ecb(tenant: Tenant, data: bytes, *, actor: str) -> EcbImport:
    """Store the rates of an ECB CSV for ``tenant`` in one transaction with one ``fx.import`` audit entry."""
    rates = parse_ecb_csv(data)
    by_day: dict[date, list[tuple[str, Decimal]]] = {}
    for (day, code), rate in rates.items():
        by_day.setdefault(day, []).append((code, rate))
    days = sorted(by_day)
    created: list[FxRate] = []
    changed: list[FxRate] = []
    unchanged = kept = 0
    async with in_transaction():
        for some_days in chunks(days, CHUNK // 40):  # ~40 currencies a day: rows per query stay near CHUNK
            stored = {(r.day, r.quote): r for r in await FxRate.filter(tenant_id=tenant.id, base="EUR",
                                                                       day__in=list(some_days))}
            for day, code, rate in ((d, c, r) for d in some_days for c, r in by_day[d]):
                row = stored.get((day, code))
                if row is None:
                    created.append(FxRate(tenant_id=tenant.id, base="EUR", quote=code, day=day, rate=rate,
                                          source=FxSource.ECB))
                elif row.source != FxSource.ECB:
                    kept += 1
                elif row.rate == rate:
                    unchanged += 1
                else:
                    row.rate = rate
                    changed.append(row)
        await FxRate.bulk_create(created, batch_size=CHUNK)
        if changed:
            await FxRate.bulk_update(changed, fields=["rate", "updated_at"], batch_size=CHUNK)
        result = EcbImport(days=len(days), rates=len(rates), created=len(created), updated=len(changed),
                           unchanged=unchanged, kept=kept)
        await audit.record(tenant.id, actor=actor, action="fx.import", target="fx:ecb",
                           new={"first_day": days[0].isoformat(), "last_day": days[-1].isoformat(),
                                "rates": result.rates, "created": result.created, "updated": result.updated,
                                "kept": result.kept})
    return result
