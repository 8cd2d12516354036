"""The embedded SQLite database shared by the server and the CLI (issue 12, item 5).

SQLite has one writer at a time per database *file*. While ``invoicebot serve`` writes feed
batches, ops run ``invoicebot token create`` or ``invoicebot run`` from a shell: a second
process writing the same file. A feed write that meets the CLI's write lock must wait for it
(busy timeout) or retry, never answer 500 and drop the orders.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.db import database
from bot.feed import FEED_PREFIX, create_feed_app
from invoicing.ingest.tokens import create_token
from models import ApiToken, InvoiceRun, Order, RunOutcome
from tests import factories as f
from tests.bot.test_feed import request_feed

#: The feed keeps sending batches until the CLI has written this many times (each a new process).
CLI_RUNS = 3
BATCH_SIZE = 20
SENDERS = 4


def _order(n: int, k: int) -> dict[str, Any]:
    return {
        "company": "acme", "ref": f"B{n:03d}-{k:02d}", "items": [{"sku": "MUG", "quantity": 1 + k % 3}],
        "status": "dispatched", "dispatched_at": "2026-11-01T10:00:00Z", "on_hold": False, "error": None,
        "ship_to": {"name": "Jane Doe", "line1": "1 High St", "city": "Leeds", "postcode": "LS1 1AA",
                    "country": "GB"},
    }


async def _cli(data_dir: Path, url: str, *args: str) -> tuple[int, str]:
    """One real ``invoicebot`` process against the same database file; its exit code and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SMTP_", "SLACK_"))}
    env.update(INVOICEBOT_DATA_DIR=str(data_dir), DATABASE_URL=url, COLUMNS="200")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, env=env, cwd=data_dir,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite://{tmp_path / 'invoicebot.db'}"
    async with database(url):
        yield url


@pytest.mark.parametrize("command", [("token", "create", "inkwell"), ("run", "acme")])
async def test_feed_writes_succeed_while_the_cli_writes_the_same_sqlite_file(sqlite_file, tmp_path, command, caplog):
    caplog.set_level(logging.WARNING, logger="invoicing.retrying")
    tenant = await f.tenant()
    await f.company(tenant)
    await f.price(tenant, "MUG", "5.00", shipping="1.50", tax="20")
    token = (await create_token(tenant)).token
    root = web.Application()
    root.add_subapp(FEED_PREFIX, create_feed_app())
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    cli_exits: Counter[int] = Counter()
    done = asyncio.Event()
    cli: asyncio.Task[None]

    async def cli_loop() -> None:  # one process after another, writing while the feed writes
        while not done.is_set():
            code, stderr = await _cli(tmp_path, sqlite_file, *command)
            cli_exits[code] += 1
            if code != 0:
                failures.append(f"cli {' '.join(command)} exit {code}: {stderr.strip()[-300:]}")

    async def sender(session: ClientSession, server: TestServer, lane: int) -> None:
        n = lane
        while sum(cli_exits.values()) < CLI_RUNS and not cli.done():
            body = {"orders": [_order(n, k) for k in range(BATCH_SIZE)]}
            reply = await request_feed(session, server, "POST", "/orders:batch", body, token=token)
            statuses[reply.status] += 1
            if reply.status != 200:
                failures.append(f"batch {n}: {reply.status} {reply.body!r}")
            n += SENDERS

    async with TestServer(root, host="127.0.0.1") as server, ClientSession() as session:
        cli = asyncio.create_task(cli_loop())
        try:
            await asyncio.wait_for(asyncio.gather(*(sender(session, server, i) for i in range(SENDERS))), 60)
        finally:
            done.set()
            await asyncio.wait_for(cli, 60)

    batches = sum(statuses.values())
    retries = sum(1 for r in caplog.records if r.name == "invoicing.retrying")
    print(f"sqlite + cli {command[0]}: {batches} batches, {sum(cli_exits.values())} cli runs, {retries} retries")
    assert failures == [], f"{len(failures)} failure(s) in {batches} batches: {failures[:5]}"
    assert statuses == {200: batches} and batches > 50
    assert await Order.all().count() == batches * BATCH_SIZE  # every order stored
    if command[0] == "token":
        assert await ApiToken.all().count() == 1 + cli_exits[0]
    else:
        assert not await InvoiceRun.filter(outcome=RunOutcome.FAILED).exists()
