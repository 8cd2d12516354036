"""Benchmark of the Xero pushes (issue 16): 5,000 issued invoices through the fake Xero with scaled limits.

Run: ``.venv/bin/python benchmarks/xero.py [--invoices 5000] [--per-minute 600] [--batch 5] [--postgres URL]
[--quick]``

The fake Xero (``python -m tests.fakes.xero``) runs in a child process with its limits scaled to
``--per-minute`` calls per rolling minute per organisation (5 in flight, a daily budget large enough not to
matter), validating every request against Xero's OpenAPI spec. This process holds the database (SQLite in a
temp dir, or a throwaway PostgreSQL database with ``--postgres``), one tenant connected through the real OAuth
flow, ``--companies`` companies whose first invoices are issued by the real invoice run, cloned set-based to
``--invoices`` issued invoices each with its queued ``xero_push`` row, and our ``Pusher`` with its per-org pacer
set to the same ``--per-minute``. It pushes until every push is recorded, then prints:

* **rate**: Xero calls per rolling minute once the pacer is the bottleneck, as a fraction of the allowed rate
  (target ≥ 0.95): for every call *i* after the first minute's allowance, the time since call *i - per_minute*
  started; a pacer that uses the whole allowance and no more makes that 60 s. Also the busiest 60 s window
  as the fake counted it (≤ per_minute, or Xero would answer 429);
* the 429s the fake answered (target 0), the most calls it saw in flight (≤ 5), its validation errors (0),
  the invoices in its books (= ``--invoices``) and the pushes recorded done with no totals mismatch;
* **CPU per pushed invoice** of this process (the fake's CPU is its own process's) — build, request,
  record.

``--batch 5`` is the default so the limiter is the bottleneck: at Xero's recommended 50 per request (the
service's default, ``--batch 50``) 5,000 invoices are about 120 calls, inside one minute's allowance, and the
run measures the fake rather than the pacer. ``--quick``: 600 invoices at Xero's real 60 per minute (about
two minutes: 130 calls are two windows). Figures, not asserts: a shared 2-core machine moves them by ±20 %.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from benchmarks.burst_world import _columns, _names, seed_world
from bot.db import database, throwaway_database
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.integrations.xero.apps import save_app
from invoicing.integrations.xero.client import XeroClient
from invoicing.integrations.xero.endpoints import XeroEnv, XeroHttp, XeroUrls
from invoicing.integrations.xero.oauth import authorize_link, complete_authorization
from invoicing.integrations.xero.pacer import Limits, Pacers
from invoicing.integrations.xero.pushes import Pusher
from invoicing.secrets import SecretBox, new_key
from invoicing.sql import Statement
from models import Integration, IntegrationKind, Invoice, InvoiceLine, Tenant, XeroPush, XeroPushStatus

REDIRECT = "http://invoicebot.bench/xero/callback"
WINDOW = 60.0


def now() -> datetime:
    return datetime.now(UTC)


def start_fake(per_minute: int, latency: float) -> tuple[subprocess.Popen[str], dict[str, object]]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.xero", "--per-minute", str(per_minute), "--per-day", "10000000",
         "--app-per-minute", "1000000", "--latency", str(latency), "--redirect-uri", REDIRECT],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert fake.stdout is not None
    return fake, json.loads(fake.stdout.readline())


async def connect(tenant: Tenant, fake: dict[str, object], env: XeroEnv) -> None:
    """The OAuth flow as the callback runs it (the fake logged its user in to its organisation)."""
    await save_app(tenant, client_id=str(fake["client_id"]), client_secret=str(fake["client_secret"]),
                   legacy_scopes=False, actor="slack:UBENCH", box=env.box)
    url = await authorize_link(tenant_id=tenant.id, user_id="UBENCH", channel="C0XERO", company_id=None, env=env)
    async with env.http.session.get(url, allow_redirects=False) as answer:
        query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    done = await complete_authorization(state=query["state"], code=query.get("code", ""),
                                        error=query.get("error", ""), env=env)
    assert done.connection is not None, "the fake did not connect"


async def seed(env: XeroEnv, fake: dict[str, object], companies: int, invoices: int) -> int:
    """Issue one real invoice per company, then clone them to ``invoices`` issued invoices with pushes."""
    await seed_world(companies, 1)
    tenant = await Tenant.get(name="bench")
    await connect(tenant, fake, env)
    await Integration.filter(kind=IntegrationKind.XERO).update(enabled=True)
    issued = now()
    for n in range(1, companies + 1):
        await run_by_name(tenant, f"shop{n}", clock=lambda: issued, mail_domain="inkwell.example")
    base = await Invoice.filter(tenant_id=tenant.id).count()
    assert base == companies and await XeroPush.filter(status=XeroPushStatus.PENDING).count() == companies
    rounds = -(-invoices // companies) - 1
    for k in range(1, rounds + 1):
        await _clone(tenant.id, companies, k * companies)
    extra = await XeroPush.filter(status=XeroPushStatus.PENDING).order_by("-id").offset(invoices).values_list(
        "id", flat=True)
    if extra:
        await XeroPush.filter(id__in=list(extra)).delete()
    if Statement().postgres:
        await Statement().execute("ANALYZE")
    return await XeroPush.filter(status=XeroPushStatus.PENDING).count()


async def _clone(tenant_id: int, companies: int, offset: int) -> None:
    """Copy the tenant's first invoices (numbers 1…companies) as numbers ``offset + 1`` … with lines and pushes."""
    columns = _columns(Invoice)
    replaced = {"number": f"i.number + {offset}", "display_number": f"'B' || (i.number + {offset})"}
    q = Statement()
    t = q.param(tenant_id)
    await q.execute(f"INSERT INTO invoice ({_names(columns)}) SELECT "
                    + ", ".join(replaced.get(c, f'i."{c}"') for c in columns)
                    + f" FROM invoice i WHERE i.tenant_id = {t} AND i.number <= {companies}")
    pairs = (f"FROM invoice o JOIN invoice n ON n.tenant_id = o.tenant_id AND n.number = o.number + {offset} "
             f"WHERE o.tenant_id = {t} AND o.number <= {companies}")
    columns = _columns(InvoiceLine)
    await q.execute(f"INSERT INTO invoice_line ({_names(columns)}) SELECT "
                    + ", ".join("n.id" if c == "invoice_id" else f'l."{c}"' for c in columns)
                    + f" FROM invoice_line l JOIN (SELECT o.id AS old, n.id AS id {pairs}) n ON n.old = l.invoice_id")
    columns = _columns(XeroPush)
    replaced = {"invoice_id": "n.id", "dedupe_key": "'invoice:' || n.id", "number": "n.display_number"}
    await q.execute(f"INSERT INTO xero_push ({_names(columns)}) SELECT "
                    + ", ".join(replaced.get(c, f'p."{c}"') for c in columns)
                    + f" FROM xero_push p JOIN (SELECT o.id AS old, n.id AS id, n.display_number AS display_number "
                    f"{pairs}) n ON n.old = p.invoice_id")


