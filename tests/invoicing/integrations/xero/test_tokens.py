"""Tokens: one refresh per connection however many workers ask, lost answers retried, invalid_grant breaks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from invoicing.integrations.xero.connections import refresh_purpose
from invoicing.integrations.xero.errors import XeroConnectionBroken
from invoicing.integrations.xero.tokens import access_token
from models import NoticeKind, SlackNotice, XeroConnection, XeroConnectionStatus
from tests import factories
from tests.invoicing.integrations.xero.conftest import KEY

CHILD = "tests.invoicing.integrations.xero.refresh_child"


def refreshes(world) -> list[str]:
    return [r.outcome for r in world.xero.token_requests if r.grant_type == "refresh_token"]


async def _token(world, row: XeroConnection, **kwargs) -> str:
    return await access_token(row.id, box=world.env.box, http=world.env.http, clock=world.clock, **kwargs)


async def test_a_fresh_token_is_used_as_it_is(world):
    row = await world.connect(await factories.tenant(), world.xero.add_organisation("Acme Ltd"))
    world.clock.advance(24 * 60)  # 6 minutes left: no refresh yet
    first = await _token(world, row)
    assert first == world.env.box.open((await XeroConnection.get(id=row.id)).access_token,
                                       purpose=f"xero:connection:{row.id}:access")
    assert refreshes(world) == []


async def test_workers_refreshing_at_once_make_one_refresh_and_all_continue(world):
    row = await world.connect(await factories.tenant(), world.xero.add_organisation("Acme Ltd"))
    old = await _token(world, row)
    world.clock.advance(26 * 60)  # 4 minutes left: refresh before use
    tokens = await asyncio.gather(*(_token(world, row) for _ in range(6)))
    assert refreshes(world) == ["ok"]
    assert len(set(tokens)) == 1 and tokens[0] != old
    stored = await XeroConnection.get(id=row.id)
    assert stored.refreshed_at == world.clock()


async def test_a_replica_in_another_process_refreshing_at_the_same_time_is_served_by_the_one_refresh(world, db,
                                                                                                   tmp_path):
    row = await world.connect(await factories.tenant(), world.xero.add_organisation("Acme Ltd"))
    world.clock.advance(26 * 60)
    marker = tmp_path / "child"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[4])}
    child = subprocess.Popen(
        [sys.executable, "-m", CHILD, db.url, world.xero.base_url, world.clock().isoformat(),
         KEY, str(row.id), str(marker)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():  # the child is ready: both replicas ask now
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        (tmp_path / "child.go").write_text("go")
        mine = await asyncio.gather(*(_token(world, row) for _ in range(3)))
        while child.poll() is None:
            await asyncio.sleep(0.05)
        assert child.returncode == 0, child.stderr.read().decode() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.kill()
    theirs = (tmp_path / "child.token").read_text()
    assert refreshes(world) == ["ok"]
    assert set(mine) == {theirs}


async def test_a_lost_refresh_answer_is_retried_with_the_old_refresh_token(world):
    row = await world.connect(await factories.tenant(), world.xero.add_organisation("Acme Ltd"))
    before = (await XeroConnection.get(id=row.id)).refresh_token
    world.clock.advance(26 * 60)
    world.xero.drop_next_token_response()
    token = await _token(world, row)
    assert refreshes(world) == ["ok", "ok"]  # the lost one (rotated at Xero) and the retry within the grace
    stored = await XeroConnection.get(id=row.id)
    assert stored.refresh_token != before and stored.status == XeroConnectionStatus.CONNECTED
    world.clock.advance(31 * 60)  # the stored refresh token is the latest one: it still works later
    assert await _token(world, row) != token
    assert refreshes(world) == ["ok", "ok", "ok"]


async def test_invalid_grant_breaks_the_connection_and_tells_the_channel(world):
    row = await world.connect(await factories.tenant(), world.xero.add_organisation("Acme Ltd"))
    world.clock.advance(61 * 24 * 3600)  # the unused refresh token expired after 60 days
    with pytest.raises(XeroConnectionBroken, match="connect again"):
        await _token(world, row)
    stored = await XeroConnection.get(id=row.id)
    assert stored.status == XeroConnectionStatus.BROKEN and "invalid_grant" in stored.broken_reason
    [notice] = await SlackNotice.filter(kind=NoticeKind.XERO_BROKEN)
    assert notice.channel == "C0XERO" and notice.payload["organisation"] == "Acme Ltd"
    assert world.env.box.open(stored.refresh_token, purpose=refresh_purpose(row.id))  # nothing was wiped
    with pytest.raises(XeroConnectionBroken):
        await _token(world, row)
    assert refreshes(world) == ["invalid_grant"]  # a broken connection does not ask again
