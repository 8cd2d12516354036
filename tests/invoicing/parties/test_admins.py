"""The InvoiceBot admin list: concurrent changes are never lost and the audit log replays to the final state."""

from __future__ import annotations

import asyncio

import pytest

from invoicing.errors import InvalidInput
from invoicing.parties.tenants import add_admin, remove_admin
from models import AuditEntry, Tenant
from tests import factories as f


async def _admins(tenant_id: int) -> list[str]:
    return list((await Tenant.get(id=tenant_id)).admin_user_ids)


async def _replay(tenant_id: int) -> str:
    """Apply the ``admins.*`` entries oldest first; each must start where the previous one ended."""
    state = ""
    for entry in await AuditEntry.filter(tenant_id=tenant_id, target="admins").order_by("id"):
        assert entry.action in {"admins.add", "admins.remove"}
        assert entry.old == {"admins": state}, f"entry {entry.id} does not start where the previous one ended"
        state = entry.new["admins"]
    return state


async def _fresh(tenant_id: int) -> Tenant:
    """The tenant as one Slack request loads it (each request reads its own copy)."""
    return await Tenant.get(id=tenant_id)


async def test_twenty_concurrent_adds_of_different_users_leave_twenty_admins(db):
    t = await f.tenant()
    users = [f"U{n:03d}" for n in range(20)]
    copies = [await _fresh(t.id) for _ in users]  # all read before any change, like 20 requests at once
    added = await asyncio.gather(*(add_admin(copy, user, actor="slack:UBOSS")
                                   for copy, user in zip(copies, users, strict=True)))
    assert all(added)
    assert sorted(await _admins(t.id)) == users
    assert await AuditEntry.filter(tenant_id=t.id, action="admins.add").count() == 20
    assert await _replay(t.id) == ",".join(await _admins(t.id))


async def test_concurrent_adds_and_removes_leave_the_right_set(db):
    t = await f.tenant()
    leaving = [f"UOLD{n:02d}" for n in range(25)]
    joining = [f"UNEW{n:02d}" for n in range(25)]
    for user in leaving:
        await add_admin(t, user, actor="cli")
    changes = []
    for old, new in zip(leaving, joining, strict=True):
        changes += [add_admin(await _fresh(t.id), new, actor="slack:UBOSS"),
                    remove_admin(await _fresh(t.id), old, actor="slack:UBOSS")]
    assert all(await asyncio.gather(*changes))
    assert sorted(await _admins(t.id)) == joining
    assert await _replay(t.id) == ",".join(await _admins(t.id))


async def test_adding_an_admin_twice_or_removing_a_stranger_changes_and_audits_nothing(db):
    t = await f.tenant()
    assert await add_admin(t, "UDANA", actor="cli")
    assert not await add_admin(await _fresh(t.id), "UDANA", actor="cli")
    assert not await remove_admin(await _fresh(t.id), "UNOBODY", actor="cli")
    assert await _admins(t.id) == ["UDANA"] and t.admin_user_ids == ["UDANA"]
    entries = await AuditEntry.filter(tenant_id=t.id, target="admins").order_by("id")
    assert [(e.actor, e.action, e.old, e.new) for e in entries] == [
        ("cli", "admins.add", {"admins": ""}, {"admins": "UDANA"})]


async def test_a_value_that_is_not_a_slack_user_id_is_refused(db):
    t = await f.tenant()
    with pytest.raises(InvalidInput, match="user: 'dana' is not a Slack user id"):
        await add_admin(t, "dana", actor="cli")
    assert await _admins(t.id) == []
