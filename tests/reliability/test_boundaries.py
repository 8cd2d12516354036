"""Boundaries of what the columns hold: amounts, quantities, instants and ids at and past their limits.

Every entry point (feed, CSV, Slack) refuses a value past a limit with a 4xx or a clear message
that names the limit and writes nothing; never a 500 or "Something went wrong". The limits are
``invoicing.billing.limits`` (amounts, quantities, ids) and ``invoicing.validation.in_utc``
(instants). The first part pins the cases found by hand (issue 12, items 3 and 7); the second
fuzzes the edges of datetime, Decimal and integer values across all entry points, and checks
that whatever was accepted can still be invoiced (a run invoices or skips, never fails).
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tortoise.expressions import Q

from commands.dispatch import dispatch
from invoicing.billing.limits import MAX_INT, MAX_INVOICE_TOTAL, MAX_LINE_NET, MAX_QUANTITY, MAX_UNIT_PRICE
from invoicing.ingest.csv_import import import_orders, import_prices
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import Invoice, InvoiceLine, RunOutcome, Tenant
from tests.bot.slack_harness import SlackHarness
from tests.factories import T0
from tests.reliability.conftest import Feed, snapshot, text_of
from tests.reliability.test_hostile_input import (
    DB_SETTINGS,
    FUZZ_SCALE,
    _without_refused_runs,
    assert_clean,
    context,
)

ORDER = {"items": [{"sku": "MUG", "quantity": 1}], "status": "dispatched", "dispatched_at": "2026-11-01T10:00:00Z",
         "on_hold": False, "error": None,
         "ship_to": {"name": "J", "line1": "1 St", "city": "Leeds", "postcode": "LS1 1AA", "country": "GB"}}
UNIT_LIMIT = f"{MAX_UNIT_PRICE:,f}"  # 9,999,999.9999: how every refusal of a unit price names the limit
OVER = str(MAX_UNIT_PRICE + Decimal("0.0001"))


def _product(cost: str, shipping: str = "0", retailer: str | None = None) -> dict[str, object]:
    return {"name": "Big", "prices": [{"retailer": retailer, "cost_price": cost, "shipping": shipping,
                                       "tax_rate": "20"}]}


# --- amounts and quantities past the limits (item 3) ----------------------------------------------


@pytest.mark.parametrize(("cost", "shipping", "path"), [
    (OVER, "0", "prices.0.cost_price"),
    ("9999999999", "0", "prices.0.cost_price"),  # what numeric(14,4) holds, and the old limit
    ("5000000", "5000000", "prices.0.shipping"),  # each fits; together one unit is over
    ("1", OVER, "prices.0.shipping"),
    ("1E+7", "0", "prices.0.cost_price"),
])
async def test_the_feed_refuses_a_unit_price_over_the_limit_naming_it(feed: Feed, cost: str, shipping: str,
                                                                      path: str) -> None:
    before = await snapshot()
    reply = await feed.call("PUT", "/products/BIG", _product(cost, shipping))
    assert reply.status == 422, reply.body
    [error] = reply.body["errors"]
    assert error["path"] == path and UNIT_LIMIT in error["message"], error
    assert await snapshot() == before


async def test_the_feed_accepts_a_unit_price_at_the_limit(feed: Feed) -> None:
    reply = await feed.call("PUT", "/products/BIG", _product(str(MAX_UNIT_PRICE - 1), "1"))
    assert reply.status == 201, reply.body


@pytest.mark.parametrize("quantity", [MAX_QUANTITY + 1, MAX_INT, MAX_INT + 1, 2**63, 10**30, 0, -1])
async def test_the_feed_refuses_a_quantity_past_the_limit_naming_it(feed: Feed, quantity: int) -> None:
    before = await snapshot()
    single = await feed.call("PUT", "/orders/acme/Q-1", {**ORDER, "items": [{"sku": "MUG", "quantity": quantity}]})
    batch = await feed.call("POST", "/orders:batch", {"orders": [
        {**ORDER, "company": "acme", "ref": "Q-2", "items": [{"sku": "MUG", "quantity": quantity}]}]})
    assert (single.status, batch.status) == (422, 422), (single.body, batch.body)
    assert single.body["errors"][0] == {"path": "items.0.quantity",
                                        "message": f"must be a whole number between 1 and {MAX_QUANTITY}"}
    assert batch.body["errors"][0]["path"] == "orders.0.items.0.quantity"
    assert await snapshot() == before


async def test_a_prices_csv_over_the_limit_is_a_report_naming_it_and_writes_nothing(tenants) -> None:
    tenant, _ = tenants
    before = await snapshot()
    report = await import_prices(tenant, (
        "sku,name,cost_price,shipping,tax_rate,retailer\n"
        f"BIG,Big,{OVER},0,20,\n"
        "BIGGER,Bigger,6000000,4000000,20,acme\n"
        "OK,Ok,1.00,0,20,\n").encode())
    assert [(e.row, e.column) for e in report.errors] == [(2, "cost_price"), (3, "shipping")]
    assert all(UNIT_LIMIT in e.reason for e in report.errors), report.errors
    assert await snapshot() == before


async def test_an_orders_csv_with_a_quantity_over_the_limit_is_a_report_and_writes_nothing(tenants) -> None:
    tenant, _ = tenants
    before = await snapshot()
    report = await import_orders(tenant, (
        "company,ref,status,sku,quantity,dispatched_at\n"
        f"acme,C-1,dispatched,MUG,{MAX_QUANTITY + 1},2026-11-01T10:00:00Z\n"
        "acme,C-2,dispatched,MUG,1,2026-11-01T10:00:00Z\n").encode())
    assert [(e.row, e.column, e.reason) for e in report.errors] == [
        (2, "quantity", f"must be a whole number between 1 and {MAX_QUANTITY}")]
    assert await snapshot() == before


@pytest.mark.parametrize(("text", "field"), [
    (f"price default BIG cost={OVER} name=Big", "cost"),
    ("price default BIG cost=9999999999 name=Big", "cost"),
    ("price acme MUG cost=5000000 shipping=5000000", "shipping"),
    (f"price acme MUG cost=1 shipping={OVER}", "shipping"),
    ("price default MUG cost=1E+30", "cost"),
])
async def test_slack_refuses_a_unit_price_over_the_limit_naming_it(tenants, slack: SlackHarness, text: str,
                                                                   field: str) -> None:
    before = await snapshot()
    shown = text_of(await slack.reply(text))
    assert f"{field}:" in shown and UNIT_LIMIT in shown, shown
    assert await snapshot() == before


async def test_the_unit_price_limit_lets_the_largest_order_line_fit() -> None:
    assert MAX_UNIT_PRICE * MAX_QUANTITY <= MAX_LINE_NET < (MAX_UNIT_PRICE + Decimal("0.0001")) * MAX_QUANTITY


# --- instants and ids at the edge of what the types hold (item 7) -------------------------------


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:30+01:00",
                                  # Valid UTC instants that some time zone cannot show (Slack, the PDF):
                                  "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T12:00:00+00:00"])
async def test_the_feed_refuses_an_instant_at_the_edge_of_the_calendar(feed: Feed, when: str) -> None:
    before = await snapshot()
    for key in ("dispatched_at", "updated_at"):
        reply = await feed.call("PUT", "/orders/acme/EDGE-1", {**ORDER, key: when})
        assert reply.status == 422, reply.body
        assert reply.body["errors"][0]["path"] == key and "out of range" in reply.body["errors"][0]["message"]
    assert await snapshot() == before


async def test_an_instant_just_inside_the_calendar_margin_is_stored_and_shown_in_slack(feed: Feed) -> None:
    for ref, when in (("EARLY", "0001-01-02T00:00:00Z"), ("LATE", "9999-12-30T23:59:59Z")):
        reply = await feed.call("PUT", f"/orders/acme/{ref}", {**ORDER, "dispatched_at": when})
        assert reply.status == 201, reply.body
    reply = await dispatch("orders acme", context(feed.tenant, admin=False))
    assert_clean(reply)
    assert "EARLY" in reply.text or "EARLY" in str(reply.blocks)


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-31", "to=0001-01-01T12:00:00Z", "from=0001-01-01",
                                   "to=9999-12-31T23:59:59-12:00", "from=0001-01-01T00:30%2B01:00",
                                   f"cursor={_cursor('o9999999999')}", f"cursor={_cursor(f'o{MAX_INT + 1}')}",
                                   f"cursor={_cursor('o' + '9' * 18)}", "limit=2147483648", "limit=-1"])
async def test_feed_query_bounds_past_the_columns_are_422(feed: Feed, query: str) -> None:
    reply = await feed.call("GET", f"/orders?{query}")
    assert reply.status == 422, reply.body
    assert reply.body["errors"][0]["path"] == query.split("=")[0]


async def test_a_cursor_at_the_largest_id_is_an_empty_page(feed: Feed) -> None:
    reply = await feed.call("GET", f"/orders?cursor={_cursor(f'o{MAX_INT}')}")
    assert (reply.status, reply.body) == (200, {"orders": [], "next_cursor": None})


@pytest.mark.parametrize("text", [
    "orders acme to=9999-12-31", "orders acme from=9999-12-31", "orders acme from=0001-01-01",
    "invoices acme to=9999-12-31", "invoices acme from=0001-01-01",
    'emailer acme set next="9999-12-31 23:59"', 'emailer acme set next="0001-01-01 00:00"',
    'emailer acme set starting_from="9999-12-31 23:59"', 'emailer acme set starting_from="0001-01-01"',
    "orders acme page=²", "orders acme page=0", "orders acme page=" + "9" * 5000, f"orders acme page={MAX_INT + 1}",
    "accounting acme set payment_terms_days=²", "accounting acme set payment_terms_days=" + "9" * 5000,
])
async def test_slack_values_past_the_calendar_or_integer_range_get_a_clear_message(tenants, text: str) -> None:
    tenant, _ = tenants
    before = await snapshot()
    reply = await dispatch(text, context(tenant, admin=True))
    assert_clean(reply)
    assert reply.error, reply.text
    assert await snapshot() == before


ZONES = ["America/Los_Angeles", "Pacific/Kiritimati", "Asia/Tokyo", "Pacific/Pago_Pago"]


@pytest.mark.parametrize("text", [
    'emailer {co} set next="9999-12-31 23:59"', 'emailer {co} set next="9999-12-30 23:59"',
    'emailer {co} set starting_from="9999-12-31 23:59"', 'emailer {co} set starting_from="0001-01-01"',
    'emailer {co} set starting_from="0001-01-02"', "orders {co} from=0001-01-01", "orders {co} to=9999-12-31",
    "orders {co} to=9999-12-30", "invoices {co} from=0001-01-01", "invoices {co} to=9999-12-30",
])
async def test_local_times_at_the_edge_of_the_calendar_get_a_clear_message_in_every_time_zone(tenants,
                                                                                            text: str) -> None:
    from tests import factories as f

    tenant, _ = tenants
    ctx = context(tenant, admin=True)
    for zone in ZONES:
        co = zone.split("/")[1].lower().replace("_", "-")
        await f.company(tenant, co, timezone=zone)
        before = await snapshot()
        reply = await dispatch(text.format(co=co), ctx)
        assert_clean(reply)
        if reply.error:
            assert await snapshot() == before
        assert_clean(await dispatch(f"emailer {co}", ctx))


# --- fuzz: the edges of datetime, Decimal and integer values at every entry point ------------------
# Drawn mostly from the edges themselves (hypothesis would rarely meet 9999-12-31 or 2**31 by chance),
# mixed with arbitrary values. Whatever an entry point accepts must still be invoiceable: after every
# accepted write a real run of the company invoices or skips — it never fails.

#: hypothesis examples per property (scaled like the hostile-input fuzz).
BOUNDARY_EXAMPLES = {name: count * FUZZ_SCALE for name, count in {
    "feed": 60, "csv_orders": 30, "csv_prices": 30, "slack": 80}.items()}

EDGE_DECIMALS = [
    "0", "-0", "0.0000", "-0.0000", "0.0001", "0.00001", "1e-4", "1E-5", "1E+6", "1E+7", "1E+30", "-1", "+1",
    "1.", ".5", "1_000", " 7 ", "9" * 28, "9" * 29, "1" + "0" * 400, "0E-1000000", "1E+999999999", "NaN", "-NaN",
    "sNaN", "Infinity", "-Infinity", "inf", str(MAX_UNIT_PRICE), str(MAX_UNIT_PRICE + Decimal("0.0001")),
    str(MAX_UNIT_PRICE - 1), "5000000", "4999999.9999", "9999999999.9999", "9999999999", "99999999.99",
    "100", "100.000", "100.001", "20",
]
decimal_text = st.one_of(
    st.sampled_from(EDGE_DECIMALS),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=0, max_value=MAX_UNIT_PRICE * 2, places=4).map(str),
)
EDGE_INTS = [0, 1, -1, MAX_QUANTITY, MAX_QUANTITY + 1, MAX_INT, MAX_INT + 1, -MAX_INT - 1, -MAX_INT - 2,
             2**63 - 1, 2**63, -(2**63) - 1, 10**30]
integer = st.one_of(st.sampled_from(EDGE_INTS), st.integers(), st.integers(-(2**70), 2**70))
#: Quantities: mostly large valid ones, where a large unit price overflows a line.
quantity = st.one_of(st.sampled_from([MAX_QUANTITY, MAX_QUANTITY - 1, 50_000]), integer)
_refs = itertools.count(1)
_offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
EDGE_INSTANTS = [
    "0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "0001-01-02T00:00:00Z", "0001-01-01T23:59:59-23:59",
    "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59.999999Z", "9999-12-30T23:59:59Z", "9999-12-30T23:59:59-23:59",
    "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00+14:00",
    "2026-11-01T10:00:00+23:59", "2026-11-01T10:00:00-24:00", "10000-01-01T00:00:00Z", "0000-12-31T00:00:00Z",
    "2026-11-01T24:00:00Z", "2026-11-01T23:59:60Z", "2026-11-01T10:00:00", "2026-10-31T23:00:00Z",
]
instant_text = st.one_of(
    st.sampled_from(EDGE_INSTANTS),
    st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=_offsets).map(lambda d: d.isoformat()),
)
EDGE_DATES = ["0001-01-01", "0001-01-02", "0001-01-03", "9999-12-29", "9999-12-30", "9999-12-31", "2024-02-29",
              "2023-02-29", "0000-01-01", "10000-01-01", "2026-13-01"]
date_text = st.one_of(st.sampled_from(EDGE_DATES), st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"))
local_text = st.one_of(
    st.sampled_from(["9999-12-31 23:59", "9999-12-30 23:59", "0001-01-01 00:00", "0001-01-02 00:00",
                     "2024-02-29 00:00", "2027-03-28 01:30", "2027-10-31 01:30", "none"]),
    st.datetimes(min_value=datetime.min, max_value=datetime.max).map(
        lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"),
)
INVOICEABLE = {RunOutcome.INVOICED, RunOutcome.NO_ORDERS}


def _mostly(valid: str, edge: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid value two times in three, else an edge: edges of one field meet valid others."""
    return st.one_of(st.just(valid), st.just(valid), edge)


