"""The Sunday-midnight burst: every company due in the same minute, end to end, while Slack and the feed are used.

Run: ``.venv/bin/python benchmarks/burst.py [--postgres URL] [--pg-sizes 1000,5000,10000] [--sqlite-sizes 2000]``
(PostgreSQL when ``--postgres`` or ``INVOICEBOT_TEST_POSTGRES_URL`` is given; the URL must allow
``CREATE DATABASE`` — a scratch database per size is created and dropped).

For each size: a fresh database with one tenant and N companies × 20 dispatched orders (one
company made with the real API, the others cloned from it with set-based SQL), every PDF
Emailer due at one slot. Then three processes besides this one:

* ``invoicebot serve`` itself (``python -m bot serve``: scheduler, outbox, render pool, notice
  worker, bolt over HTTP, the feed) — the process whose RSS and CPU are read from ``/proc``
  (CPU includes its render workers); with ``BURST_WORKERS=N`` instead one ``serve --role web``
  and N ``serve --role worker`` (``BURST_WORKER_NICE=n`` runs the workers under ``nice -n``),
  CPU summed over them all, RSS the largest;
* an aiosmtpd sink (``--sink``) that notes when it accepted each message;
* a client (``--client``) hosting the fake Slack Web API, sending 20 signed ``/invoicing``
  commands per second (timing each ack) and upserting orders through the feed as fast as
  4 connections allow (counting them).

Printed per size: seconds from the slot to the last invoice issued and to the last e-mail
accepted; invoices/s (issued + rendered + accepted); peak RSS of ``serve``; CPU seconds per
invoice, in all and by party (each ``serve`` role, the render workers, PostgreSQL, and the
harness: sink and client, which a real deployment does not run on its cores); ack p50/p99 during
the burst; feed upserts/s during the burst; and finally how the time grows with N. Targets
(2 cores): ≥ 100 invoices/s on PostgreSQL, ≥ 60/s on SQLite, ack p99 < 100 ms, RSS ≤ 250 MB,
10k companies ≤ 11× the 1k time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from tortoise import connections

from benchmarks.burst_world import seed_world
from benchmarks.smtp import free_port
from bot.db import database, database_url_with_name, postgres_admin
from models import Delivery, DeliveryStatus, Integration, IntegrationKind, Invoice
from tests.bot.slack_harness import SIGNING_SECRET, sign

TARGET_PG, TARGET_SQLITE, ACK_P99_MS, RSS_MB, LINEAR = 100.0, 60.0, 100.0, 250.0, 11.0
ORDERS = 20
COMMANDS_PER_SECOND = float(os.environ.get("BURST_COMMANDS_PER_SECOND", "20"))
#: The feed's offered load during the burst: single-order PUTs per second (an order system's steady trickle),
#: 0 = none. An offered rate, not "as fast as possible", so invoices/s is not traded against a load we chose.
UPSERTS_PER_SECOND = float(os.environ.get("BURST_UPSERTS_PER_SECOND", "50"))
KEEP_DATABASE = os.environ.get("BURST_KEEP_DATABASE", "") not in ("", "0")  # PostgreSQL: keep it to look into
KEEP_LOG = os.environ.get("BURST_KEEP_LOG", "")  # a folder: keep serve's log there (burst-<backend>-<N>.log)
PROFILE = os.environ.get("BURST_PROFILE", "")  # a path: profile serve (cProfile) into it
TIMELINE = os.environ.get("BURST_TIMELINE", "") not in ("", "0")  # print issued / accepted each second
#: 0: one ``serve`` (role all) does everything, the default deployment. N ≥ 1: one ``serve --role web``
#: takes the commands and the feed while N ``serve --role worker`` run the burst (PostgreSQL only).
WORKERS = int(os.environ.get("BURST_WORKERS", "0"))
#: The workers' niceness (``nice -n``): the burst yields the CPU to the web replica's acks (README, Capacity).
WORKER_NICE = int(os.environ.get("BURST_WORKER_NICE", "0"))
LANES = 4  # feed connections
LEAD_SECONDS = 15  # the slot is this far after `serve` is started (it is up within a few seconds)


# --- the sink -------------------------------------------------------------------------------------


def sink_main() -> None:
    """``--sink``: print the port; for each stdin line print ``<accepted> <wall time of the last one>``."""
    from aiosmtpd.controller import Controller

    class Counting:
        accepted = 0
        last = 0.0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Counting.accepted += 1
            Counting.last = time.time()
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=free_port(), data_size_limit=0)
    controller.start()
    print(controller.port, flush=True)
    for _ in sys.stdin:
        print(f"{Counting.accepted} {Counting.last}", flush=True)
    controller.stop()


# --- the client: fake Slack Web API, commands at a fixed rate, feed upserts ------------------------


async def client_main() -> None:
    """``--client``: prints ``api=<url>``; reads ``<events url> <feed url> <token>``; on ``stop`` prints JSON."""
    from urllib.parse import urlencode

    from tests.fakes.slack_api import FakeSlack

    fake = await FakeSlack(admins={"UOPS"}).start(0)
    print(f"api={fake.api_url}", flush=True)
    loop = asyncio.get_running_loop()
    events, feed, token = (await loop.run_in_executor(None, sys.stdin.readline)).split()
    stopping = asyncio.Event()
    acks: list[tuple[float, float]] = []  # (wall time sent, ms to the HTTP answer)
    upserts: list[float] = []  # wall times of accepted upserts

    async def command(session: aiohttp.ClientSession, n: int) -> None:
        body = urlencode({"team_id": "T1", "channel_id": "COPS", "channel_name": "ops", "user_id": "UOPS",
                          "command": "/invoicing", "text": "schedule" if n % 2 else "deliveries",
                          "response_url": fake.response_url(), "trigger_id": f"1.{n}.burst"})
        ts = int(time.time())
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": sign(body, ts, SIGNING_SECRET)}
        sent, started = time.time(), time.perf_counter()
        try:
            async with session.post(events, data=body.encode(), headers=headers) as r:
                await r.read()
        except aiohttp.ClientError:
            return
        if r.status == 200:
            acks.append((sent, (time.perf_counter() - started) * 1000))

    async def commands(session: aiohttp.ClientSession) -> None:
        n, tasks = 0, set()
        start = time.perf_counter()
        while not stopping.is_set() and COMMANDS_PER_SECOND > 0:
            n += 1
            task = asyncio.create_task(command(session, n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(0.0, start + n / COMMANDS_PER_SECOND - time.perf_counter()))
        await asyncio.gather(*tasks, return_exceptions=True)

    async def upserter(session: aiohttp.ClientSession, lane: int) -> None:
        n = 0
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        start = time.perf_counter()
        while not stopping.is_set() and UPSERTS_PER_SECOND > 0:
            n += 1
            await asyncio.sleep(max(0.0, start + n * LANES / UPSERTS_PER_SECOND - time.perf_counter()))
            moment = datetime.now(UTC).isoformat()
            order = {"items": [{"sku": "MUG", "quantity": 1}], "status": "received", "dispatched_at": None,
                     "on_hold": False, "error": None, "updated_at": moment,
                     "ship_to": {"name": "Jo", "line1": "1 High St", "city": "Leeds", "postcode": "LS1 1AA",
                                 "country": "GB"}}
            try:
                async with session.put(f"{feed}/orders/shop1/LIVE-{lane}-{n}", data=json.dumps(order),
                                       headers=headers) as r:
                    await r.read()
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
                continue
            if r.status in (200, 201):
                upserts.append(time.time())

    async def control() -> None:
        await loop.run_in_executor(None, sys.stdin.readline)
        stopping.set()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        await asyncio.gather(control(), commands(session), *(upserter(session, k) for k in range(LANES)))
    print(json.dumps({"acks": acks, "upserts": upserts}), flush=True)
    await fake.stop()


# --- one burst --------------------------------------------------------------------------------------


@dataclass
class Burst:
    backend: str
    companies: int
    to_issued: float
    to_accepted: float
    rss_mb: float
    cpu_per_invoice_ms: float
    ack_p50: float
    ack_p99: float
    acks: int
    upserts_per_s: float
    seq_reads: dict[str, int]  # PostgreSQL: rows read by sequential scans during the burst, per table
    cpu_split: dict[str, float]  # ms of CPU per invoice by party: serve's roles, render workers, database, harness

    @property
    def rate(self) -> float:
        return self.companies / self.to_accepted


def _proc_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live children (the render workers), from /proc."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return sum(_own_cpu(p) for p in pids)


def _own_cpu(pid: int, *, reaped_children: bool = True) -> float:
    """CPU seconds of ``pid`` (and of its children that ended, unless told not to), from /proc; 0 when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15 if reaped_children else 13]) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine (the benchmark's server runs here)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                total += _own_cpu(int(pid))
        except OSError:
            continue
    return total


def _cpu_by_party(processes: list[subprocess.Popen[str]], roles: list[str],
                  harness: list[subprocess.Popen[str]]) -> dict[str, float]:  # fmt: skip
    """CPU seconds so far of each party of the burst: serve by role, the render workers, PostgreSQL, the harness."""
    parties: dict[str, float] = {}
    for proc, role in zip(processes, roles, strict=True):
        own = _own_cpu(proc.pid, reaped_children=False)  # a render worker replaced after its renders is reaped
        parties[f"serve {role}"] = parties.get(f"serve {role}", 0.0) + own
        parties["render workers"] = parties.get("render workers", 0.0) + _proc_cpu(proc.pid) - own
    parties["PostgreSQL"] = postgres_cpu()
    parties["sink + Slack/feed client"] = sum(_proc_cpu(p.pid) for p in harness)
    return parties


def _rss_peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _seq_reads() -> dict[str, int]:
    """PostgreSQL's count of rows read by sequential scans, per table (a scan that grows with history shows here).
    Each statement outside a transaction reads the counters afresh: no snapshot to clear."""
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        return {}
    rows = await conn.execute_query_dict("SELECT relname, seq_tup_read FROM pg_stat_user_tables")
    return {row["relname"]: int(row["seq_tup_read"] or 0) for row in rows}


async def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("invoicebot serve exited during start-up")
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("invoicebot serve did not become healthy within 30 s")


async def burst(url: str, backend: str, companies: int, folder: Path) -> Burst:
    here = Path(__file__)
    started = time.perf_counter()
    async with database(url):
        token = await seed_world(companies, ORDERS)
        print(f"  seeded {companies:,} companies × {ORDERS} orders in {time.perf_counter() - started:.1f} s")
    sink = subprocess.Popen([sys.executable, str(here), "--sink"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    peer = subprocess.Popen([sys.executable, str(here), "--client"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert sink.stdout and sink.stdin and peer.stdout and peer.stdin
    smtp_port = int(sink.stdout.readline())
    api = peer.stdout.readline().strip().removeprefix("api=")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port), "SLACK_API_URL": api,
           "SLACK_BOT_TOKEN": "xoxb-burst", "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port), "SMTP_SECURITY": "none", "MAIL_FROM": "invoices@inkwell.example",
           "INVOICEBOT_DATA_DIR": str(folder / "data"), "OUTBOX_DIR": ""}
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_SECONDS)
    async with database(url):
        await Integration.filter(kind=IntegrationKind.PDF_EMAILER).update(enabled=True, next_run_at=slot)
        reads_before = await _seq_reads()
    # A file, not a pipe: nobody reads a pipe during the burst, and a full one blocks serve.
    log_path = folder / "serve.log"
    serve_log = log_path.open("w")
    roles = ["all"] if WORKERS < 1 else ["web"] + ["worker"] * WORKERS
    processes: list[subprocess.Popen[str]] = []
    for k, role in enumerate(roles):
        command = [sys.executable, "-m", "bot", "serve", "--role", role]
        if role == "worker" and WORKER_NICE:
            command = ["nice", "-n", str(WORKER_NICE), *command]
        if PROFILE and role != "web":  # serve under cProfile (written when it stops on SIGTERM); read with pstats
            command = [sys.executable, "-c", f"import cProfile, runpy, sys; sys.argv = ['bot', 'serve', '--role', "
                       f"{role!r}]; cProfile.run('runpy.run_module(\"bot\", run_name=\"__main__\")', "
                       f"{PROFILE + (str(k) if k else '')!r})"]
        processes.append(subprocess.Popen(command, env={**env, "PORT": str(port if k == 0 else free_port())},
                                          stdout=subprocess.DEVNULL, stderr=serve_log, text=True))
    serve = processes[0]

    def sink_stat() -> tuple[int, float]:
        assert sink.stdin and sink.stdout
        sink.stdin.write("?\n")
        sink.stdin.flush()
        count, last = sink.stdout.readline().split()
        return int(count), float(last)

    try:
        base = f"http://127.0.0.1:{port}"
        await _wait_healthy(f"{base}/healthz", serve)
        peer.stdin.write(f"{base}/slack/events {base}/api/v1 {token}\n")
        peer.stdin.flush()
        await asyncio.sleep(max(0.0, slot.timestamp() - time.time() - 0.05))
        cpu_at_slot = sum(_proc_cpu(p.pid) for p in processes)
        parties_at_slot = _cpu_by_party(processes, roles, [sink, peer])
        deadline = time.time() + 1800
        async with database(url):
            tick = 0
            while (accepted := (await asyncio.to_thread(sink_stat))[0]) < companies:
                if any(p.poll() is not None for p in processes) or time.time() > deadline:
                    raise RuntimeError("the burst did not finish (serve exited or 30 minutes passed)")
                await asyncio.sleep(0.25)
                tick += 1
                if TIMELINE and tick % 4 == 0:
                    print(f"    +{time.time() - slot.timestamp():5.1f} s: {await Invoice.all().count():6d} issued, "
                          f"{accepted:6d} accepted", flush=True)
            cpu = sum(_proc_cpu(p.pid) for p in processes) - cpu_at_slot
            split = {party: (seconds - parties_at_slot.get(party, 0.0)) * 1000 / companies
                     for party, seconds in _cpu_by_party(processes, roles, [sink, peer]).items()}  # fmt: skip
            accepted_at = (await asyncio.to_thread(sink_stat))[1]
            last_issued = max(await Invoice.all().values_list("issued_at", flat=True))
            sent = await Delivery.filter(status=DeliveryStatus.SENT).count()
            await asyncio.sleep(1.0)  # backends report their counters at transaction end, at most once a second
            reads = {t: n - reads_before.get(t, 0) for t, n in (await _seq_reads()).items()}
        rss = max(_rss_peak_mb(p.pid) for p in processes)
        peer.stdin.write("stop\n")
        peer.stdin.flush()
        samples = json.loads(await asyncio.to_thread(peer.stdout.readline))
    except BaseException:
        print("  serve's last log lines:\n" + "\n".join(log_path.read_text().splitlines()[-20:]), file=sys.stderr)
        raise
    finally:
        for proc in processes:
            proc.terminate()
            proc.wait(timeout=60)
        serve_log.close()
        if KEEP_LOG:
            kept = Path(KEEP_LOG) / f"burst-{backend}-{companies}.log"
            kept.write_bytes(log_path.read_bytes())
            print(f"  serve's log kept at {kept}")
        for child in (peer, sink):
            if child.stdin:
                child.stdin.close()
            child.wait(timeout=60)
    window = (slot.timestamp(), accepted_at)
    acks = [ms for sent_at, ms in samples["acks"] if window[0] <= sent_at <= window[1]]
    upserts = [t for t in samples["upserts"] if window[0] <= t <= window[1]]
    seconds = accepted_at - slot.timestamp()
    assert sent >= companies - 5, f"only {sent} deliveries recorded sent"
    return Burst(backend, companies, last_issued.timestamp() - slot.timestamp(), seconds, rss,
                 cpu * 1000 / companies, statistics.median(acks) if acks else float("nan"), _pct(acks, 0.99),
                 len(acks), len(upserts) / seconds if seconds > 0 else 0.0, reads, split)


def report(b: Burst) -> bool:
    target = TARGET_PG if b.backend == "PostgreSQL" else TARGET_SQLITE
    ok = b.rate >= target and b.ack_p99 < ACK_P99_MS and b.rss_mb <= RSS_MB
    print(f"  {b.backend} {b.companies:,} companies: last invoice issued {b.to_issued:.1f} s after the slot, "
          f"last e-mail accepted {b.to_accepted:.1f} s → {b.rate:.1f} invoices/s (target ≥ {target:.0f})")
    print(f"    serve peak RSS {b.rss_mb:.0f} MB (≤ {RSS_MB:.0f}); CPU {b.cpu_per_invoice_ms:.1f} ms per invoice; "
          f"Slack ack p50 {b.ack_p50:.1f} ms, p99 {b.ack_p99:.1f} ms over {b.acks} commands (< {ACK_P99_MS:.0f}); "
          f"feed {b.upserts_per_s:.0f} upserts/s → {'targets met' if ok else 'target missed'}")
    print("    CPU ms per invoice by party (the load's share included): "
          + ", ".join(f"{party} {ms:.1f}" for party, ms in b.cpu_split.items())
          + f"; all {sum(b.cpu_split.values()):.1f}")
    heavy = sorted(((n / b.companies, t) for t, n in b.seq_reads.items() if n >= b.companies), reverse=True)
    if b.seq_reads:
        print("    rows read by sequential scans per invoice: "
              + (", ".join(f"{t} {per:,.0f}" for per, t in heavy[:5]) or "none ≥ 1 (every hot query uses an index)"))
    return ok


async def run_sizes(backend: str, sizes: list[int], postgres: str | None) -> list[Burst]:
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            if backend == "SQLite":
                results.append(await burst(f"sqlite://{Path(folder) / 'burst.db'}", backend, size, Path(folder)))
            else:
                assert postgres
                name = f"invoicebot_burst_{uuid.uuid4().hex[:8]}"
                await postgres_admin(postgres, f'CREATE DATABASE "{name}"')
                try:
                    results.append(await burst(database_url_with_name(postgres, name), backend, size, Path(folder)))
                finally:
                    if KEEP_DATABASE:
                        print(f"  kept database {name} (BURST_KEEP_DATABASE)")
                    else:
                        await postgres_admin(postgres, f'DROP DATABASE "{name}" WITH (FORCE)')
        report(results[-1])
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = last.to_accepted / first.to_accepted
        scale = last.companies / first.companies
        bound = LINEAR * scale / 10
        print(f"  {backend} growth: " + ", ".join(f"{b.companies:,} → {b.to_accepted:.1f} s" for b in results)
              + f"; {last.companies:,} takes {growth:.1f}× the {first.companies:,} time for {scale:.0f}× the "
              f"companies (≤ {bound:.1f}×: {'linear' if growth <= bound else 'NOT linear'})")
    return results


async def main(postgres: str | None, pg_sizes: list[int], sqlite_sizes: list[int]) -> None:
    if sqlite_sizes:
        print("SQLite (embedded default):")
        await run_sizes("SQLite", sqlite_sizes, None)
    if postgres and pg_sizes:
        print("PostgreSQL:")
        await run_sizes("PostgreSQL", pg_sizes, postgres)
    elif pg_sizes:
        print("PostgreSQL: skipped (give --postgres URL or set INVOICEBOT_TEST_POSTGRES_URL)")


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("INVOICEBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--pg-sizes", type=_sizes, default=[1000, 5000, 10000])
    parser.add_argument("--sqlite-sizes", type=_sizes, default=[2000])
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink_main()
    elif args.client:
        asyncio.run(client_main())
    else:
        asyncio.run(main(args.postgres, args.pg_sizes, args.sqlite_sizes))
