"""The order feed over real HTTP: a running aiohttp server, real requests, a real database."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.feed import FEED_PREFIX, create_feed_app
from invoicing.ingest.tokens import create_token, revoke_token
from invoicing.integrations.pdf_emailer.run import run_by_name
from models import (
    AuditEntry,
    Company,
    Invoice,
    InvoiceLine,
    Order,
    OrderItem,
    Price,
    Product,
    RunOutcome,
)
from tests import factories as f
from tests.factories import T0

MAX_BODY = 64 * 1024
_OWN = object()


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


@dataclass
class Feed:
    """A running feed: the inkwell tenant (company acme, MUG priced) and a rival tenant (company beta)."""

    server: TestServer
    session: ClientSession
    app: web.Application
    token: str
    rival_token: str
    tenant: Any

    async def call(self, method: str, path: str, body: Any = None, *, token: Any = _OWN, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Reply:
        return await request_feed(self.session, self.server, method, path, body,
                                  token=self.token if token is _OWN else token, raw=raw, headers=headers)


async def request_feed(session: ClientSession, server: TestServer, method: str, path: str, body: Any = None, *,
                       token: str | None, raw: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One real HTTP request to the feed under ``FEED_PREFIX``; JSON bodies come back parsed."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    async with session.request(method, server.make_url(FEED_PREFIX + path), data=data, headers=sent) as response:
        content = await response.read()
        parsed = json.loads(content) if response.content_type == "application/json" else content
        return Reply(response.status, parsed, response.headers)


@pytest.fixture
async def feed(db) -> AsyncIterator[Feed]:
    t = await f.tenant()
    t.invoice_prefix = "INK-"
    await t.save()
    await f.company(t)
    await f.price(t, "MUG", "5.00", shipping="1.50", tax="20")
    rival = await f.tenant("rival")
    await f.company(rival, "beta")
    feed_app = create_feed_app(max_body_bytes=MAX_BODY)
    root = web.Application()
    root.add_subapp(FEED_PREFIX, feed_app)
    async with TestServer(root, host="127.0.0.1") as server, ClientSession() as session:
        yield Feed(server, session, feed_app, (await create_token(t)).token, (await create_token(rival)).token, t)


def order(**changes: Any) -> dict[str, Any]:
    body = {
        "items": [{"sku": "MUG", "quantity": 2, "description": "Mug, 11oz"}],
        "status": "dispatched",
        "dispatched_at": "2026-11-01T10:00:00Z",
        "on_hold": False,
        "error": None,
        "ship_to": {"name": "Jane Doe", "line1": "1 High St", "city": "Leeds", "postcode": "LS1 1AA", "country": "GB"},
        "updated_at": "2026-11-01T10:00:00Z",
    }
    body.update(changes)
    return body


async def counts() -> tuple[int, ...]:
    return tuple([await model.all().count() for model in (Company, Product, Price, Order, OrderItem, AuditEntry)])


# --- authentication and tenancy --------------------------------------------------------------


async def test_requests_without_a_valid_token_are_401_and_name_no_secret(feed):
    revoked = await create_token(feed.tenant)
    await revoke_token(feed.tenant, revoked.prefix)
    for token, headers in [(None, {}), (None, {"Authorization": f"Basic {feed.token}"}),
                           ("ibt_" + "x" * 43, {}), ("short", {}), (revoked.token, {})]:
        reply = await feed.call("GET", "/orders", token=token, headers=headers)
        assert reply.status == 401, token
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in reply.body and feed.token not in json.dumps(reply.body)
    assert (await feed.call("GET", "/orders")).status == 200


async def test_a_token_never_sees_another_tenants_data_404_not_403(feed):
    assert (await feed.call("PUT", "/orders/acme/SO-1", order())).status == 201
    await run_by_name(feed.tenant, "acme", clock=lambda: T0)
    rival = feed.rival_token
    assert (await feed.call("PUT", "/orders/acme/SO-1", order(status="cancelled"), token=rival)).status == 404
    assert (await feed.call("GET", "/orders?company=acme", token=rival)).status == 404
    assert (await feed.call("GET", "/invoices/INK-000001", token=rival)).status == 404
    assert (await feed.call("GET", "/invoices/INK-000001.pdf", token=rival)).status == 404
    listing = await feed.call("GET", "/orders", token=rival)
    assert listing.status == 200 and listing.body["orders"] == []
    # A rival's own "acme" is a different company; inkwell's is untouched.
    created = await feed.call("PUT", "/companies/acme", {"name": "Rival Acme", "country": "US", "currency": "USD",
                                                          "timezone": "America/New_York"}, token=rival)
    assert created.status == 201
    assert (await Company.get(tenant_id=feed.tenant.id, short_name="acme")).name == "Acme Ltd"
    assert (await Order.get(external_ref="SO-1")).status == "dispatched"


async def test_the_openapi_description_is_public_and_lists_every_route(feed):
    reply = await feed.call("GET", "/openapi.json", token=None)
    assert reply.status == 200 and reply.body["openapi"].startswith("3.1")
    assert set(reply.body["paths"]) == {"/companies/{co}", "/products/{sku}", "/orders/{co}/{ref}", "/orders:batch",
                                        "/orders", "/invoices/{number}", "/invoices/{number}.pdf", "/openapi.json",
                                        "/fx-rates/{base}/{quote}/{day}", "/credit-notes/{number}",
                                        "/credit-notes/{number}.pdf", "/invoices/{number}.xml"}
    assert "OrderBody" in reply.body["components"]["schemas"]


# --- validation -------------------------------------------------------------------------------

COMPANY = {"name": "Gamma GmbH", "country": "DE", "currency": "EUR", "timezone": "Europe/Berlin"}
PRODUCT = {"name": "Poster", "prices": [{"retailer": None, "cost_price": "3.10", "shipping": "1", "tax_rate": "20"}]}


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        ("/orders/acme/SO-9", b"{not json", "body", "Invalid JSON"),
        ("/orders/acme/SO-9", b"[]", "body", "object"),
        ("/orders/acme/SO-9", order(items=[{"sku": "MUG", "quantity": "2"}]), "items.0.quantity", "integer"),
        ("/orders/acme/SO-9", order(items=[{"sku": "MUG", "quantity": -1}]), "items.0.quantity", "between 1"),
        ("/orders/acme/SO-9", order(items=[{"sku": "MUG", "quantity": 1}, {"sku": "M U G", "quantity": 1}]),
         "items.1.sku", "not a valid SKU"),
        ("/orders/acme/SO-9", order(items=[]), "items", "at least one item"),
        ("/orders/acme/SO-9", order(status="shipped"), "status", "'dispatched'"),
        ("/orders/acme/SO-9", order(dispatched_at="2026-11-01T10:00:00"), "dispatched_at", "timezone"),
        ("/orders/acme/SO-9", order(dispatched_at=None), "dispatched_at", "required when status is dispatched"),
        ("/orders/acme/SO-9", order(on_hold=1), "on_hold", "boolean"),
        ("/orders/acme/SO-9", order(dispatchedAt="2026-11-01T10:00:00Z"), "dispatchedAt", "Extra inputs"),
        ("/orders/acme/SO-9", order(ship_to={"name": "J", "line1": "1", "city": "L", "postcode": "X",
                                              "country": "XX"}), "ship_to.country", "ISO 3166"),
        ("/orders/acme/" + "R" * 65, order(), "ref", "at most 64"),
        ("/companies/gamma", {**COMPANY, "currency": "EURO"}, "currency", "ISO 4217"),
        ("/companies/gamma", {**COMPANY, "timezone": "Europe/Berlinn"}, "timezone", "IANA time zone"),
        ("/companies/gamma", {**COMPANY, "accounting": {"vat_number": "DE123"}}, "accounting.vat_number",
         "not a valid DE VAT number"),
        ("/companies/gamma", {**COMPANY, "accounting": {"email": "nope"}}, "accounting.email", "e-mail"),
        ("/companies/Bad Name", COMPANY, "company", "not a valid short name"),
        ("/products/POSTER", {**PRODUCT, "prices": [{**PRODUCT["prices"][0], "cost_price": 3.1}]},
         "prices.0.cost_price", "decimal string"),
        ("/products/POSTER", {**PRODUCT, "prices": [{**PRODUCT["prices"][0], "cost_price": "-1"}]},
         "prices.0.cost_price", "negative"),
        ("/products/POSTER", {**PRODUCT, "prices": [{**PRODUCT["prices"][0], "currency": "EUR"}]},
         "prices.0.currency", "contradicts"),
        ("/products/POSTER", {**PRODUCT, "prices": [{**PRODUCT["prices"][0], "retailer": "nobody"}]},
         "prices.0.retailer", "no company 'nobody'"),
        ("/products/POSTER", {**PRODUCT, "prices": [{**PRODUCT["prices"][0], "tax_rate": "120"}]},
         "prices.0.tax_rate", "percentage"),
    ],
)
async def test_invalid_payloads_are_422_naming_the_field_and_write_nothing(feed, path, body, field, message):
    before = await counts()
    reply = await feed.call("PUT", path, raw=body if isinstance(body, bytes) else None,
                            body=None if isinstance(body, bytes) else body)
    assert reply.status == 422, reply.body
    assert any(e["path"] == field and message in e["message"] for e in reply.body["errors"]), reply.body
    assert await counts() == before


async def test_a_batch_reports_every_invalid_order_and_writes_none(feed):
    before = await counts()
    batch = {"orders": [{**order(), "company": "acme", "ref": "SO-1"},
                        {**order(items=[{"sku": "MUG", "quantity": 0}]), "company": "acme", "ref": "SO-2"},
                        {**order(status="dispatched", dispatched_at=None), "company": "acme", "ref": "SO-3"}]}
    reply = await feed.call("POST", "/orders:batch", batch)
    assert reply.status == 422
    assert [e["path"] for e in reply.body["errors"]] == ["orders.1.items.0.quantity", "orders.2.dispatched_at"]
    duplicate = {"orders": [{**order(), "company": "acme", "ref": "SO-1"}] * 2}
    reply = await feed.call("POST", "/orders:batch", duplicate)
    assert reply.status == 422 and reply.body["errors"][0]["path"] == "orders.1.ref"
    assert await counts() == before


async def test_an_unknown_company_is_404_and_an_oversize_body_413_both_as_json(feed):
    reply = await feed.call("PUT", "/orders/nobody/SO-1", order())
    assert reply.status == 404 and reply.body["error"] == "No company 'nobody' in inkwell."
    batch = {"orders": [{**order(), "company": "acme", "ref": "SO-1"}, {**order(), "company": "beta", "ref": "SO-2"}]}
    reply = await feed.call("POST", "/orders:batch", batch)  # beta is the rival's: not one of inkwell's
    assert reply.status == 404 and reply.body["error"] == "No company 'beta' in inkwell."
    huge = order(items=[{"sku": "MUG", "quantity": 1, "description": "x" * 300}] * 400)
    reply = await feed.call("PUT", "/orders/acme/SO-1", huge)
    assert reply.status == 413 and str(MAX_BODY) in reply.body["error"]
    assert await Order.all().count() == 0


async def test_an_unexpected_error_is_a_500_with_a_correlation_id_logged_with_its_traceback(db, caplog):
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("database on fire")

    feed_app = create_feed_app()
    feed_app.router.add_get("/boom", boom)  # a handler with a bug, behind the real middlewares
    root = web.Application()
    root.add_subapp(FEED_PREFIX, feed_app)
    token = (await create_token(await f.tenant())).token
    async with TestServer(root, host="127.0.0.1") as server, ClientSession() as session:
        with caplog.at_level(logging.INFO, logger="bot.feed"):
            async with session.get(server.make_url(f"{FEED_PREFIX}/boom"),
                                   headers={"Authorization": f"Bearer {token}"}) as response:
                status, body, request_id = response.status, await response.json(), response.headers["X-Request-Id"]
    assert status == 500 and body == {"error": "internal error", "id": request_id}
    logged = [r for r in caplog.records if request_id in r.getMessage() and r.exc_info]
    assert logged and "database on fire" in str(logged[0].exc_info[1])
    assert token not in caplog.text


# --- idempotency and ordering -----------------------------------------------------------------


async def test_replaying_the_same_puts_changes_nothing(feed):
    company = {**COMPANY, "accounting": {"legal_name": "Gamma GmbH", "vat_number": "DE136695976"}}
    product = {**PRODUCT, "prices": [*PRODUCT["prices"], {"retailer": "gamma", "cost_price": "3.40",
                                                           "shipping": "1.20", "tax_rate": "19", "currency": "EUR"}]}
    first = [await feed.call("PUT", "/companies/gamma", company), await feed.call("PUT", "/products/POSTER", product),
             await feed.call("PUT", "/orders/acme/SO-1", order())]
    assert [r.status for r in first] == [201, 201, 201]
    state = await Order.get(external_ref="SO-1")
    items = await OrderItem.filter(order_id=state.id).values_list("id", "sku", "quantity", "description")
    before = await counts()
    again = [await feed.call("PUT", "/companies/gamma", company), await feed.call("PUT", "/products/POSTER", product),
             await feed.call("PUT", "/orders/acme/SO-1", order())]
    assert [(r.status, r.body["result"]) for r in again] == [(200, "unchanged")] * 3
    assert await counts() == before
    replayed = await Order.get(external_ref="SO-1")
    assert replayed.updated_at == state.updated_at
    assert await OrderItem.filter(order_id=state.id).values_list("id", "sku", "quantity", "description") == items


async def test_a_newer_update_wins_and_an_out_of_order_older_one_is_ignored(feed):
    await feed.call("PUT", "/orders/acme/SO-1", order(status="received", dispatched_at=None,
                                                      updated_at="2026-11-01T08:00:00Z"))
    newer = order(status="in_production", dispatched_at=None, updated_at="2026-11-01T09:00:00Z")
    reply = await feed.call("PUT", "/orders/acme/SO-1", newer)
    assert (reply.status, reply.body["applied"], reply.body["result"]) == (200, True, "updated")
    late = order(status="received", dispatched_at=None, updated_at="2026-11-01T08:30:00+00:00",
                 items=[{"sku": "MUG", "quantity": 9}])
    reply = await feed.call("PUT", "/orders/acme/SO-1", late)
    assert reply.status == 200 and reply.body["applied"] is False and reply.body["reason"] == "stale update"
    stored = await Order.get(external_ref="SO-1")
    assert stored.status == "in_production" and stored.source_updated_at.hour == 9
    assert await OrderItem.filter(order_id=stored.id).values_list("quantity", flat=True) == [2]
    reply = await feed.call("PUT", "/orders/acme/SO-1", order(updated_at="2026-11-01T11:00:00Z"))
    assert reply.body["result"] == "updated" and (await Order.get(id=stored.id)).status == "dispatched"


async def test_an_invoiced_orders_items_and_company_are_refused_409_but_its_status_is_recorded(feed):
    await f.company(feed.tenant, "gamma")
    await feed.call("PUT", "/orders/acme/SO-1", order())
    report = await run_by_name(feed.tenant, "acme", clock=lambda: T0)
    invoice_before = await Invoice.get(id=report.invoice_id)
    changed = order(items=[{"sku": "MUG", "quantity": 3}], updated_at="2026-11-02T10:00:00Z")
    reply = await feed.call("PUT", "/orders/acme/SO-1", changed)
    assert reply.status == 409 and "INK-000001" in reply.body["error"] and reply.body["invoice"] == "INK-000001"
    moved = await feed.call("PUT", "/orders/gamma/SO-1", order(previous_company="acme"))
    assert moved.status == 409 and "INK-000001" in moved.body["error"] and "cannot move" in moved.body["error"]
    batch = {"orders": [{**order(), "company": "acme", "ref": "SO-2"},
                        {**changed, "company": "acme", "ref": "SO-1"}]}
    reply = await feed.call("POST", "/orders:batch", batch)
    assert reply.status == 409 and reply.body["conflicts"][0]["index"] == 1
    assert not await Order.filter(external_ref="SO-2").exists()  # the batch is all or nothing
    cancelled = await feed.call("PUT", "/orders/acme/SO-1", order(status="cancelled", on_hold=True,
                                                                  error="customer refund",
                                                                  updated_at="2026-11-03T10:00:00Z"))
    assert cancelled.status == 200 and cancelled.body["invoice_number"] == "INK-000001"
    stored = await Order.get(external_ref="SO-1")
    assert (stored.status, stored.on_hold, stored.error, stored.invoice_id) == (
        "cancelled", True, "customer refund", invoice_before.id)
    invoice_after = await Invoice.get(id=report.invoice_id)
    assert (invoice_after.gross_total, invoice_after.order_count) == (invoice_before.gross_total, 1)
    assert await InvoiceLine.filter(invoice_id=report.invoice_id).values_list("quantity", flat=True) == [2]


async def test_an_uninvoiced_order_moves_between_companies_only_when_asked(feed):
    await f.company(feed.tenant, "gamma")
    await feed.call("PUT", "/orders/acme/SO-1", order())
    same_ref = await feed.call("PUT", "/orders/gamma/SO-1", order())  # another retailer's own SO-1
    assert same_ref.status == 201
    await feed.call("PUT", "/orders/acme/SO-2", order())
    moved = await feed.call("PUT", "/orders/gamma/SO-2", order(previous_company="acme"))
    assert moved.status == 200 and moved.body["result"] == "updated"
    assert await Order.filter(external_ref="SO-2").values_list("company__short_name", flat=True) == ["gamma"]


# --- reading ------------------------------------------------------------------------------------


async def test_orders_pushed_over_the_feed_are_invoiced_exactly_once_and_listed_with_their_invoice(feed):
    company = {"name": "Delta Ltd", "country": "GB", "currency": "GBP", "timezone": "Europe/London",
               "accounting": {"legal_name": "Delta Ltd", "address_line1": "2 Low Road", "city": "York",
                              "postcode": "YO1 7HH", "email": "ap@delta.example"}}
    assert (await feed.call("PUT", "/companies/delta", company)).status == 201
    product = {"name": "Tote", "prices": [{"retailer": "delta", "cost_price": "3.05", "shipping": "1.10",
                                           "tax_rate": "20"}]}
    assert (await feed.call("PUT", "/products/TOTE", product)).status == 201
    batch = {"orders": [{**order(items=[{"sku": "TOTE", "quantity": n}], dispatched_at=f"2026-10-2{n}T12:00:00Z"),
                         "company": "delta", "ref": f"D-{n}"} for n in (1, 2, 3)]
             + [{**order(status="received", dispatched_at=None), "company": "delta", "ref": "D-4"}]}
    reply = await feed.call("POST", "/orders:batch", batch)
    assert reply.status == 200 and reply.body["counts"] == {"created": 4}
    first = await run_by_name(feed.tenant, "delta", clock=lambda: T0)
    second = await run_by_name(feed.tenant, "delta", clock=lambda: T0)
    assert (first.outcome, first.orders_invoiced, first.invoice_number) == (RunOutcome.INVOICED, 3, "INK-000001")
    assert second.outcome == RunOutcome.NO_ORDERS
    assert first.net == Decimal("24.90")  # (1 + 2 + 3) × (3.05 + 1.10)

    invoiced = await feed.call("GET", "/orders?company=delta&invoiced=true")
    assert [(o["ref"], o["invoice_number"]) for o in invoiced.body["orders"]] == [
        ("D-1", "INK-000001"), ("D-2", "INK-000001"), ("D-3", "INK-000001")]
    assert invoiced.body["orders"][0] == {
        "company": "delta", "ref": "D-1", "status": "dispatched", "on_hold": False, "error": None,
        "dispatched_at": "2026-10-21T12:00:00Z", "invoiced": True, "invoice_number": "INK-000001"}
    pending = await feed.call("GET", "/orders?invoiced=false")
    assert [o["ref"] for o in pending.body["orders"]] == ["D-4"] and pending.body["orders"][0]["invoiced"] is False
    assert pending.body["orders"][0]["dispatched_at"] is None and pending.body["next_cursor"] is None

    invoice = await feed.call("GET", "/invoices/INK-000001")
    assert invoice.status == 200
    assert invoice.body["totals"] == {"net": "24.90", "tax": "4.98", "gross": "29.88"}
    assert invoice.body["tax_breakdown"] == [{"rate": "20", "net": "24.90", "tax": "4.98"}]
    assert invoice.body["order_refs"] == ["D-1", "D-2", "D-3"] and invoice.body["company"] == "delta"
    assert invoice.body["lines"][0]["unit_cost"] == "3.05" and invoice.body["buyer"]["legal_name"] == "Delta Ltd"
    pdf = await feed.call("GET", "/invoices/INK-000001.pdf")
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf" and pdf.body.startswith(b"%PDF")
    assert (await feed.call("GET", "/invoices/INK-000002")).status == 404


async def test_the_order_list_pages_by_cursor_in_id_order_and_filters_by_dispatch_date(feed):
    batch = {"orders": [{**order(dispatched_at=f"2026-11-{day:02d}T23:30:00Z"), "company": "acme", "ref": f"A-{day}"}
                        for day in range(1, 8)]}
    assert (await feed.call("POST", "/orders:batch", batch)).status == 200
    refs, cursor, pages = [], None, 0
    while True:
        reply = await feed.call("GET", "/orders?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        refs += [o["ref"] for o in reply.body["orders"]]
        cursor, pages = reply.body["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 3 and refs == [f"A-{day}" for day in range(1, 8)]
    window = await feed.call("GET", "/orders?from=2026-11-02&to=2026-11-04")
    assert [o["ref"] for o in window.body["orders"]] == ["A-2", "A-3", "A-4"]
    instant = await feed.call("GET", "/orders?from=2026-11-02T00:00:00Z&to=2026-11-03T23:30:00Z")
    assert [o["ref"] for o in instant.body["orders"]] == ["A-2"]
    for query, field in [("cursor=nonsense", "cursor"), ("limit=501", "limit"), ("limit=x", "limit"),
                         ("invoiced=yes", "invoiced"), ("from=2026-13-01", "from"), ("colour=red", "colour")]:
        reply = await feed.call("GET", f"/orders?{query}")
        assert reply.status == 422 and reply.body["errors"][0]["path"] == field, query