#: Unit prices around the line limit (a large price times a large quantity is what overflowed).
large_price = st.decimals(min_value=MAX_UNIT_PRICE / 2, max_value=Decimal("9999999999.9999"), places=4).map(str)


async def _still_invoiceable(tenant: Tenant, company: str = "acme") -> None:
    """A real run of the company after whatever was accepted: it invoices or skips, never fails."""
    report = await run_by_name(await Tenant.get(id=tenant.id), company, clock=lambda: T0)
    assert report.outcome in INVOICEABLE, report
    # SQLite stores what PostgreSQL refuses: check the stored amounts against the columns too.
    assert not await Invoice.filter(Q(net_total__gt=MAX_INVOICE_TOTAL) | Q(gross_total__gt=MAX_INVOICE_TOTAL)).exists()
    assert not await InvoiceLine.filter(net__gt=MAX_LINE_NET).exists()


def _order_body(quantity: object, dispatched_at: object, updated_at: object, sku: str) -> dict[str, object]:
    body: dict[str, object] = {**ORDER, "items": [{"sku": sku, "quantity": quantity}], "dispatched_at": dispatched_at}
    if updated_at is not None:
        body["updated_at"] = updated_at
    return body


@settings(max_examples=BOUNDARY_EXAMPLES["feed"], **DB_SETTINGS)
@given(cost=st.one_of(large_price, decimal_text), shipping=_mostly("0", decimal_text), tax=_mostly("20", decimal_text),
       quantity=quantity, dispatched_at=_mostly("2026-11-01T10:00:00Z", instant_text),
       updated_at=st.one_of(st.none(), instant_text), retailer=st.sampled_from([None, "acme"]),
       batch=st.booleans())
