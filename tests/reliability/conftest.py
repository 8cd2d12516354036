"""Shared pieces of the reliability suite (issue 8): snapshots of everything stored, a running
order feed with two tenants, the Slack harness, and the fault/fuzz counters the README quotes.

A *snapshot* is the content of every table, not just row counts: "nothing written" then
also catches an UPDATE that a failed command half-applied.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.feed import FEED_PREFIX, create_feed_app
from models import (
    ApiToken,
    AuditEntry,
    Company,
    Delivery,
    Integration,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    Order,
    OrderItem,
    Price,
    Product,
    SlackNotice,
    Tenant,
)
from tests import factories as f
from tests.bot.slack_harness import SlackHarness, start_harness, stop_harness
from tests.bot.test_feed import Reply, request_feed
from tests.fakes.slack_api import text_of as slack_text_of

ALL_MODELS = (Tenant, Company, Integration, Product, Price, Order, OrderItem, Invoice, InvoiceLine,
              InvoiceRun, Delivery, AuditEntry, ApiToken, SlackNotice)
#: Columns that change on reads or on no-op writes (timestamps) and say nothing about data.
_VOLATILE = {"updated_at", "created_at", "at", "last_used_at"}
FEED_MAX_BODY = 16 * 1024


async def counts() -> dict[str, int]:
    return {m.__name__: await m.all().count() for m in ALL_MODELS}


async def snapshot() -> dict[str, Any]:
    """Every stored row (minus volatile timestamps), comparable with ``==``."""
    state: dict[str, Any] = {}
    for model in ALL_MODELS:
        rows = await model.all().order_by("id").values()
        state[model.__name__] = json.dumps(
            [{k: v for k, v in row.items() if k not in _VOLATILE} for row in rows], default=str, sort_keys=True)
    return state


@dataclass
class Feed:
    """A running feed: tenant inkwell (company acme, MUG priced, token ``token``) and tenant rival
    (company beta, invoice RIV-000001, token ``rival_token``)."""

    server: TestServer
    session: ClientSession
    token: str
    rival_token: str
    tenant: Tenant
    rival: Tenant

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = "own",
                   raw: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        return await request_feed(self.session, self.server, method, path, body,
                                  token=self.token if token == "own" else token, raw=raw, headers=headers)


async def two_tenants() -> tuple[Tenant, Tenant]:
    """inkwell (team T1, acme, priced MUG, one uninvoiced order) and rival (team T2, beta, invoice RIV-000001)."""
    from invoicing.integrations.pdf_emailer.run import run_by_name

    t = await f.tenant(team="T1")
    await f.company(t, "acme")
    await f.price(t, "MUG", "5.00", shipping="1.50")
    await f.order(await Company.get(tenant_id=t.id, short_name="acme"), ref="INK-ORD-1")
    rival = await f.tenant("rival", team="T2")
    rival.invoice_prefix = "RIV-"
    await rival.save()
    beta = await f.company(rival, "beta")
    await f.price(rival, "MUG", "7.00")
    await f.order(beta, ref="RIV-ORD-1")
    await run_by_name(rival, "beta", clock=lambda: f.T0)
    return await Tenant.get(id=t.id), await Tenant.get(id=rival.id)


@pytest.fixture
async def tenants(db) -> tuple[Tenant, Tenant]:
    return await two_tenants()


@pytest.fixture
async def feed(tenants) -> AsyncIterator[Feed]:
    from invoicing.ingest.tokens import create_token

    t, rival = tenants
    root = web.Application()
    root.add_subapp(FEED_PREFIX, create_feed_app(max_body_bytes=FEED_MAX_BODY))
    async with TestServer(root, host="127.0.0.1") as server, ClientSession() as session:
        yield Feed(server, session, (await create_token(t)).token, (await create_token(rival)).token, t, rival)


@pytest.fixture
async def slack(tenants) -> AsyncIterator[SlackHarness]:
    harness = await start_harness()
    yield harness
    await stop_harness(harness)


text_of = slack_text_of  # re-exported for the tests in this folder
