"""A second replica in its own process, for the concurrent-refresh test.

``python -m tests.invoicing.integrations.xero.refresh_child DB_URL XERO_URL NOW_ISO KEY CONNECTION_ID MARKER``
opens the database, writes MARKER, waits for ``MARKER.go`` and asks for the connection's access token
at the instant NOW (the fake Xero's clock stands still), writing it to ``MARKER.token``.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

import aiohttp

from bot.db import database
from invoicing.integrations.xero.endpoints import XeroEnv, XeroHttp, XeroUrls
from invoicing.integrations.xero.tokens import access_token
from invoicing.secrets import SecretBox


async def main(url: str, xero_url: str, now_iso: str, key: str, connection_id: str, marker: str) -> None:
    now = datetime.fromisoformat(now_iso)
    async with database(url, apply_migrations=False), aiohttp.ClientSession() as session:
        urls = XeroUrls(login=xero_url, identity=xero_url, api=xero_url, redirect_uri="http://invoicebot.test/x")
        env = XeroEnv(box=SecretBox(key), http=XeroHttp(session, urls, 5.0), clock=lambda: now)
        Path(marker).write_text("ready")
        while not Path(marker + ".go").exists():
            await asyncio.sleep(0.005)
        token = await access_token(int(connection_id), box=env.box, http=env.http, clock=env.clock)
    Path(marker + ".token").write_text(token)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
