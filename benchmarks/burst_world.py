"""The burst benchmark's world: one tenant, N companies × M dispatched orders, seeded fast.

One company (with its integrations, accounting details, channel and M orders with items)
is made with the real API; the other N-1 are cloned from it with set-based SQL, column by
column from the models' own field list, so new columns are copied without this file
knowing them. Short names are ``shop1`` … ``shopN``, each with its own Slack channel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise.models import Model

from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.ingest.tokens import create_token
from invoicing.parties.companies import create_company
from invoicing.parties.tenants import create_tenant
from invoicing.sql import Statement
from models import Company, Integration, Order, OrderItem, OrderStatus, Tenant

SELLER = {"legal_name": "Inkwell Print & Ship Ltd", "address_line1": "Unit 4", "city": "Leeds",
          "postcode": "LS10 1AB", "country": "GB", "vat_number": "GB980780684", "company_number": "08123456"}
SKUS = [("MUG", "4.20", "1.10", "20"), ("TEE", "7.85", "1.60", "20"), ("KIDS", "5.10", "1.60", "0"),
        ("POSTER", "3.333", "2.25", "20")]


def _columns(model: type[Model]) -> list[str]:
    return [column for column in model._meta.fields_db_projection.values() if column != "id"]


def _names(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _series(q: Statement, count: int) -> tuple[str, str]:
    """(a ``WITH`` prefix, a ``FROM`` item) yielding x = 2 … count + 1."""
    if q.postgres:
        return "", f"generate_series(2, {count + 1}) AS g(x)"
    return f"WITH RECURSIVE g(x) AS (SELECT 2 UNION ALL SELECT x + 1 FROM g WHERE x < {count + 1}) ", "g"


async def seed_world(companies: int, orders: int) -> str:
    """Seed the world into the open database; returns a feed token of the tenant."""
    tenant = await create_tenant("bench", currency="GBP")
    tenant.update_from_dict(SELLER)
    tenant.slack_team_id = "T1"
    await tenant.save()
    for sku, cost, shipping, tax in SKUS:
        await set_product(tenant, sku, name=f"Product {sku}", prices=[PriceInput(None, cost, shipping, tax)])
    template = await create_company(
        tenant, "shop1", name="Shop 1 Ltd", country="GB", currency="GBP", timezone="Europe/London",
        channel="C0000001", accounting={"legal_name": "Shop 1 Ltd", "address_line1": "1 Market Street",
                                        "city": "Manchester", "postcode": "M1 1AE", "email": "ap@shop1.example"})
    now = datetime.now(UTC)
    rows = [Order(company_id=template.id, external_ref=f"SO-{k:03d}", status=OrderStatus.DISPATCHED,
                  dispatched_at=now - timedelta(hours=1 + k)) for k in range(orders)]
    await Order.bulk_create(rows)
    ids = await Order.filter(company_id=template.id).order_by("id").values_list("id", flat=True)
    await OrderItem.bulk_create([OrderItem(order_id=oid, position=0, sku=SKUS[k % len(SKUS)][0], quantity=1 + k % 3)
                                 for k, oid in enumerate(ids)])
    if companies > 1:
        await _clone(template, companies - 1)
    return (await create_token(tenant)).token


async def _clone(template: Company, count: int) -> None:
    replaced = {"short_name": "'shop' || x", "name": "'Shop ' || x || ' Ltd'",
                "legal_name": "'Shop ' || x || ' Ltd'", "email": "'ap@shop' || x || '.example'",
                "slack_channel": "'C' || (1000000 + x)"}
    columns = _columns(Company)
    q = Statement()
    prefix, series = _series(q, count)
    picked = ", ".join(replaced.get(c, f'c."{c}"') for c in columns)
    await q.execute(f"{prefix}INSERT INTO company ({_names(columns)}) "
                    f"SELECT {picked} FROM company c, {series} WHERE c.id = {q.param(template.id)}")
    for model, table in ((Integration, "integration"), (Order, '"order"')):
        columns = _columns(model)
        q = Statement()
        picked = ", ".join("co.id" if c == "company_id" else f't."{c}"' for c in columns)
        tenant = q.param(template.tenant_id)
        await q.execute(f"INSERT INTO {table} ({_names(columns)}) "
                        f"SELECT {picked} FROM {table} t JOIN company co ON co.tenant_id = {tenant}"
                        f" AND co.id <> {q.param(template.id)} WHERE t.company_id = {q.param(template.id)}")
    columns = _columns(OrderItem)
    q = Statement()
    picked = ", ".join("n.id" if c == "order_id" else f'i."{c}"' for c in columns)
    await q.execute(f"INSERT INTO order_item ({_names(columns)}) "
                    f'SELECT {picked} FROM order_item i JOIN "order" o ON o.id = i.order_id '
                    f'JOIN "order" n ON n.external_ref = o.external_ref AND n.company_id <> o.company_id '
                    f"WHERE o.company_id = {q.param(template.id)}")
    if q.postgres:
        # The tables the clone filled, as autovacuum would after a bulk load. Not ANALYZE of everything: it would
        # record invoice, delivery, invoice_run … as analysed-and-empty, and PostgreSQL then plans (and caches, in
        # each connection's prepared statements) joins over them as if they held nothing — a nested loop of
        # sequential scans that a real database, where those tables are never analysed empty, does not see.
        await Statement().execute('ANALYZE company, integration, "order", order_item, product, price')
    assert await Company.filter(tenant_id=template.tenant_id).count() == count + 1
    assert await Tenant.exists(id=template.tenant_id)
