"""Memory over many invoices: does ``serve`` leak, and what bounds it (issue 12, item 11).

Run: ``.venv/bin/python benchmarks/memory.py [--invoices 10000] [--quick] [--companies 50]
[--smtp] [--postgres URL] [--phase unbounded|bounded]``

Each phase is a fresh process running the real service in-process (``bot.app.Service``:
HTTP feed, scheduler, outbox, PDF render pool) on a throwaway database (SQLite, or
PostgreSQL with ``--postgres``). Every round posts one order batch through
``POST /api/v1/orders:batch`` (``--orders`` orders per company), reads order pages
through ``GET /api/v1/orders``, makes the companies due and wakes the scheduler; the
round ends when every invoice of the round is e-mailed (``.eml`` files, or ``--smtp``:
a local aiosmtpd sink in a child process). At intervals it samples the main process's
RSS (``/proc/self/status``), what tracemalloc traces (after ``gc.collect()``) and the
tracemalloc's own overhead, each PDF worker's RSS (``/proc/<pid>/status``), and the
allocation sites that grew most since the first sample.

Phases: ``unbounded`` — workers never recycled, the heap never trimmed, glibc's default
malloc arenas; ``bounded`` — the service's defaults: workers replaced after
``bot.rendering.RENDERS_PER_WORKER`` renders, freed heap given back when the outbox
idles (``bot.allocator``); ``--arena-max N`` also sets ``MALLOC_ARENA_MAX`` there.
Without ``--phase`` both run, one after the other, each in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SELLER = {"legal_name": "Inkwell Print & Ship Ltd", "address_line1": "Unit 4", "city": "Leeds",
          "postcode": "LS10 1AB", "country": "GB", "vat_number": "GB980780684", "company_number": "08123456"}
SKUS = [("MUG-11OZ", "4.20", "1.10", "20"), ("TEE-M", "7.85", "1.60", "20"), ("KIDS-TEE", "5.10", "1.60", "0"),
        ("POSTER-A2", "3.333", "2.25", "20")]
SHIP_TO = {"name": "Jane Doe", "line1": "1 High St", "city": "Leeds", "postcode": "LS1 1AA", "country": "GB"}
# Latin, Greek and Cyrillic descriptions: the PDF fonts are subset per set of glyphs used.
DESCRIPTIONS = ["Ceramic mug, cat print", "Kubek ceramiczny — żółty", "Tasse en céramique « chat »",
                "Чашка керамическая", "Κούπα κεραμική", "T-shirt, Größe M", "Plakát A2, matný"]
TOP_SITES = 3


def rss_mb(pid: int | str = "self") -> float | None:
    """VmRSS of a process in MB, or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_free_mb() -> float | None:
    """Bytes glibc's malloc holds free in this process (``mallinfo2().fordblks``), or None off glibc ≥ 2.33.

    RSS far above what tracemalloc sees, with this high, is fragmentation: memory
    freed by Python or a C extension that the allocator keeps instead of returning.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return float(libc.mallinfo2().fordblks) / 2**20


def malloc_trim() -> bool:
    """Ask glibc to give free heap back to the system (``malloc_trim(0)``); False off glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sample:
    invoices: int
    requests: int
    rss: float
    traced: float
    overhead: float
    malloc_free: float | None
    workers: list[float]
    sites: list[str] = field(default_factory=list)


