"""The dates an invoice states, computed once for every medium, in the document's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.billing.document import InvoiceDocument, Party, Period, invoice_period

LONDON, WARSAW = "Europe/London", "Europe/Warsaw"


@pytest.mark.parametrize(("start", "cutoff", "zone", "period"), [
    # A weekly run, Sunday midnight to Sunday midnight: the exclusive cutoff's day is not in it.
    (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC), LONDON,
     Period(date(2026, 11, 1), date(2026, 11, 7))),
    # The same instants are 01:00 in Warsaw: the cutoff's day is in it there.
    (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC), WARSAW,
     Period(date(2026, 11, 1), date(2026, 11, 8))),
    # Midnight in Warsaw is 23:00 UTC the day before.
    (None, datetime(2026, 11, 7, 23, 0, tzinfo=UTC), WARSAW, Period(None, date(2026, 11, 7))),
    # A run whose start is its cutoff covers that one day, never a period ending before it starts.
    (datetime(2026, 11, 8, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC), LONDON,
     Period(date(2026, 11, 8), date(2026, 11, 8))),
])
def test_the_period_runs_from_the_start_to_the_day_before_an_exclusive_cutoff(start, cutoff, zone, period):
    assert invoice_period(start, cutoff, zone) == period


def test_without_a_start_the_period_starts_on_the_earliest_dispatch():
    earliest = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)  # 00:30 on the 4th in Warsaw
    assert invoice_period(None, datetime(2026, 11, 8, tzinfo=UTC), WARSAW, earliest=earliest) == Period(
        date(2026, 11, 4), date(2026, 11, 8))
    assert invoice_period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC), WARSAW,
                          earliest=earliest).first == date(2026, 11, 1)  # a stated start wins


instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))


@given(instants, st.integers(1, 60 * 24 * 40), st.data(), st.sampled_from([LONDON, WARSAW, "America/New_York",
                                                                            "Pacific/Auckland", "UTC"]))
def test_every_instant_a_run_invoices_falls_on_a_day_of_its_period_and_both_ends_are_reached(
    start, minutes, data, zone
):
    cutoff = start + timedelta(minutes=minutes)
    dispatched = data.draw(st.datetimes(min_value=start.replace(tzinfo=None),
                                        max_value=(cutoff - timedelta(microseconds=1)).replace(tzinfo=None),
                                        timezones=st.just(UTC)))
    period = invoice_period(start, cutoff, zone)
    assert period.first is not None
    local_day = dispatched.astimezone(ZoneInfo(zone)).date()
    assert period.first <= local_day <= period.last
    assert period.first == start.astimezone(ZoneInfo(zone)).date()
    assert period.last == (cutoff - timedelta(microseconds=1)).astimezone(ZoneInfo(zone)).date()


@pytest.mark.parametrize(("zone", "due"), [(LONDON, date(2026, 12, 7)), (WARSAW, date(2026, 12, 8))])
def test_payment_is_due_the_terms_after_the_local_issue_date(zone, due):
    doc = InvoiceDocument(
        tenant_name="inkwell", number="000001", issued_at=datetime(2026, 11, 7, 23, 30, tzinfo=UTC),
        period_start=None, period_end=datetime(2026, 11, 7, 23, 0, tzinfo=UTC), timezone=zone, currency="GBP",
        seller=Party("Inkwell"), buyer=Party("Acme"), lines=(), tax_bands=(), net_total=Decimal(0),
        tax_total=Decimal(0), gross_total=Decimal(0), payment_terms_days=30, order_count=0,
    )
    assert doc.due_date() == due
