"""``invoicebot serve`` killed with SIGKILL during an XML upload: after a restart, exactly one final file per
sequence, with the bytes recorded, and every order exported exactly once.

Real processes: the SFTP server (``python -m tests.fakes.sftp_server``, slow writes so the kill lands mid-upload)
and the service (``python -m bot serve --no-scheduler``) each run in their own process; the test process writes
the export files (a run) into the shared database and only watches.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from invoicing.ingest.order_sync import ItemInput
from invoicing.integrations.xml_export import keys
from invoicing.integrations.xml_export import run as xml_run
from invoicing.integrations.xml_export import settings as xml_settings
from invoicing.secrets import SecretBox, new_key
from models import Order, XmlExport, XmlExportItem, XmlExportStatus
from tests import factories
from tests.fakes.sftp_server import spawn_server
from tests.invoicing.integrations.xml_export.helpers import at, xml_of

SECRET = new_key()
ORDERS_PER_FILE = 120
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(check, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _serve(db_url: str, data: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": db_url, "INVOICEBOT_DATA_DIR": str(data), "HOST": "127.0.0.1",
           "PORT": str(_free_port()), "INVOICEBOT_SECRET_KEY": SECRET, "XML_UPLOAD_LEASE_SECONDS": "3",
           "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", "SMTP_HOST": ""}
    return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--no-scheduler"], cwd=data, env=env,
                            stdout=subprocess.DEVNULL, stderr=(data / "serve.log").open("ab"))


async def test_kill_9_during_an_upload_leaves_one_final_file_per_sequence_and_every_order_once(db, tmp_path):
    box = SecretBox(SECRET)
    tenant = await factories.tenant()
    company = await factories.company(tenant, "zeta")
    await factories.price(tenant, "MUG", "4.50")
    key = await keys.tenant_key(tenant.id, box)
    root, data = tmp_path / "sftp", tmp_path / "data"
    (root / "upload").mkdir(parents=True)
    data.mkdir()
    (tmp_path / "authorized").write_text(key.public_line + "\n")
    spawned = await spawn_server(root, tmp_path / "authorized", tmp_path / "sftp.port", "--user", "acme",
                                 "--write-delay", "0.15", stderr=(tmp_path / "sftp.log").open("ab"))
    sftp, host_key = spawned.process, spawned.host_key_line
    serve: subprocess.Popen[bytes] | None = None
    try:
        await xml_settings.configure(company, now=factories.T0, actor="test", box=box, host="127.0.0.1",
                                     port=str(spawned.port), username="acme", path="/upload",
                                     host_key=host_key)
        items = [ItemInput("MUG", 1 + n % 3, f"Mug design {n:03d}, full-wrap print") for n in range(40)]
        for batch in range(2):
            for n in range(ORDERS_PER_FILE):
                await factories.order(company, ref=f"K{batch}-{n:04d}", items=items)
            await xml_run.run_company(tenant, company, clock=lambda b=batch: at(1 + b), actor="test")
        files = await XmlExport.all().order_by("sequence")
        assert [f.sequence for f in files] == [1, 2]

        serve = _serve(db_url=db.url, data=data)

        async def mid_upload() -> bool:
            return any(p.name.endswith(".part") for p in (root / "upload").iterdir())

        await _until(mid_upload, 60, "an upload in progress")
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        final = sorted(p.name for p in (root / "upload").iterdir() if not p.name.endswith(".part"))
        assert final in ([], [files[0].file_name]), final  # never a partial file under a final name

        serve = _serve(db_url=db.url, data=data)

        async def all_sent() -> bool:
            return await XmlExport.filter(status=XmlExportStatus.SENT).count() == 2

        await _until(all_sent, 90, "both files uploaded after the restart")
        serve.send_signal(signal.SIGTERM)
        serve.wait(20)
        serve = None
        arrived = sorted(p.name for p in (root / "upload").iterdir())
        assert arrived == [files[0].file_name, files[1].file_name]  # one final file per sequence, no .part
        for export in files:
            assert (root / "upload" / export.file_name).read_bytes() == xml_of(export)
        orders = await Order.filter(company_id=company.id).values_list("id", flat=True)
        ledger = await XmlExportItem.all().values_list("order_id", flat=True)
        assert sorted(ledger) == sorted(orders)  # every order exactly once
        first = await XmlExport.get(id=files[0].id)
        assert first.attempts >= 2  # it was uploaded again after the kill
    finally:
        for process in (serve, sftp):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
