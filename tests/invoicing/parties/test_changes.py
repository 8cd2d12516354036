"""Changing a party's details: locked, audited in the same transaction, replayable under concurrency."""

from __future__ import annotations

import asyncio

import pytest
from tortoise.transactions import in_transaction

from invoicing.audit import recent
from invoicing.errors import InvalidInput
from invoicing.parties.companies import set_accounting, set_channel, upsert_company
from invoicing.parties.tenants import set_seller_details
from models import AuditEntry, Company, Tenant
from tests import factories as f


async def _entries(tenant_id: int, target: str) -> list[AuditEntry]:
    return list(await AuditEntry.filter(tenant_id=tenant_id, target=target).order_by("id"))


async def test_two_concurrent_accounting_email_changes_leave_an_audit_chain_that_replays(db):
    t = await f.tenant()
    c = await f.company(t)
    state = "ap@acme.example"
    for round_ in range(3):  # later rounds run on warm connections, where the two truly overlap
        # Each change starts from its own copy read before either committed, as two Slack requests do.
        first, second = await Company.get(id=c.id), await Company.get(id=c.id)
        await asyncio.gather(set_accounting(first, {"email": f"one-{round_}@acme.example"}, actor="slack:U1"),
                             set_accounting(second, {"email": f"two-{round_}@acme.example"}, actor="slack:U2"))
    entries = [e for e in await _entries(t.id, "company:acme") if e.action == "accounting.set"]
    assert len(entries) == 6
    for entry in entries:
        assert entry.old == {"email": state}, "each change must record the value the previous one wrote"
        state = entry.new["email"]
    assert (await Company.get(id=c.id)).email == state


async def test_concurrent_feed_and_slack_accounting_changes_replay_too(db):
    t = await f.tenant()
    c = await f.company(t)
    stale = await Company.get(id=c.id)
    await asyncio.gather(
        set_accounting(stale, {"city": "Bath"}, actor="slack:U1"),
        upsert_company(t, "acme", name=c.name, country="GB", currency="GBP", timezone=c.timezone,
                       accounting={"city": "Leeds"}, actor="api:ibt_x"),
    )
    entries = await _entries(t.id, "company:acme")
    changes = [e for e in entries if e.action in {"accounting.set", "company.update"}]
    assert len(changes) == 2
    assert changes[0].old == {"city": "Bristol"} and changes[1].old == changes[0].new
    assert (await Company.get(id=c.id)).city == changes[1].new["city"]


async def test_an_accounting_change_reports_what_changed_and_refreshes_the_company(db):
    t = await f.tenant()
    c = await f.company(t)
    changes = await set_accounting(c, {"city": "Bath", "postcode": "BS1 4DJ", "payment_terms_days": "14"},
                                   actor="slack:U1")
    assert changes == {"city": ("Bristol", "Bath"), "payment_terms_days": (30, 14)}
    assert c.city == "Bath" and c.payment_terms_days == 14
    [entry] = [e for e in await _entries(t.id, "company:acme") if e.action == "accounting.set"]
    assert (entry.actor, entry.old, entry.new) == (
        "slack:U1", {"city": "Bristol", "payment_terms_days": "30"}, {"city": "Bath", "payment_terms_days": "14"})


async def test_an_accounting_change_with_a_bad_value_writes_nothing(db):
    t = await f.tenant()
    c = await f.company(t)
    with pytest.raises(InvalidInput, match="email"):
        await set_accounting(c, {"city": "Bath", "email": "ap@"}, actor="slack:U1")
    assert (await Company.get(id=c.id)).city == "Bristol"
    assert not [e for e in await _entries(t.id, "company:acme") if e.action == "accounting.set"]


async def test_set_channel_audits_the_change_and_says_whether_it_changed(db):
    t = await f.tenant()
    c = await f.company(t)
    assert await set_channel(c, "#billing", actor="slack:U1")
    assert not await set_channel(await Company.get(id=c.id), "#billing", actor="slack:U1")
    assert await set_channel(await Company.get(id=c.id), "none", actor="slack:U2")
    assert (await Company.get(id=c.id)).slack_channel == ""
    entries = [e for e in await _entries(t.id, "company:acme") if e.action == "company.channel"]
    assert [(e.actor, e.old, e.new) for e in entries] == [
        ("slack:U1", {"channel": ""}, {"channel": "#billing"}),
        ("slack:U2", {"channel": "#billing"}, {"channel": ""}),
    ]