async def test_feed_values_at_the_edges_get_a_4xx_that_writes_nothing_and_what_is_accepted_can_be_invoiced(
        feed: Feed, cost: str, shipping: str, tax: str, quantity: int, dispatched_at: str, updated_at: str | None,
        retailer: str | None, batch: bool) -> None:
    before = await snapshot()
    product = {"name": "Big", "prices": [{"retailer": retailer, "cost_price": cost, "shipping": shipping,
                                          "tax_rate": tax}]}
    reply = await feed.call("PUT", "/products/BIG", product)
    assert reply.status in {200, 201, 422}, reply.body
    if reply.status == 422:
        assert await snapshot() == before, reply.body
    before = await snapshot()
    order = _order_body(quantity, dispatched_at, updated_at, "BIG")
    ref = f"EDGE-{next(_refs)}"  # a new order each example: every accepted one meets the next run
    if batch:
        reply = await feed.call("POST", "/orders:batch", {"orders": [{**order, "company": "acme", "ref": ref}]})
    else:
        reply = await feed.call("PUT", f"/orders/acme/{ref}", order)
    assert reply.status in {200, 201, 409, 422}, reply.body
    if reply.status >= 400:
        assert await snapshot() == before, reply.body
    await _still_invoiceable(feed.tenant)
    listed = await feed.call("GET", "/orders?company=acme")
    assert listed.status == 200, listed.body


