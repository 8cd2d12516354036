"""Exchange rates on record: set (audited), which one an invoice uses, the ECB CSV, the restated VAT."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing import audit
from invoicing.billing.document import DocumentTaxBand
from invoicing.billing.ecb import import_ecb, parse_ecb_csv
from invoicing.billing.fx import (
    SIGNIFICANT_DIGITS,
    Quote,
    find_rate,
    required_rate,
    restate,
    round_rate,
    set_rate,
)
from invoicing.errors import InvalidInput, NotEligible
from invoicing.ingest.batches import UpsertResult
from models import FxRate, FxSource
from tests import factories as f

D1, D2, D3 = date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 1)

# As the ECB writes it: ", " separators and a trailing ", " on every line.
DAILY = (b"Date, USD, JPY, BGN, CZK, DKK, GBP, HUF, PLN, \n"
         b"01 December 2026, 1.0500, 160.25, 1.9558, 25.120, 7.4590, 0.85230, 390.10, 4.2800, \n")
HIST = b"""Date,USD,JPY,GBP,PLN,CYP,
2026-11-30,1.0400,159.90,0.8500,4.2700,N/A,
2026-11-27,1.0450,160.00,0.8510,N/A,N/A,
"""


async def ops(t, base, quote, rate, day):
    return await set_rate(t, base, quote, rate, day, source=FxSource.OPS, actor="slack:UOPS")


async def test_a_rate_set_by_ops_is_audited_and_replaced_for_the_same_day(db):
    t = await f.tenant()
    row, result = await ops(t, "eur", "GBP", "0.8523", D3)
    assert result is UpsertResult.CREATED
    assert (row.base, row.quote, row.rate, row.source) == ("EUR", "GBP", Decimal("0.8523"), FxSource.OPS)
    assert (await ops(t, "EUR", "GBP", "0.85230", D3))[1] is UpsertResult.UNCHANGED  # same rate: nothing written
    assert (await ops(t, "EUR", "GBP", "0.8519", D3))[1] is UpsertResult.UPDATED
    assert await FxRate.filter(tenant_id=t.id).count() == 1
    entries = await audit.recent(t.id, target="fx:EUR/GBP")
    assert [(e.old.get("rate"), e.new["rate"]) for e in entries] == [("0.8523000000", "0.8519"), (None, "0.8523")]


@pytest.mark.parametrize(("base", "quote", "rate", "why"), [
    ("EUR", "EUR", "1", "two different currencies"),
    ("EUR", "XXY", "1", "not an ISO 4217 currency"),
    ("EUR", "GBP", "0", "must be above 0"),
    ("EUR", "GBP", "-0.85", "must not be negative"),
    ("EUR", "GBP", "0.85x", "is not a number"),
    ("EUR", "GBP", "0.12345678901", "at most 10 decimal places"),
])
async def test_bad_rates_are_refused_and_change_nothing(db, base, quote, rate, why):
    t = await f.tenant()
    with pytest.raises(InvalidInput, match=why):
        await ops(t, base, quote, rate, D3)
    assert await FxRate.all().count() == 0


async def test_an_invoice_uses_the_latest_rate_on_or_before_its_day(db):
    t = await f.tenant()
    await ops(t, "EUR", "GBP", "0.8500", D1)
    await ops(t, "EUR", "GBP", "0.8600", D3)
    assert await find_rate(t.id, "EUR", "GBP", D2) == Quote("EUR", "GBP", Decimal("0.85"), D1, "ops")
    assert (await find_rate(t.id, "EUR", "GBP", D3)).rate == Decimal("0.86")
    assert await find_rate(t.id, "EUR", "GBP", date(2026, 11, 26)) is None
    other = await f.tenant("other")
    assert await find_rate(other.id, "EUR", "GBP", D3) is None  # rates are per tenant


async def test_an_inverse_and_a_cross_rate_via_eur_are_derived_and_rounded_to_six_digits(db):
    t = await f.tenant()
    await ops(t, "GBP", "EUR", "1.1733", D2)
    inverse = await find_rate(t.id, "EUR", "GBP", D3)
    assert inverse == Quote("EUR", "GBP", Decimal("0.852297"), D2, "ops")  # 1 / 1.1733 = 0.85229693…
    await ops(t, "EUR", "USD", "1.0500", D1)
    cross = await find_rate(t.id, "USD", "GBP", D3)
    # 0.852297 / 1.05 = 0.81171142…, dated by its older leg
    assert cross == Quote("USD", "GBP", Decimal("0.811711"), D1, "ops")
    await ops(t, "USD", "GBP", "0.8000", D1)  # a direct rate of the same day wins over the cross rate
    assert (await find_rate(t.id, "USD", "GBP", D3)).rate == Decimal("0.8")
    assert round_rate(Decimal("0.000012345678")) == Decimal("0.0000123457")
    assert round_rate(Decimal("160.253")) == Decimal("160.253")
    assert round_rate(Decimal("99999.95")) == Decimal("100000")  # a carry never adds a seventh digit


async def test_a_missing_rate_refuses_naming_the_pair_and_the_day_in_the_seller_zone(db):
    t = await f.tenant()
    t.timezone = "Asia/Tokyo"
    late = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # already 1 December in Tokyo
    with pytest.raises(NotEligible) as refused:
        await required_rate(t, "EUR", late)
    assert "No EUR→GBP exchange rate on or before 2026-12-01" in refused.value.message
    assert "/invoicing fx set EUR GBP <rate> date=2026-12-01" in refused.value.message
    assert await required_rate(t, "GBP", late) is None  # the seller's own currency needs none


def test_the_restated_vat_is_rounded_per_row_and_the_total_is_their_sum():
    bands = [DocumentTaxBand(rate=Decimal(20), net=Decimal("100.05"), tax=Decimal("20.01")),
             DocumentTaxBand(rate=Decimal(10), net=Decimal("100.05"), tax=Decimal("10.01")),
             DocumentTaxBand(rate=Decimal(0), net=Decimal("5"), tax=Decimal("0.00"), category="K")]
    fx = restate(bands, Quote("EUR", "GBP", Decimal("0.8523"), D3, "ecb"))
    # 20.01 × 0.8523 = 17.054523 → 17.05; 10.01 × 0.8523 = 8.531523 → 8.53
    assert fx.tax_bands == ((Decimal(20), "S", Decimal("17.05")), (Decimal(10), "S", Decimal("8.53")),
                            (Decimal(0), "K", Decimal("0.00")))
    assert fx.tax_total == Decimal("25.58") and (fx.currency, fx.rate_date, fx.source) == ("GBP", D3, "ecb")
    jpy = restate(bands[:1], Quote("GBP", "JPY", Decimal("188.5"), D3, "ops"))
    assert jpy.tax_total == Decimal("3772")  # 20.01 × 188.5 = 3771.885 → JPY has no decimals


def test_both_ecb_files_parse_with_missing_values_skipped():
    daily = parse_ecb_csv(DAILY)
    assert daily[(D3, "GBP")] == Decimal("0.85230") and daily[(D3, "JPY")] == Decimal("160.25")
    assert len(daily) == 8
    hist = parse_ecb_csv(b"\xef\xbb\xbf" + HIST)  # with a BOM
    assert hist[(D2, "PLN")] == Decimal("4.2700") and (D1, "PLN") not in hist and len(hist) == 7


@pytest.mark.parametrize(("data", "why"), [
    (b"", "does not start with the ECB header"),
    (b"Date,USD\nyesterday,1.05\n", "line 2: 'yesterday' is not a date"),
    (b"Date,USD\n2026-12-01,-1\n", "line 2: USD: must not be negative"),
    (b"Date,USD,ZZZ\n2026-12-01,1.05,2\n", "'ZZZ' is not an ISO 4217 currency code"),
    (b"Date,USD\n2026-12-01,N/A\n", "holds no rates"),
    (b"\xff\xfeD", "is not UTF-8"),
])
def test_a_bad_ecb_file_is_refused_whole(data, why):
    with pytest.raises(InvalidInput, match=why):
        parse_ecb_csv(data)


async def test_the_ecb_import_stores_eur_rates_keeps_ops_rates_and_is_idempotent(db):
    t = await f.tenant()
    await ops(t, "EUR", "GBP", "0.8600", D2)
    first = await import_ecb(t, HIST, actor="cli")
    assert (first.days, first.rates, first.created, first.kept) == (2, 7, 6, 1)
    assert (await FxRate.get(tenant_id=t.id, base="EUR", quote="GBP", day=D2)).source == FxSource.OPS
    again = await import_ecb(t, HIST, actor="cli")
    assert (again.created, again.updated, again.unchanged, again.kept) == (0, 0, 6, 1)
    changed = await import_ecb(t, HIST.replace(b"1.0450", b"1.0460"), actor="cli")
    assert changed.updated == 1
    assert (await find_rate(t.id, "USD", "GBP", D3)).source == "ecb+ops"  # cross via EUR: 0.86 / 1.04
    assert [e.action for e in await audit.recent(t.id, target="fx:ecb")] == ["fx.import"] * 3


@given(st.decimals(min_value=Decimal("0.0000001"), max_value=Decimal("999999"), places=7))
def test_a_derived_rate_keeps_six_significant_digits_and_is_within_half_a_unit_of_them(rate):
    rounded = round_rate(rate)
    assert len(rounded.as_tuple().digits) <= SIGNIFICANT_DIGITS
    unit = Decimal(1).scaleb(rate.adjusted() - SIGNIFICANT_DIGITS + 1)
    assert abs(rounded - rate) <= unit / 2 or rounded.adjusted() > rate.adjusted()  # a carry: 99999.95 → 100000
    assert abs(rounded - rate) <= unit


@given(st.lists(st.tuples(st.sampled_from([Decimal(0), Decimal(5), Decimal(20)]),
                          st.decimals(min_value=0, max_value=100000, places=2)), min_size=1, max_size=6),
       st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("200"), places=4))
def test_the_restated_total_is_always_the_sum_of_the_restated_rows(rows, rate):
    bands = [DocumentTaxBand(rate=r, net=tax, tax=tax, category="S" if r else "Z") for r, tax in rows]
    fx = restate(bands, Quote("EUR", "GBP", rate, D3, "ops"))
    assert fx.tax_total == sum(t for _, _, t in fx.tax_bands)
    assert all(t == (b.tax * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
               for b, (_, _, t) in zip(bands, fx.tax_bands, strict=True))
