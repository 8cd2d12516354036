"""A fake Xero, an HTTP session pointed at it and one movable clock shared by both."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from invoicing.integrations.xero.apps import save_app
from invoicing.integrations.xero.endpoints import XeroEnv, XeroHttp, XeroUrls
from invoicing.integrations.xero.oauth import authorize_link, complete_authorization
from invoicing.integrations.xero.pacer import Limits, Pacers
from invoicing.secrets import SecretBox, new_key
from models import Tenant, XeroApp, XeroConnection
from tests.fakes.xero import FakeClock, FakeOrg, FakeXero
from tests.fakes.xero import Limits as FakeLimits

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
KEY = new_key()
REDIRECT = "http://invoicebot.test/xero/callback"


@dataclass
class XeroWorld:
    xero: FakeXero
    env: XeroEnv
    clock: FakeClock

    def pacers(self, **limits: float) -> Pacers:
        """Pacers on the shared clock: their waits move it (no real sleeping)."""

        async def sleep(seconds: float) -> None:
            self.clock.advance(max(seconds, 1e-3))
            await asyncio.sleep(0)

        return Pacers(Limits(**limits), now=lambda: self.clock().timestamp(), sleep=sleep)  # type: ignore[arg-type]

    async def connect(self, tenant: Tenant, org: FakeOrg, *, user: str = "dana",
                      company_id: int | None = None) -> XeroConnection:
        """Set up the tenant's app (once) and connect ``org`` the way the callback does (``company_id``: a
        dropship company's own organisation)."""
        if not await XeroApp.exists(tenant_id=tenant.id):
            app = self.xero.register_app(redirect_uris=[REDIRECT])
            await save_app(tenant, client_id=app.client_id, client_secret=app.client_secret, legacy_scopes=False,
                           actor="slack:UADMIN", box=self.env.box)
        self.xero.authorize_as(user, [org])
        url = await authorize_link(tenant_id=tenant.id, user_id="UADMIN", channel="C0XERO", company_id=company_id,
                                   env=self.env)
        async with self.env.http.session.get(url, allow_redirects=False) as answer:
            location = answer.headers["Location"]
        query = _query(location)
        done = await complete_authorization(state=query["state"], code=query.get("code", ""),
                                            error=query.get("error", ""), env=self.env)
        assert done.connection is not None
        return done.connection


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
async def world(db):
    clock = FakeClock(START)
    async with FakeXero(limits=FakeLimits(per_minute=30, concurrent=5, per_day=5000), clock=clock,
                        latency=0.005) as xero:
        async with aiohttp.ClientSession() as session:
            urls = XeroUrls(login=xero.base_url, identity=xero.base_url, api=xero.base_url, redirect_uri=REDIRECT)
            yield XeroWorld(xero, XeroEnv(box=SecretBox(KEY), http=XeroHttp(session, urls, 5.0), clock=clock), clock)
        assert xero.validation_errors == []