@settings(max_examples=BOUNDARY_EXAMPLES["feed"], **DB_SETTINGS)
@given(key=st.sampled_from(["from", "to", "cursor", "limit"]),
       value=st.one_of(date_text, instant_text, integer.map(str),
                       integer.map(lambda n: base64.urlsafe_b64encode(f"o{n}".encode()).decode().rstrip("="))))
async def test_feed_query_values_at_the_edges_are_200_or_422(feed: Feed, key: str, value: str) -> None:
    reply = await feed.call("GET", f"/orders?{key}={quote(value)}")
    assert reply.status in {200, 422}, reply.body


@settings(max_examples=BOUNDARY_EXAMPLES["csv_orders"], **DB_SETTINGS)
@given(quantity=st.one_of(integer.map(str), decimal_text), dispatched_at=instant_text,
       updated_at=st.one_of(st.just(""), instant_text))
async def test_an_orders_csv_with_edge_values_is_a_report_or_an_import_that_can_be_invoiced(
        tenants, quantity: str, dispatched_at: str, updated_at: str) -> None:
    tenant, _ = tenants
    before = await snapshot()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["company", "ref", "status", "sku", "quantity", "dispatched_at", "updated_at"])
    writer.writerow(["acme", "CSV-EDGE", "dispatched", "MUG", quantity, dispatched_at, updated_at])
    report = await import_orders(tenant, out.getvalue().encode())
    if report.errors:
        assert await snapshot() == before, report.errors
    await _still_invoiceable(tenant)