class Sampler:
    """RSS and tracemalloc at intervals; growth sites relative to the first sample."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.baseline: tracemalloc.Snapshot | None = None
        self.worker_pids_seen: set[int] = set()
        self._filters = [tracemalloc.Filter(False, tracemalloc.__file__),
                         tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
                         tracemalloc.Filter(False, "<unknown>")]

    def take(self, invoices: int, requests: int, worker_pids: list[int]) -> Sample:
        if not tracemalloc.is_tracing():  # from the first sample on: growth, not start-up
            tracemalloc.start(1)
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(self._filters)
        sites: list[str] = []
        if self.baseline is None:
            self.baseline = snapshot
        else:
            for stat in snapshot.compare_to(self.baseline, "lineno")[:TOP_SITES]:
                frame = stat.traceback[0]
                where = "/".join(Path(frame.filename).parts[-2:])
                sites.append(f"{where}:{frame.lineno} {stat.size_diff / 1024:+.0f} KB")
        traced, _peak = tracemalloc.get_traced_memory()
        self.worker_pids_seen.update(worker_pids)
        workers = [mb for mb in (rss_mb(pid) for pid in worker_pids) if mb is not None]
        overhead = tracemalloc.get_tracemalloc_memory() / 2**20
        sample = Sample(invoices, requests, rss_mb() or 0.0, traced / 2**20, overhead, malloc_free_mb(), workers,
                        sites)
        self.samples.append(sample)
        print_row(sample)
        return sample


def print_header(phase: str) -> None:
    print(f"\n{phase}: main process and PDF workers (MB). traced: allocated since the first sample and still live; "
          "tm-ovh: tracemalloc's own memory (in RSS); m-free: held free by malloc (main); growth sites since the "
          "first sample (main process)")
    print(f"{'invoices':>8} {'requests':>8} {'RSS':>6} {'traced':>6} {'tm-ovh':>6} {'m-free':>6} {'workers RSS':>14}  "
          "top growth sites", flush=True)


def print_row(s: Sample) -> None:
    workers = "/".join(f"{w:.0f}" for w in s.workers) or "-"
    free = "-" if s.malloc_free is None else f"{s.malloc_free:.1f}"
    print(f"{s.invoices:>8} {s.requests:>8} {s.rss:>6.1f} {s.traced:>6.1f} {s.overhead:>6.1f} {free:>6} "
          f"{workers:>14}  {'; '.join(s.sites)}", flush=True)


def print_summary(phase: str, sampler: Sampler) -> None:
    first, last = sampler.samples[0], sampler.samples[-1]
    peak_worker = max((w for s in sampler.samples for w in s.workers), default=0.0)
    print(f"{phase}: main RSS {first.rss:.0f} → {last.rss:.0f} MB (traced {first.traced:.1f} → {last.traced:.1f} MB), "
          f"workers {'/'.join(f'{w:.0f}' for w in first.workers)} → {'/'.join(f'{w:.0f}' for w in last.workers)} MB "
          f"(peak {peak_worker:.0f}), {len(sampler.worker_pids_seen)} worker processes used", flush=True)


async def seed(base: str, companies: int) -> tuple[str, list[str]]:
    """A tenant with seller details and a feed token; products and companies through the feed."""
    import aiohttp

    from invoicing.ingest.tokens import create_token
    from invoicing.parties.tenants import create_tenant
    from models import Integration

    tenant = await create_tenant("bench", currency="GBP")
    tenant.update_from_dict(SELLER)
    await tenant.save()
    token = (await create_token(tenant, label="memory benchmark")).token
    headers = {"Authorization": f"Bearer {token}"}
    shorts = [f"shop{n:04d}" for n in range(companies)]
    async with aiohttp.ClientSession(headers=headers) as http:
        for sku, cost, shipping, tax in SKUS:
            body = {"name": f"Product {sku}",
                    "prices": [{"retailer": None, "cost_price": cost, "shipping": shipping, "tax_rate": tax}]}
            async with http.put(f"{base}/products/{sku}", json=body) as response:
                assert response.status in (200, 201), await response.text()
        for n, short in enumerate(shorts):
            body = {"name": f"Shop {n}", "country": "GB", "currency": "GBP", "timezone": "Europe/London",
                    "accounting": {"legal_name": f"Shop {n} Ltd", "address_line1": f"{n} Market Street",
                                   "city": "Manchester", "postcode": "M1 1AE", "email": f"ap@shop{n}.example"}}
            async with http.put(f"{base}/companies/{short}", json=body) as response:
                assert response.status in (200, 201), await response.text()
    await Integration.filter(company__tenant_id=tenant.id).update(enabled=True, schedule="weekly")
    return token, shorts


async def run_phase(args: argparse.Namespace) -> None:
    import aiohttp

    from bot.app import Service
    from bot.db import database_url_with_name, postgres_admin
    from bot.rendering import RenderPool
    from bot.settings import Settings
    from models import Delivery, DeliveryStatus, Integration, InvoiceRun

    folder = Path(tempfile.mkdtemp(prefix="invoicebot-memory-"))
    pg_name = f"invoicebot_mem_{uuid.uuid4().hex[:8]}" if args.postgres else ""
    if args.postgres:
        await postgres_admin(args.postgres, f'CREATE DATABASE "{pg_name}"')
    url = database_url_with_name(args.postgres, pg_name) if args.postgres else f"sqlite://{folder / 'memory.db'}"
    sink: subprocess.Popen[str] | None = None
    smtp: dict[str, Any] = {}
    if args.smtp:
        sink = subprocess.Popen([sys.executable, str(Path(__file__).with_name("smtp.py")), "--sink"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert sink.stdout is not None
        smtp = {"smtp_host": "127.0.0.1", "smtp_port": int(sink.stdout.readline()), "smtp_security": "none"}
    settings = Settings(_env_file=None, invoicebot_data_dir=folder, database_url=url, host="127.0.0.1",
                        port=free_port(), mail_from="invoices@inkwell.example", **smtp)
    service = Service(settings)
    if args.phase == "unbounded":
        service.renderer.renders_per_worker = None
        service.trimmer.interval = math.inf
    assert isinstance(service.renderer, RenderPool)
    await service.start()
    base = f"http://127.0.0.1:{service.port}/api/v1"
    sampler = Sampler()
    print_header(args.phase)
    requests = 0
    try:
        token, shorts = await seed(base, args.companies)
        outbox = settings.resolved_outbox_dir()
        every = max(args.companies, args.invoices // args.samples)
        next_sample = args.companies  # after one round: workers started, caches warm
        done = rounds = 0
        started = time.monotonic()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            while done < args.invoices:
                if done >= next_sample:
                    sampler.take(done, requests, service.renderer.worker_pids())
                    next_sample += every
                rounds += 1
                round_start = time.monotonic()
                batch = shorts[:min(len(shorts), args.invoices - done)]
                dispatched = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
                orders = [{"company": short, "ref": f"SO-{rounds}-{n}-{k}", "status": "dispatched",
                           "dispatched_at": dispatched, "on_hold": False, "error": None, "ship_to": SHIP_TO,
                           "items": [{"sku": SKUS[(n + k) % len(SKUS)][0], "quantity": 1 + k % 3,
                                      "description": f"{DESCRIPTIONS[(rounds + n + k) % len(DESCRIPTIONS)]} {k}"}]}
                          for n, short in enumerate(batch) for k in range(args.big if n == 0 else args.orders)]
                for start in range(0, len(orders), 1000):
                    async with http.post(f"{base}/orders:batch", json={"orders": orders[start:start + 1000]}) as r:
                        assert r.status == 200, await r.text()
                    requests += 1
                for n in range(args.reads):
                    params = {"company": batch[n % len(batch)], "invoiced": "true", "limit": "100"}
                    async with http.get(f"{base}/orders", params=params) as r:
                        assert r.status == 200, await r.text()
                    requests += 1
                await Integration.filter(company__short_name__in=batch).update(next_run_at=datetime.now(UTC))
                service.scheduler.wake()
                target = done + len(batch)
                deadline = time.monotonic() + 120
                posted = time.monotonic()
                while await Delivery.filter(status=DeliveryStatus.SENT).count() < target:
                    assert time.monotonic() < deadline, f"round {rounds}: invoices not all e-mailed in 120 s"
                    await asyncio.sleep(0.02)
                if args.verbose:
                    runs = await InvoiceRun.all().count()
                    print(f"round {rounds}: fed {posted - round_start:.2f} s, sent {time.monotonic() - posted:.2f} s, "
                          f"runs {runs}", flush=True)
                done = target
                for path in outbox.glob("*"):  # keep the disk small; the files are not the point
                    path.unlink(missing_ok=True)
        sampler.take(done, requests, service.renderer.worker_pids())
        seconds = time.monotonic() - started
        before = rss_mb() or 0.0
        if malloc_trim():  # how much of the RSS was freed memory the allocator kept
            print(f"{args.phase}: malloc_trim(0) at the end: main RSS {before:.1f} → {rss_mb() or 0.0:.1f} MB",
                  flush=True)
    finally:
        await service.stop()
        if sink is not None and sink.stdin is not None:
            sink.stdin.close()
            sink.wait(timeout=30)
        if args.postgres:
            await postgres_admin(args.postgres, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    arena = os.environ.get("MALLOC_ARENA_MAX", "default")
    recycled = "never" if args.phase == "unbounded" else RenderPool().renders_per_worker
    trim = "never" if args.phase == "unbounded" else f"at most every {service.trimmer.interval:.0f} s"
    print(f"{args.phase}: {done} invoices (one of {args.big} lines per round), {requests} feed requests in "
          f"{seconds:.0f} s ({done / seconds:.1f} invoices/s); workers recycled after: {recycled} renders; "
          f"heap trimmed: {trim}; MALLOC_ARENA_MAX={arena}", flush=True)
    print_summary(args.phase, sampler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 invoices")
    parser.add_argument("--companies", type=int, default=50, help="invoices per round")
    parser.add_argument("--orders", type=int, default=3, help="orders per invoice")
    parser.add_argument("--big", type=int, default=200, help="lines of one invoice per round")
    parser.add_argument("--reads", type=int, default=20, help="GET /orders requests per round")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--smtp", action="store_true", help="send to a local aiosmtpd sink instead of .eml files")
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server (default: SQLite)")
    parser.add_argument("--phase", choices=["unbounded", "bounded"])
    parser.add_argument("--verbose", action="store_true", help="one line per round")
    parser.add_argument("--arena-max", default="", help="MALLOC_ARENA_MAX for the bounded phase's processes")
    args = parser.parse_args()
    if args.quick:
        args.invoices = min(args.invoices, 1_000)
    if args.phase:
        import logging

        logging.basicConfig(level=logging.ERROR)
        asyncio.run(run_phase(args))
        return
    forwarded = [a for a in sys.argv[1:] if a != "--arena-max" and a != args.arena_max]
    for phase in ("unbounded", "bounded"):
        env = dict(os.environ)
        if phase == "bounded" and args.arena_max:
            env["MALLOC_ARENA_MAX"] = args.arena_max
        subprocess.run([sys.executable, __file__, *forwarded, "--phase", phase], env=env, check=True)


if __name__ == "__main__":
    main()