async def test_set_channel_refuses_what_is_not_a_channel(db):
    t = await f.tenant()
    c = await f.company(t)
    with pytest.raises(InvalidInput, match=r"channel: 'billing' is not a channel; pick one with #"):
        await set_channel(c, "billing", actor="slack:U1")
    assert (await Company.get(id=c.id)).slack_channel == ""


async def test_set_channel_rolls_back_with_the_callers_transaction(db):
    t = await f.tenant()
    c = await f.company(t)
    with pytest.raises(InvalidInput):
        async with in_transaction():
            await set_channel(c, "#billing", actor="slack:U1")
            raise InvalidInput("bcc", "a later part of the same change failed")
    assert (await Company.get(id=c.id)).slack_channel == ""
    assert not [e for e in await _entries(t.id, "company:acme") if e.action == "company.channel"]


async def test_concurrent_channel_changes_replay(db):
    t = await f.tenant()
    c = await f.company(t)
    channels = [f"#billing-{n}" for n in range(10)]
    copies = [await Company.get(id=c.id) for _ in channels]
    await asyncio.gather(*(set_channel(copy, ch, actor="slack:U1") for copy, ch in zip(copies, channels, strict=True)))
    state = ""
    for entry in [e for e in await _entries(t.id, "company:acme") if e.action == "company.channel"]:
        assert entry.old == {"channel": state}
        state = entry.new["channel"]
    assert (await Company.get(id=c.id)).slack_channel == state


async def test_seller_details_change_accounting_currency_and_prefix_in_one_audit_entry(db):
    t = await f.tenant()
    changes = await set_seller_details(t, {"city": "York", "currency": "eur", "invoice_prefix": "INK-"},
                                       actor="slack:U1")
    assert changes == {"city": ("Leeds", "York"), "currency": ("GBP", "EUR"), "invoice_prefix": ("", "INK-")}
    stored = await Tenant.get(id=t.id)
    assert (stored.city, stored.currency, stored.invoice_prefix) == ("York", "EUR", "INK-")
    assert t.format_number(1) == "INK-000001"
    [entry] = await _entries(t.id, "seller")
    assert (entry.action, entry.old, entry.new) == (
        "seller.set", {"city": "Leeds", "currency": "GBP", "invoice_prefix": ""},
        {"city": "York", "currency": "EUR", "invoice_prefix": "INK-"})


@pytest.mark.parametrize(("updates", "message"), [
    ({"city": "York", "invoice_prefix": "IN K"}, "invoice_prefix: letters, digits and - _ / . only"),
    ({"city": "York", "currency": "XYZ"}, "currency"),
    ({"city": "York", "vat_number": "GB123"}, "vat_number"),
])
async def test_seller_details_with_one_bad_value_change_nothing(db, updates, message):
    t = await f.tenant()
    with pytest.raises(InvalidInput, match=message):
        await set_seller_details(t, updates, actor="slack:U1")
    assert (await Tenant.get(id=t.id)).city == "Leeds"
    assert await _entries(t.id, "seller") == []


async def test_concurrent_seller_changes_replay(db):
    t = await f.tenant()
    cities = [f"City {n}" for n in range(8)]
    copies = [await Tenant.get(id=t.id) for _ in cities]
    await asyncio.gather(*(set_seller_details(copy, {"city": city}, actor="slack:U1")
                           for copy, city in zip(copies, cities, strict=True)))
    state = "Leeds"
    for entry in await _entries(t.id, "seller"):
        assert entry.old == {"city": state}
        state = entry.new["city"]
    assert (await Tenant.get(id=t.id)).city == state


async def test_the_audit_of_a_company_lists_only_that_company(db):
    t = await f.tenant()
    acme, acme2 = await f.company(t, "acme"), await f.company(t, "acme2")
    await set_channel(acme2, "#acme2", actor="slack:U1")
    await set_channel(acme, "#acme", actor="slack:U1")
    assert [(e.action, e.new) for e in await recent(t.id, target="company:acme")] == [
        ("company.channel", {"channel": "#acme"}), ("company.add", (await _entries(t.id, "company:acme"))[0].new)]
    assert len(await recent(t.id)) == 5  # tenant.create, two company.add, two company.channel
