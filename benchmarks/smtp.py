"""Benchmark of the outbox worker against a bare aiosmtplib loop, both to one local aiosmtpd sink.

Run: ``.venv/bin/python benchmarks/smtp.py [--postgres URL] [--compose pool|loop] [--invoices 300]
[--batch-size 20] [--lanes 2] [--sqlite-params synchronous=NORMAL]``

What is compared (same run, same sink, same 300 messages with ~26 KB PDFs, three
alternating rounds, medians reported):

* **bare**: one ``aiosmtplib.SMTP`` connection, ``send_message`` in a loop over the
  already-composed messages — the floor of what any sender can do;
* **outbox**: ``Outbox.deliver_due`` over 300 committed deliveries in SQLite (opened
  by ``bot.db.database``, i.e. the production settings) or, with ``--postgres``, in a
  throwaway PostgreSQL database: select due rows, load the invoices, claim a chunk (one
  committed UPDATE that also records the previous chunk as sent), "render" (a lookup of
  pre-rendered PDFs: the renderer's own cost is ``benchmarks/render.py``'s business) and
  compose, send on the reused connection.

``--compose pool`` (the default, as ``invoicebot serve`` runs) renders and composes in a
two-process pool (``Outbox(async_composer=…)``, as ``bot.rendering.RenderPool`` does);
``--compose loop`` composes on the event loop (the outbox without a composer: CLI, demo).
Besides throughput, the CPU time of this process per message is shown: the service's loop
also serves Slack and the invoice runs, so what the outbox spends there matters too.

The sink runs in a child process, as a mail server would, so it does not compete
for this interpreter's lock. Target: outbox throughput ≥ 0.8 × bare. Invoices are
issued with the real engine (``run_company``) before timing starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosmtplib
from aiosmtpd.controller import Controller
from fpdf import FPDF

from bot.db import database, throwaway_database
from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.mail import (
    compose_invoice_email,
    envelope_recipients,
    envelope_sender,
)
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.outbox_compose import AsyncComposer, Composed, ComposeRequest, render_and_compose
from invoicing.delivery.transport import SmtpTransport
from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.ingest.order_sync import ItemInput, upsert_order
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.parties.companies import create_company
from invoicing.parties.tenants import create_tenant
from models import Delivery, DeliveryStatus, Invoice

MAIL_FROM = "invoices@inkwell.example"
TARGET = 0.8
ROUNDS = 3
NOW = datetime(2026, 11, 8, 0, 5, tzinfo=UTC)
SELLER = {
    "legal_name": "Inkwell Print & Ship Ltd", "address_line1": "Unit 4, Riverside Works", "city": "Leeds",
    "postcode": "LS10 1AB", "country": "GB", "vat_number": "GB980780684", "company_number": "08123456",
}


class Sink:
    """Accepts and counts every message."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages += 1
        return "250 OK"


def pdf_of_about_30_kb(number: str) -> bytes:
    """A real PDF of ~26 KB (uncompressed text, so the size does not depend on zlib)."""
    pdf = FPDF()
    pdf.set_compression(False)
    pdf.set_creation_date(NOW)
    pdf.add_page()
    pdf.set_font("helvetica", size=8)
    pdf.cell(text=f"Invoice {number}", new_x="LMARGIN", new_y="NEXT")
    for line in range(250):
        pdf.cell(text=f"SO-{104200 + line}  MUG-11OZ-WHT  Ceramic mug 11 oz, white  2 x 3.95 + 1.80  11.50",
                 new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


async def issue_invoices(count: int) -> None:
    tenant = await create_tenant("inkwell", currency="GBP")
    tenant.update_from_dict(SELLER)
    await tenant.save()
    await set_product(tenant, "MUG", name="Mug", prices=[PriceInput(retailer=None, cost_price="3.95", shipping="1.80",
                                                                    tax_rate="20")])
    for i in range(count):
        short = f"shop{i:03d}"
        company = await create_company(
            tenant, short, name=f"Shop {i}", country="GB", currency="GBP", timezone="Europe/London",
            accounting={"legal_name": f"Shop {i} Ltd", "address_line1": "1 High Street", "city": "Bristol",
                        "postcode": "BS1 4DJ", "email": f"ap@shop{i}.example"},
        )
        await upsert_order(company, f"SO-{i}", items=[ItemInput("MUG", 2)], status="dispatched",
                           dispatched_at=NOW - timedelta(days=1))
        await run_by_name(tenant, short, clock=lambda: NOW, mail_domain="inkwell.example")


Envelope = tuple[EmailMessage, list[str]]


async def composed_messages(pdfs: dict[str, bytes]) -> list[Envelope]:
    """The very messages the outbox will send, for the bare loop."""
    messages: list[Envelope] = []
    for delivery in await Delivery.all().order_by("id").prefetch_related("invoice"):
        invoice: Invoice = delivery.invoice
        doc = await InvoiceDocument.load(invoice)
        message = compose_invoice_email(doc, pdfs[doc.number], mail_from=MAIL_FROM, to=delivery.to_addr,
                                        message_id=delivery.message_id)
        messages.append((message, envelope_recipients(delivery.to_addr, delivery.bcc)))
    return messages


#: Timings of one round: wall seconds and this process's CPU seconds.
Timing = tuple[float, float]

_PDFS: dict[str, bytes] = {}  # in a pool worker: the pre-rendered PDFs, by invoice number


def _load_pdfs(pdfs: dict[str, bytes]) -> None:
    _PDFS.update(pdfs)


def _compose_in_worker(doc: InvoiceDocument, request: ComposeRequest) -> Composed:
    return render_and_compose(lambda d: _PDFS[d.number], doc, request)


def pool_composer(pdfs: dict[str, bytes]) -> tuple[ProcessPoolExecutor, AsyncComposer]:
    """A two-process pool that renders (looks up) and composes, as ``bot.rendering.RenderPool`` does."""
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=_load_pdfs,
                               initargs=(pdfs,))
    list(pool.map(int, range(2)))  # start both workers before timing

    async def compose(doc: InvoiceDocument, request: ComposeRequest) -> Composed:
        return await asyncio.wrap_future(pool.submit(_compose_in_worker, doc, request))

    return pool, compose


