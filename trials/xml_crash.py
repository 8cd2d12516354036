"""XML export crash trial: `invoicebot serve` SIGKILLed again and again while it exports and uploads.

Run: ``.venv/bin/python trials/xml_crash.py [--kills 50] [--seed 1] [--postgres URL]``

Setup (throwaway SQLite database, or PostgreSQL with ``--postgres``): one tenant with three companies, each
with its XML export enabled to an SFTP server (``tests.fakes.sftp_server`` in its own process, slow writes so
kills land mid-upload) on the cron schedule ``* * * * *``. Each life: new orders are added (while no process
runs), every ``next_run_at`` is pushed into the past so exports are due at once, ``serve`` is spawned (scheduler
lease 3 s, upload lease 2 s) and SIGKILLed 0.2–4 s after it answers ``/healthz``.

Finally one last ``serve`` runs until every order is in the ledger and every file is ``sent``, and is stopped
with SIGTERM. The promise, checked at the end (exit 1 on any violation):

* every order is in exactly one file (no order lost, none duplicated — no order changes here, so no revisions);
* each company's sequence numbers are 1..n without a gap;
* the server's directory holds exactly one final file per sequence, with the bytes recorded, and no ``.part``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bot.db import database, migrate  # noqa: E402
from invoicing.ingest.catalog import PriceInput, set_product  # noqa: E402
from invoicing.ingest.order_sync import ItemInput, upsert_order  # noqa: E402
from invoicing.integrations.xml_export import keys  # noqa: E402
from invoicing.integrations.xml_export import settings as xml_settings  # noqa: E402
from invoicing.integrations.xml_export.run import unpack_to  # noqa: E402
from invoicing.parties.companies import create_company  # noqa: E402
from invoicing.parties.tenants import create_tenant  # noqa: E402
from invoicing.secrets import SecretBox, new_key  # noqa: E402
from models import Company, Integration, IntegrationKind, Order, XmlExport, XmlExportItem, XmlExportStatus  # noqa: E402
from tests.fakes.sftp_server import spawn_server  # noqa: E402

SECRET = new_key()
COMPANIES = ("alpha", "bravo", "charlie")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(url: str, work: Path) -> Path:
    """Tenant, companies, prices; returns the SFTP server's root."""
    box = SecretBox(SECRET)
    root = work / "sftp"
    (root / "upload").mkdir(parents=True)
    async with database(url, apply_migrations=False):
        tenant = await create_tenant("trial", plan="oms", currency="GBP")
        await set_product(tenant, "MUG", name="Mug", prices=[PriceInput(None, "4.50", "1.00", "20")])
        key = await keys.tenant_key(tenant.id, box)
        (work / "authorized").write_text(key.public_line + "\n")
        for short in COMPANIES:
            await create_company(tenant, short, name=short.title(), country="GB", currency="GBP",
                                 timezone="Europe/London")
    return root


async def configure(url: str, port: int, host_key: str) -> None:
    async with database(url, apply_migrations=False):
        for company in await Company.all():
            await xml_settings.configure(company, now=datetime.now(UTC), actor="trial", box=SecretBox(SECRET),
                                         host="127.0.0.1", port=str(port), username="acme", path="/upload",
                                         host_key=host_key, schedule="* * * * *")
            await xml_settings.enable(company, now=datetime.now(UTC), actor="trial")


async def between_lives(url: str, life: int, rng: random.Random) -> None:
    """New orders for some companies; every export due now (what downtime would leave)."""
    async with database(url, apply_migrations=False):
        for company in await Company.all():
            for n in range(rng.randint(0, 25)):
                items = [ItemInput("MUG", rng.randint(1, 4), f"design {m}") for m in range(rng.randint(1, 8))]
                await upsert_order(company, f"{company.short_name[:1].upper()}{life:03d}-{n:03d}", items=items,
                                   status="dispatched", dispatched_at=datetime.now(UTC) - timedelta(minutes=5),
                                   on_hold=False, error=None)
        await Integration.filter(kind=IntegrationKind.XML_EXPORT).update(
            next_run_at=datetime.now(UTC) - timedelta(seconds=1))


