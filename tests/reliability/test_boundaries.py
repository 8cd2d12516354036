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
from decimal import Decimal

import pytest

from commands.dispatch import dispatch
from invoicing.billing.limits import MAX_INT, MAX_LINE_NET, MAX_QUANTITY, MAX_UNIT_PRICE
from invoicing.ingest.csv_import import import_orders, import_prices
from tests.bot.slack_harness import SlackHarness
from tests.reliability.conftest import Feed, snapshot, text_of
from tests.reliability.test_hostile_input import assert_clean, context

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
