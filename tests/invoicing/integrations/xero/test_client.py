"""The accounting client against the fake Xero: paced within the limits, 429/401/5xx/400 handled, tenant-scoped."""

from __future__ import annotations

import asyncio

import pytest

from invoicing.errors import NotFound
from invoicing.integrations.xero.client import XeroClient
from invoicing.integrations.xero.errors import XeroUnavailable, XeroValidationError
from tests import factories

CONTACTS = "/api.xro/2.0/Contacts"


def _client(world, **limits) -> XeroClient:
    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    return XeroClient(world.env, world.pacers(**limits), backoff=0.0, sleep=no_wait)


async def test_the_pacer_keeps_every_call_within_the_scaled_limits(world):
    tenant = await factories.tenant()
    org = world.xero.add_organisation("Acme Ltd")
    row = await world.connect(tenant, org)
    client = _client(world, per_minute=30, concurrent=5)
    start = world.clock()
    answers = await asyncio.gather(*(client.call(tenant.id, row.id, "GET", "Contacts") for _ in range(75)))
    assert all("Contacts" in a for a in answers)
    assert len(world.xero.calls(org)) == 75
    assert world.xero.rejections(org) == []  # not one 429
    assert world.xero.max_in_flight(org) <= 5
    minutes = (world.clock() - start).total_seconds() / 60
    assert 2 <= minutes <= 2.3  # 75 calls at 30 a minute: the rate is used, not wasted


async def test_a_429_is_obeyed_for_that_organisation_only(world):
    tenant = await factories.tenant()
    slow_org, other_org = world.xero.add_organisation("Slow Ltd"), world.xero.add_organisation("Other Ltd")
    slow = await world.connect(tenant, slow_org)
    other_tenant = await factories.tenant("other")
    other = await world.connect(other_tenant, other_org, user="erin")
    client = _client(world, per_minute=60)
    world.xero.fail_next(CONTACTS, 429, {"Title": "Too Many Requests"}, method="GET",
                         headers={"Retry-After": "7", "X-Rate-Limit-Problem": "minute"})
    start = world.clock()
    await client.call(tenant.id, slow.id, "GET", "Contacts")
    calls = world.xero.calls(slow_org)
    assert len(calls) == 2 and (calls[1].at - calls[0].at).total_seconds() >= 7
    assert client.pacers.for_org(other_org.tenant_id).blocked_for == 0
    await client.call(other_tenant.id, other.id, "GET", "Contacts")
    assert (world.xero.calls(other_org)[0].at - start).total_seconds() >= 0


async def test_a_401_refreshes_the_token_once_and_repeats(world):
    tenant = await factories.tenant()
    row = await world.connect(tenant, world.xero.add_organisation("Acme Ltd"))
    world.xero.fail_next(CONTACTS, 401, {"Title": "Unauthorized", "Detail": "TokenExpired"}, method="GET")
    await _client(world).call(tenant.id, row.id, "GET", "Contacts")
    assert [r.grant_type for r in world.xero.token_requests] == ["authorization_code", "refresh_token"]


async def test_5xx_is_retried_only_when_repeating_cannot_create_twice(world):
    tenant = await factories.tenant()
    org = world.xero.add_organisation("Acme Ltd")
    row = await world.connect(tenant, org)
    client = _client(world)
    world.xero.fail_next(CONTACTS, 503, "Service Unavailable", method="GET")
    await client.call(tenant.id, row.id, "GET", "Contacts")
    assert [c.status for c in world.xero.calls(org)][-2:] == [503, 200]
    contact = {"Contacts": [{"Name": "Acme Gifts Ltd", "ContactNumber": "acme"}]}
    world.xero.fail_next(CONTACTS, 503, "Service Unavailable", method="POST")
    with pytest.raises(XeroUnavailable):
        await client.call(tenant.id, row.id, "POST", "Contacts", body=contact)
    world.xero.fail_next(CONTACTS, 503, "Service Unavailable", method="POST")
    created = await client.call(tenant.id, row.id, "POST", "Contacts", body=contact, idempotency_key="contact-acme-1")
    assert created["Contacts"][0]["ContactNumber"] == "acme"


async def test_a_validation_exception_carries_xeros_messages(world):
    tenant = await factories.tenant()
    row = await world.connect(tenant, world.xero.add_organisation("Acme Ltd"))
    body = {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
            "Elements": [{"ValidationErrors": [{"Message": "Account code '999' is not a valid code"}]}]}
    world.xero.fail_next(CONTACTS, 400, body, method="GET")
    with pytest.raises(XeroValidationError, match="Account code '999'") as refused:
        await _client(world).call(tenant.id, row.id, "GET", "Contacts")
    assert refused.value.messages == ("Account code '999' is not a valid code",)


async def test_another_tenant_cannot_use_the_connection(world):
    tenant = await factories.tenant()
    org = world.xero.add_organisation("Acme Ltd")
    row = await world.connect(tenant, org)
    intruder = await factories.tenant("intruder")
    with pytest.raises(NotFound):
        await _client(world).call(intruder.id, row.id, "GET", "Contacts")
    assert world.xero.calls(org) == []
