"""Two feed replicas on one database: a revoked token stops reading and writing on both within the cache's 1 s."""

from __future__ import annotations

import asyncio
import time

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.feed import FEED_PREFIX, TOKENS, create_feed_app
from invoicing.ingest.tokens import create_token, revoke_token
from models import Order
from tests import factories as f
from tests.bot.test_feed import order, request_feed


async def test_a_revoked_token_is_refused_by_every_replica_within_one_second(db):
    tenant = await f.tenant()
    await f.company(tenant)
    token = await create_token(tenant)
    apps, servers = two_replicas()
    async with servers[0], servers[1], ClientSession() as session:
        for server in servers:  # both replicas have verified (and cached) the token
            assert (await request_feed(session, server, "GET", "/orders", token=token.token)).status == 200
        assert all(len(app[TOKENS]) == 1 for app in apps)
        await revoke_token(tenant, token.prefix)  # committed by "another replica" (the CLI)
        revoked_at = time.monotonic()
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - revoked_at)) + 0.02)
        for server in servers:
            reply = await request_feed(session, server, "GET", "/orders", token=token.token)
            assert reply.status == 401, "a revoked token still worked more than 1 s after the revocation"


async def test_an_unknown_token_is_not_cached_so_a_new_token_works_at_once(db):
    tenant = await f.tenant()
    app = create_feed_app()
    root = web.Application()
    root.add_subapp(FEED_PREFIX, app)
    async with TestServer(root, host="127.0.0.1") as server, ClientSession() as session:
        unknown = "ibt_" + "x" * 43
        assert (await request_feed(session, server, "GET", "/orders", token=unknown)).status == 401
        assert len(app[TOKENS]) == 0
        fresh = await create_token(tenant)
        assert (await request_feed(session, server, "GET", "/orders", token=fresh.token)).status == 200


async def test_ttl_zero_reads_the_token_on_every_request(db):
    tenant = await f.tenant()
    token = await create_token(tenant)
    app = create_feed_app(token_ttl=0)
    root = web.Application()
    root.add_subapp(FEED_PREFIX, app)
    async with TestServer(root, host="127.0.0.1") as server, ClientSession() as session:
        assert (await request_feed(session, server, "GET", "/orders", token=token.token)).status == 200
        await revoke_token(tenant, token.prefix)
        assert (await request_feed(session, server, "GET", "/orders", token=token.token)).status == 401


async def test_a_revoked_token_can_no_longer_write_orders_on_any_replica_after_one_second(db):
    # An order write trusts the tenant named by the verified token (it reads no tenant row): the token
    # check is all that stands between a revoked token and the tenant's orders.
    tenant = await f.tenant()
    await f.company(tenant)
    token = await create_token(tenant)
    apps, servers = two_replicas()
    async with servers[0], servers[1], ClientSession() as session:
        for n, server in enumerate(servers):
            reply = await request_feed(session, server, "PUT", f"/orders/acme/SO-{n}", order(), token=token.token)
            assert reply.status == 201
        await revoke_token(tenant, token.prefix)
        revoked_at = time.monotonic()
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - revoked_at)) + 0.02)
        for n, server in enumerate(servers):
            reply = await request_feed(session, server, "PUT", f"/orders/acme/SO-{n}", order(status="cancelled"),
                                       token=token.token)
            assert reply.status == 401, "a revoked token still wrote more than 1 s after the revocation"
            batch = {"orders": [{**order(), "company": "acme", "ref": "SO-9"}]}
            reply = await request_feed(session, server, "POST", "/orders:batch", batch, token=token.token)
            assert reply.status == 401
    assert sorted(await Order.all().values_list("external_ref", "status")) == [("SO-0", "dispatched"),
                                                                               ("SO-1", "dispatched")]


def two_replicas() -> tuple[list[web.Application], list[TestServer]]:
    """Two feed apps, each with its own token cache, as two replicas would run them (servers not started yet)."""
    apps, servers = [create_feed_app(), create_feed_app()], []
    for app in apps:
        root = web.Application()
        root.add_subapp(FEED_PREFIX, app)
        servers.append(TestServer(root, host="127.0.0.1"))
    return apps, servers