async def bare_loop(port: int, messages: list[Envelope]) -> Timing:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="localhost")
    started, cpu = time.perf_counter(), time.process_time()
    await smtp.connect()
    for message, recipients in messages:
        await smtp.send_message(message, sender=envelope_sender(MAIL_FROM), recipients=recipients)
    await smtp.quit()
    return time.perf_counter() - started, time.process_time() - cpu


async def outbox_run(port: int, pdfs: dict[str, bytes], count: int, lanes: int, batch_size: int,
                     composer: AsyncComposer | None) -> Timing:
    transport = SmtpTransport("127.0.0.1", port, security="none", local_hostname="localhost")
    outbox = Outbox(transport, lambda doc: pdfs[doc.number], MAIL_FROM, clock=lambda: NOW, lanes=lanes,
                    batch_size=batch_size, async_composer=composer)
    started, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while outcomes := await outbox.deliver_due(limit=100):
        sent += sum(o.status == DeliveryStatus.SENT for o in outcomes)
    await transport.close()
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    if sent != count:
        raise SystemExit(f"outbox sent {sent} of {count} invoices")
    await Delivery.all().update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=NOW, sent_at=None)
    return elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_sink() -> None:
    """``--sink``: serve on a free port, print it, and on stdin EOF print how many messages arrived."""
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), server_hostname="localhost")
    controller.start()
    print(controller.port, flush=True)
    sys.stdin.read()
    controller.stop()
    print(sink.messages, flush=True)


@contextlib.asynccontextmanager
async def scratch_database(postgres: str | None, sqlite_params: str) -> AsyncIterator[str]:
    """The URL of an empty database: a throwaway one on the PostgreSQL server at ``postgres``, else a SQLite file."""
    if postgres:
        async with throwaway_database(postgres, "invoicebot_smtp") as (url, _):
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite://{Path(folder) / 'bench.db'}" + (f"?{sqlite_params}" if sqlite_params else "")


async def main(count: int, lanes: int, batch_size: int, compose: str, sqlite_params: str,
               postgres: str | None) -> None:
    # The sink is another process, as a mail server is: it must not share our interpreter lock.
    sink = subprocess.Popen([sys.executable, __file__, "--sink"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert sink.stdout is not None and sink.stdin is not None
    port = int(sink.stdout.readline())
    bare: list[Timing] = []
    worker: list[Timing] = []
    pool: ProcessPoolExecutor | None = None
    try:
        async with scratch_database(postgres, sqlite_params) as url:
            print(f"database: {'PostgreSQL' if postgres else 'SQLite'}")
            async with database(url):
                setup_started = time.perf_counter()
                await issue_invoices(count)
                pdfs = {i.display_number: pdf_of_about_30_kb(i.display_number) for i in await Invoice.all()}
                messages = await composed_messages(pdfs)
                print(f"setup: {count} invoices issued, PDFs rendered in {time.perf_counter() - setup_started:.1f} s "
                      f"(PDF {sum(map(len, pdfs.values())) / len(pdfs) / 1024:.1f} KB, "
                      f"message {len(messages[0][0].as_bytes()) / 1024:.1f} KB)")
                composer = None
                if compose == "pool":
                    pool, composer = pool_composer(pdfs)
                for _ in range(ROUNDS):  # alternate, so machine noise hits both sides alike
                    bare.append(await bare_loop(port, messages))
                    worker.append(await outbox_run(port, pdfs, count, lanes, batch_size, composer))
    finally:
        if pool is not None:
            pool.shutdown()
        received, _ = sink.communicate("")
    if int(received) != 2 * ROUNDS * count:
        raise SystemExit(f"sink received {received.strip()} messages, expected {2 * ROUNDS * count}")
    report(count, bare, worker, f"outbox, compose in {compose}")


def report(count: int, bare: list[Timing], worker: list[Timing], label: str) -> None:
    def line(name: str, timings: list[Timing]) -> float:
        wall = statistics.median(t[0] for t in timings)
        cpu = statistics.median(t[1] for t in timings)
        print(f"{name:26s}: {count / wall:7.1f} msgs/s ({wall * 1000 / count:.2f} ms/msg, "
              f"CPU of this process {cpu * 1000 / count:.2f} ms/msg)")
        return count / wall

    print(f"median of {ROUNDS} rounds of {count} messages each")
    ratio = line(label, worker) / line("bare aiosmtplib loop", bare)
    print(f"{'ratio':26s}: {ratio:.2f} (target ≥ {TARGET}) — {'target met' if ratio >= TARGET else 'target missed'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--lanes", type=int, default=2, help="Outbox lanes (e-mails rendered and composed at once)")
    parser.add_argument("--batch-size", type=int, default=20, help="Outbox batch size (deliveries claimed at once)")
    parser.add_argument("--compose", choices=["pool", "loop"], default="pool",
                        help="render and compose in a two-process pool (as the service does) or on the loop")
    parser.add_argument("--sqlite-params", default="", help="appended to the SQLite URL, e.g. synchronous=NORMAL")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="run on a throwaway database on this PostgreSQL server instead of SQLite "
                             "(e.g. $INVOICEBOT_TEST_POSTGRES_URL)")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink()
    else:
        asyncio.run(main(args.invoices, args.lanes, args.batch_size, args.compose, args.sqlite_params, args.postgres))