@settings(max_examples=BOUNDARY_EXAMPLES["csv_prices"], **DB_SETTINGS)
@given(cost=decimal_text, shipping=decimal_text, tax=decimal_text, retailer=st.sampled_from(["", "acme"]))
async def test_a_prices_csv_with_edge_values_is_a_report_or_an_import_that_can_be_invoiced(
        tenants, cost: str, shipping: str, tax: str, retailer: str) -> None:
    tenant, _ = tenants
    before = await snapshot()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sku", "name", "cost_price", "shipping", "tax_rate", "retailer"])
    writer.writerow(["MUG", "Mug", cost, shipping, tax, retailer])
    report = await import_prices(tenant, out.getvalue().encode())
    if report.errors:
        assert await snapshot() == before, report.errors
    await _still_invoiceable(tenant)


_SLACK_TEMPLATES = [
    ("orders {co} from={date} to={date2}", "date"), ("orders {co} from={instant}", "instant"),
    ("orders {co} page={int}", "int"), ("invoices {co} from={date} to={date2}", "date"),
    ("invoices {co} to={instant}", "instant"), ('emailer {co} set next="{local}"', "local"),
    ('emailer {co} set starting_from="{local}"', "local"), ("emailer {co} set starting_from={date}", "date"),
    ("price default MUG cost={dec} shipping={dec2} tax={dec3}", "dec"), ("price {co} MUG cost={dec}", "dec"),
    ("accounting {co} set payment_terms_days={int}", "int"), ("invoice {int}", "int"), ("audit {co}", "int"),
]


@pytest.fixture
async def zoned(tenants) -> list[str]:
    """acme (London) plus a company in each time zone that pushes local edge times out of the calendar."""
    from tests import factories as f

    tenant, _ = tenants
    names = ["acme"]
    for zone in ZONES:
        names.append(zone.split("/")[1].lower().replace("_", "-"))
        await f.company(tenant, names[-1], timezone=zone)
    return names


@settings(max_examples=BOUNDARY_EXAMPLES["slack"], **DB_SETTINGS)
@given(data=st.data(), template=st.sampled_from(_SLACK_TEMPLATES))
async def test_slack_values_at_the_edges_get_a_clear_reply_and_a_refusal_writes_nothing(
        tenants, zoned: list[str], data: st.DataObject, template: tuple[str, str]) -> None:
    tenant, _ = tenants
    text = template[0].format(
        co=data.draw(st.sampled_from(zoned), label="company"), date=data.draw(date_text), date2=data.draw(date_text),
        instant=data.draw(instant_text), int=data.draw(integer), local=data.draw(local_text),
        dec=data.draw(decimal_text), dec2=data.draw(decimal_text), dec3=data.draw(decimal_text))
    before = _without_refused_runs(await snapshot())
    reply = await dispatch(text, context(await Tenant.get(id=tenant.id), admin=True))
    assert_clean(reply)
    if reply.error:
        assert _without_refused_runs(await snapshot()) == before, text
    await _still_invoiceable(tenant)