async def push_all(pusher: Pusher, expected: int) -> int:
    recorded = 0
    while recorded < expected:
        got = await pusher.push_due(limit=1000)
        if got == 0:
            due = await pusher.next_due_at()
            if due is None:
                break
            await asyncio.sleep(max(0.05, min(5.0, (due - now()).total_seconds())))
        recorded += got
    return recorded


def paced_ratio(starts: list[float], per_minute: int) -> float:
    """60 s over the mean time between call i - per_minute and call i (1.0: the whole allowance, no more)."""
    spans = [starts[i] - starts[i - per_minute] for i in range(per_minute, len(starts))]
    return WINDOW / statistics.mean(spans) if spans else float("nan")


def busiest_window(starts: list[float]) -> int:
    return max((bisect.bisect_left(starts, s + WINDOW) - i for i, s in enumerate(starts)), default=0)


async def run(url: str, args: argparse.Namespace) -> None:
    process, fake = start_fake(args.per_minute, args.latency)
    starts: list[float] = []

    async def on_start(_: object, __: object, params: aiohttp.TraceRequestStartParams) -> None:
        if "/api.xro/" in params.url.path:
            starts.append(time.monotonic())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            base = str(fake["base_url"])
            env = XeroEnv(box=SecretBox(new_key()), clock=now,
                          http=XeroHttp(session, XeroUrls(login=base, identity=base, api=base,
                                                          redirect_uri=REDIRECT), 30.0))
            async with database(url):
                seeded_at = time.perf_counter()
                pending = await seed(env, fake, args.companies, args.invoices)
                print(f"  seeded {pending:,} issued invoices with queued pushes ({args.companies} companies) in "
                      f"{time.perf_counter() - seeded_at:.1f} s")
                starts.clear()
                pusher = Pusher(XeroClient(env, Pacers(Limits(per_minute=args.per_minute))), now,
                                batch_size=args.batch)
                cpu, wall = time.process_time(), time.perf_counter()
                recorded = await push_all(pusher, pending)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                done = await XeroPush.filter(status=XeroPushStatus.DONE, mismatch="").count()
            async with session.get(f"{base}/_fake/state") as answer:
                state = json.loads(await answer.text())
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)
    (org,) = state["organisations"].values()
    ratio = paced_ratio(starts, args.per_minute)
    rejections = len(org["rejections"])
    in_books = len(set(org["invoices"]))
    print(f"  pushed {recorded:,} invoices in {len(starts):,} calls ({len(starts) - -(-recorded // args.batch):,} for "
          f"contacts) in {wall:.1f} s, batch {args.batch}, limit {args.per_minute}/min")
    verdict = "ok" if ratio >= 0.95 else "MISSED" if ratio == ratio else "not paced: fewer calls than a minute allows"
    print(f"  paced rate {ratio:.3f}× the allowed {args.per_minute}/min (target >= 0.95: {verdict})"
          f"; busiest 60 s window {busiest_window(starts)} calls")
    print(f"  429s {rejections} (target 0: {'ok' if rejections == 0 else 'MISSED'}); most in flight "
          f"{org['max_in_flight']} (<= 5); request validation errors {len(state['validation_errors'])}")
    print(f"  in the fake's books {in_books:,} invoices; recorded done without mismatch {done:,} "
          f"({'ok' if in_books == done == args.invoices else 'MISSED'})")
    print(f"  CPU of this process {cpu * 1000 / max(recorded, 1):.2f} ms per pushed invoice "
          f"({cpu:.1f} s for {recorded:,})")


async def main(args: argparse.Namespace) -> None:
    print(f"Xero pushes, {'PostgreSQL' if args.postgres else 'SQLite'}:")
    if not args.postgres:
        with tempfile.TemporaryDirectory() as folder:
            await run(f"sqlite://{Path(folder) / 'xero.db'}", args)
        return
    async with throwaway_database(args.postgres, "invoicebot_xero") as (url, _):
        await run(url, args)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=5000)
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--per-minute", type=int, default=600)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds each fake accounting call takes")
    parser.add_argument("--postgres", default=os.environ.get("INVOICEBOT_BENCH_POSTGRES_URL"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.invoices, args.companies, args.per_minute = 600, 50, 60
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