def spawn(url: str, work: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "INVOICEBOT_DATA_DIR": str(work / "data"), "HOST": "127.0.0.1",
           "PORT": str(port), "INVOICEBOT_SECRET_KEY": SECRET, "SCHEDULER_LEASE_SECONDS": "3",
           "XML_UPLOAD_LEASE_SECONDS": "2", "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", "SMTP_HOST": ""}
    (work / "data").mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=work / "data", env=env,
                            stdout=subprocess.DEVNULL, stderr=(work / "serve.log").open("ab"), start_new_session=True)


async def healthy(port: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    return False


async def settled(url: str) -> bool:
    async with database(url, apply_migrations=False):
        orders = await Order.all().count()
        ledger = await XmlExportItem.all().count()
        unsent = await XmlExport.exclude(status=XmlExportStatus.SENT).count()
    return orders == ledger and unsent == 0


async def check(url: str, root: Path) -> list[str]:
    problems: list[str] = []
    async with database(url, apply_migrations=False):
        orders = set(await Order.all().values_list("id", flat=True))
        ledger = Counter(await XmlExportItem.all().values_list("order_id", flat=True))
        lost = orders - set(ledger)
        doubled = [o for o, n in ledger.items() if n > 1]
        if lost:
            problems.append(f"{len(lost)} order(s) never exported")
        if doubled:
            problems.append(f"{len(doubled)} order(s) in more than one file")
        names = set()
        for company in await Company.all():
            sequences = [e.sequence for e in await XmlExport.filter(company_id=company.id).order_by("sequence")]
            if sequences != list(range(1, len(sequences) + 1)):
                problems.append(f"{company.short_name}: sequence {sequences} has a gap")
        for export in await XmlExport.all():
            names.add(export.file_name)
            path = root / "upload" / export.file_name
            if not path.exists():
                problems.append(f"{export.file_name} is missing on the server")
                continue
            expected = root.parent / "expected.xml"
            unpack_to(export.body, expected)
            if expected.read_bytes() != path.read_bytes():
                problems.append(f"{export.file_name} on the server differs from the recorded bytes")
        on_server = {p.name for p in (root / "upload").iterdir()}
        if on_server != names:
            problems.append(f"unexpected files on the server: {sorted(on_server - names)}")
        print(f"{len(orders)} orders in {len(names)} files; ledger rows {sum(ledger.values())}")
    return problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL of an empty database to use instead")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="xml-crash-") as tmp:
        work = Path(tmp)
        url = args.postgres or f"sqlite://{work / 'trial.db'}"
        await migrate(url)
        root = await seed(url, work)
        spawned = await spawn_server(root, work / "authorized", work / "sftp.port", "--user", "acme",
                                     "--write-delay", "0.05", stderr=(work / "sftp.log").open("ab"))
        sftp = spawned.process
        try:
            await configure(url, spawned.port, spawned.host_key_line)
            kills = 0
            for life in range(args.kills):
                await between_lives(url, life, rng)
                port = free_port()
                serve = spawn(url, work, port)
                if rng.random() > 0.1 and await healthy(port):
                    await asyncio.sleep(rng.uniform(0.2, 4.0))
                else:
                    await asyncio.sleep(rng.uniform(0.1, 1.5))
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
                kills += 1
                print(f"life {life + 1}: killed", flush=True)
            port = free_port()
            serve = spawn(url, work, port)
            await healthy(port)
            deadline = time.monotonic() + 180
            while not await settled(url) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            os.killpg(serve.pid, signal.SIGTERM)
            code = serve.wait(60)
            problems = await check(url, root)
            if code != 0:
                problems.append(f"the last serve exited {code} on SIGTERM")
            print(f"{kills} SIGKILLs; {'OK' if not problems else 'VIOLATIONS:'}")
            for problem in problems:
                print(f"  {problem}")
            return 1 if problems else 0
        finally:
            sftp.send_signal(signal.SIGTERM)
            sftp.wait(10)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
