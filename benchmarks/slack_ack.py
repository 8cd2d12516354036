"""How fast Slack gets its acknowledgement, with 100k orders in the database.

Run: ``.venv/bin/python benchmarks/slack_ack.py [--orders 100000] [--requests 300]``

Sends signed ``/invoicing orders acme invoiced page=2`` requests to the real bolt app
over HTTP and times request → HTTP response (the ack Slack waits for; the listing
itself follows via ``response_url``, which is also waited for so requests do not pile
up). Beside it, a bare aiohttp handler on the same server, same client, same run.
Targets: p99 < 50 ms and ≤ 10× the bare handler. Then ``invoicebot serve`` is started
as a real process and its idle RSS is read (target ≤ 120 MB).

**Under load** (``--companies 500``; 0 skips it): ``bot.app.Service`` itself (bolt over HTTP,
scheduler, 2-process render pool, outbox → aiosmtpd sink in a child process, notice worker)
on SQLite, plus a bare route ``/bare`` on the same web app. A client process (also hosting
the fake Slack Web API) alternates a signed ``/invoicing schedule|deliveries`` (waiting for
its ``response_url`` answer) and a bare request: ``--idle`` seconds with nothing due, then
all 500 PDF Emailers due at once until every invoice is e-mailed. Targets: ack p99 < 100 ms
and ≤ 20× the bare handler's p99 in the same phase.

**CPU per request of a web replica** (``--web-cpu [--postgres URL]``; alone, skipping the above):
``invoicebot serve --role web`` as a real process on a fresh database seeded by
``benchmarks/burst_world.seed_world`` (``--world-companies``, default 1,000 × 20 orders, every PDF
Emailer enabled; the first ``--queued`` companies invoiced, so their e-mails and Slack notices wait
for a worker as during a burst). This process hosts the fake Slack Web API and sends, one at a
time, ``--cpu-requests`` of each: ``GET /healthz`` (the HTTP floor), ``/invoicing help run`` (a
command that reads nothing but its tenant: the Slack floor), ``/invoicing schedule``,
``/invoicing deliveries`` (each command waited for until its ``response_url`` answer arrived) and
a single-order ``PUT /api/v1/orders/shop1/…`` creating an order. Printed: the serve process's own
CPU (utime + stime from ``/proc``: the machine may be busy, wall time would count that) per
request, minus its idle CPU over as long. ``--only schedule,PUT`` keeps the requests whose name
has one of the words; ``--profile PATH`` runs serve under cProfile (CPU time) and writes its stats.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from bot.db import database
from models import Order, OrderStatus
from tests import factories as f
from tests.bot.slack_harness import SIGNING_SECRET, sign, start_harness, stop_harness

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def seed(count: int) -> None:
    tenant = await f.tenant(team="T1")
    company = await f.company(tenant, "acme")
    rows = [Order(company_id=company.id, external_ref=f"SO-{n:07d}", status=OrderStatus.DISPATCHED,
                  dispatched_at=NOW - timedelta(minutes=n)) for n in range(count)]
    await Order.bulk_create(rows, batch_size=5000)


async def measure_ack(requests: int) -> tuple[list[float], list[float]]:
    harness = await start_harness()
    bare_app = web.Application()

    async def bare(_: web.Request) -> web.Response:
        return web.Response(text="")

    bare_app.router.add_post("/bare", bare)
    runner = web.AppRunner(bare_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    bare_url = f"http://127.0.0.1:{runner.addresses[0][1]}/bare"
    ack: list[float] = []
    plain: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(requests + 20):
                before = len(harness.fake.received("response_url"))
                started = time.perf_counter()
                response = await harness.command("orders acme invoiced page=2" if i % 2 else "orders acme page=3")
                elapsed = time.perf_counter() - started
                assert response.status == 200
                await harness.fake.wait_for("response_url", before + 1)
                started = time.perf_counter()
                async with session.post(bare_url, data=b"x") as r:
                    await r.read()
                bare_elapsed = time.perf_counter() - started
                if i >= 20:  # warm-up
                    ack.append(elapsed * 1000)
                    plain.append(bare_elapsed * 1000)
    finally:
        await runner.cleanup()
        await stop_harness(harness)
    return ack, plain


def idle_rss(folder: Path) -> float:
    env = {**os.environ, "INVOICEBOT_DATA_DIR": str(folder), "DATABASE_URL": "", "PORT": "38417",
           "HOST": "127.0.0.1", "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench",
           "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        import urllib.request

        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:38417/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(3)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
        return kb / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- under load: a 500-company scheduled run rendering and sending ------------------------------

ACK_TARGET_MS, RATIO_TARGET = 100.0, 20.0


async def client(api_port: int) -> None:
    """``--client``: fake Slack + timing client. Prints ``api=<url>``; reads ``<events url> <bare url>``,
    then ``phase <name>`` lines; on ``stop`` prints the samples as JSON (phase, ack ms, bare ms)."""
    from urllib.parse import urlencode

    from tests.fakes.slack_api import FakeSlack

    fake = await FakeSlack(admins={"UOPS"}).start(api_port)
    print(f"api={fake.api_url}", flush=True)
    loop = asyncio.get_running_loop()
    events, bare = (await loop.run_in_executor(None, sys.stdin.readline)).split()
    state = {"phase": "warmup"}
    samples: list[tuple[str, float, float]] = []

    async def control() -> None:
        while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) != "stop" and line:
            state["phase"] = line.removeprefix("phase ")
        state["phase"] = "stop"

    controller = asyncio.create_task(control())
    async with aiohttp.ClientSession() as session:
        n = 0
        while state["phase"] != "stop":
            n += 1
            phase = state["phase"]
            body = urlencode({"team_id": "T1", "channel_id": "COPS", "channel_name": "ops", "user_id": "UOPS",
                              "command": "/invoicing", "text": "schedule" if n % 2 else "deliveries",
                              "response_url": fake.response_url(), "trigger_id": f"1.{n}.bench"})
            ts = int(time.time())
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
                       "X-Slack-Signature": sign(body, ts, SIGNING_SECRET)}
            before = len(fake.received("response_url"))
            started = time.perf_counter()
            async with session.post(events, data=body.encode(), headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            ack = time.perf_counter() - started
            try:
                await fake.wait_for("response_url", before + 1, timeout=60)
            except TimeoutError:  # counted as an ack all the same; the reply is not what is timed
                print(f"no reply to request {n} within 60 s", file=sys.stderr)
            started = time.perf_counter()
            async with session.post(bare, data=b"x") as r:
                await r.read()
            samples.append((phase, ack * 1000, (time.perf_counter() - started) * 1000))
    await controller
    print(json.dumps(samples), flush=True)
    await fake.stop()


async def seed_load(url: str, companies: int) -> None:
    from benchmarks.e2e import seed as seed_world
    from models import Company, Integration, Tenant

    async with database(url):
        tenant = await seed_world(companies, 20)
        await Tenant.filter(id=tenant.id).update(slack_team_id="T1")
        await Order.all().update(dispatched_at=datetime.now(UTC) - timedelta(hours=2))
        for c in await Company.filter(tenant_id=tenant.id):  # each its own channel (1 post/s pacing)
            await Company.filter(id=c.id).update(slack_channel=f"C{c.id:06d}")
        await Integration.all().update(enabled=True, schedule="weekly",
                                       next_run_at=datetime.now(UTC) + timedelta(days=3))


def stats(samples: list[list], phase: str) -> tuple[float, float, float, float, int]:
    ack = [a for p, a, _ in samples if p == phase]
    bare = [b for p, _, b in samples if p == phase]
    return statistics.median(ack), pct(ack, 0.99), statistics.median(bare), pct(bare, 0.99), len(ack)


async def measure_under_load(folder: Path, companies: int, idle: float) -> bool:
    from benchmarks.smtp import free_port
    from bot.app import Service
    from bot.settings import Settings
    from models import Delivery, DeliveryStatus, Integration

    url = f"sqlite://{folder / 'load.db'}"
    started = time.perf_counter()
    await seed_load(url, companies)
    print(f"seeded {companies} companies × 20 orders in {time.perf_counter() - started:.1f} s (SQLite)")
    here = Path(__file__)
    sink = subprocess.Popen([sys.executable, str(here.with_name("smtp.py")), "--sink"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    peer = subprocess.Popen([sys.executable, str(here), "--client"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert sink.stdout and sink.stdin and peer.stdout and peer.stdin
    smtp_port = int(sink.stdout.readline())
    api = peer.stdout.readline().strip().removeprefix("api=")
    settings = Settings(database_url=url, host="127.0.0.1", port=free_port(), slack_api_url=api,
                        slack_bot_token="xoxb-bench", slack_signing_secret=SIGNING_SECRET,  # type: ignore[arg-type]
                        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none",
                        mail_from="invoices@inkwell.example", _env_file=None)  # type: ignore[call-arg]
    service = Service(settings)

    async def bare(_: web.Request) -> web.Response:
        return web.Response(text="")

    service.web_app.router.add_post("/bare", bare)
    await service.start()
    try:
        base = f"http://127.0.0.1:{service.port}"
        tell = peer.stdin

        def say(line: str) -> None:
            tell.write(line + "\n")
            tell.flush()

        say(f"{base}/slack/events {base}/bare")
        await asyncio.sleep(3)  # warm-up: connections, first queries
        say("phase idle")
        await asyncio.sleep(idle)
        say("phase run")
        run_started = time.perf_counter()
        await Integration.all().update(next_run_at=datetime.now(UTC) - timedelta(seconds=30))
        service.scheduler.wake()
        while await Delivery.filter(status=DeliveryStatus.SENT).count() < companies:
            await asyncio.sleep(0.5)
            if time.perf_counter() - run_started > 900:
                raise RuntimeError("the scheduled run did not finish within 15 minutes")
        run_seconds = time.perf_counter() - run_started
        say("stop")
        samples = json.loads(await asyncio.to_thread(peer.stdout.readline))
    finally:
        await service.stop()
        peer.stdin.close()
        peer.wait(timeout=30)
        sink.stdin.close()
        sink.wait(timeout=30)
    print(f"scheduled run of {companies} companies: all invoices issued, rendered and e-mailed in {run_seconds:.1f} s")
    ok = True
    for phase in ("idle", "run"):
        p50, p99, b50, b99, n = stats(samples, phase)
        ratio = p99 / b99
        met = p99 < ACK_TARGET_MS and ratio <= RATIO_TARGET
        ok = ok and (met or phase == "idle")
        print(f"[{phase:4s}] {n} acks: p50 {p50:.2f} ms, p99 {p99:.2f} ms; bare handler p50 {b50:.2f} ms, "
              f"p99 {b99:.2f} ms; ratio p99 {ratio:.1f}×" + (f" → {'PASS' if met else 'FAIL'} (p99 < "
              f"{ACK_TARGET_MS:.0f} ms and ≤ {RATIO_TARGET:.0f}×)" if phase == "run" else ""))
    return ok


# --- CPU per request of a web replica ----------------------------------------------------------------


def _cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _seed_web_world(url: str, companies: int, queued: int) -> str:
    """The burst world with every PDF Emailer enabled (not due) and ``queued`` companies invoiced;
    returns a feed token."""
    from benchmarks.burst_world import seed_world
    from invoicing.integrations.pdf_emailer.run import run_company
    from models import Company, Integration, IntegrationKind, RunTrigger, Tenant

    async with database(url):
        token = await seed_world(companies, 20)
        await Integration.filter(kind=IntegrationKind.PDF_EMAILER).update(
            enabled=True, next_run_at=datetime.now(UTC) + timedelta(days=3))
        tenant = await Tenant.get(slack_team_id="T1")
        for company in await Company.filter(tenant_id=tenant.id).order_by("id").limit(queued):
            await run_company(tenant, company, trigger=RunTrigger.MANUAL, actor="bench")
    return token


async def _web_cpu(url: str, companies: int, queued: int, requests: int, folder: Path, profile: str,
                   only: list[str]) -> None:
    from urllib.parse import urlencode

    from benchmarks.smtp import free_port
    from tests.fakes.slack_api import FakeSlack

    started = time.perf_counter()
    token = await _seed_web_world(url, companies, queued)
    print(f"seeded {companies:,} companies × 20 orders, {queued} invoiced in {time.perf_counter() - started:.1f} s")
    fake = await FakeSlack(admins={"UOPS"}).start(0)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port), "SLACK_API_URL": fake.api_url,
           "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "INVOICEBOT_DATA_DIR": str(folder / "data"), "OUTBOX_DIR": ""}
    with (folder / "serve.log").open("w") as serve_log:
        argv = [sys.executable, "-m", "bot", "serve", "--role", "web"]
        if profile:  # serve's CPU profile (cProfile on process_time), written when it stops; read with pstats
            script = ("import cProfile, runpy, sys, time\nsys.argv = ['bot', 'serve', '--role', 'web']\n"
                      "profile = cProfile.Profile(time.process_time)\ntry:\n"
                      "    profile.runcall(runpy.run_module, 'bot', run_name='__main__')\n"
                      f"finally:\n    profile.dump_stats({profile!r})\n")
            argv = [sys.executable, "-c", script]
        serve = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=serve_log)
    base = f"http://127.0.0.1:{port}"
    sent = 0
    try:
        async with aiohttp.ClientSession() as session:

            async def healthz() -> None:
                async with session.get(f"{base}/healthz") as r:
                    await r.read()
                    assert r.status == 200, r.status

            async def command(text: str) -> None:
                nonlocal sent
                sent += 1
                body = urlencode({"team_id": "T1", "channel_id": "COPS", "channel_name": "ops", "user_id": "UOPS",
                                  "command": "/invoicing", "text": text, "response_url": fake.response_url(),
                                  "trigger_id": f"1.{sent}.bench"})
                ts = int(time.time())
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, ts, SIGNING_SECRET)}
                before = len(fake.received("response_url"))
                async with session.post(f"{base}/slack/events", data=body.encode(), headers=headers) as r:
                    await r.read()
                    assert r.status == 200, r.status
                [reply] = (await fake.wait_for("response_url", before + 1, timeout=30))[before:]
                assert "went wrong" not in json.dumps(reply.params), reply.params

            async def put_order() -> None:
                nonlocal sent
                sent += 1
                order = {"items": [{"sku": "MUG", "quantity": 1}], "status": "received", "dispatched_at": None,
                         "on_hold": False, "error": None, "updated_at": datetime.now(UTC).isoformat(),
                         "ship_to": {"name": "Jo", "line1": "1 High St", "city": "Leeds", "postcode": "LS1 1AA",
                                     "country": "GB"}}
                async with session.put(f"{base}/api/v1/orders/shop1/LIVE-{sent}", data=json.dumps(order),
                                       headers={"Authorization": f"Bearer {token}"}) as r:
                    await r.read()
                    assert r.status == 201, r.status

            for _ in range(300):
                try:
                    await healthz()
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            kinds = {"GET /healthz": healthz, "/invoicing help run": lambda: command("help run"),
                     "/invoicing schedule": lambda: command("schedule"),
                     "/invoicing deliveries": lambda: command("deliveries"), "PUT /orders (one order)": put_order}
            kinds = {name: call for name, call in kinds.items() if not only or any(word in name for word in only)}
            for call in kinds.values():  # warm-up: connections, prepared statements, first imports
                for _ in range(30):
                    await call()
            cpu, wall = _cpu(serve.pid), time.perf_counter()
            await asyncio.sleep(3.0)
            idle_rate = (_cpu(serve.pid) - cpu) / (time.perf_counter() - wall)  # CPU seconds per second
            print(f"web replica (pid {serve.pid}) CPU per request ({requests} sequential requests each; idle "
                  f"{idle_rate * 1000:.1f} ms/s subtracted):", flush=True)
            for name, call in kinds.items():
                cpu, wall = _cpu(serve.pid), time.perf_counter()
                for _ in range(requests):
                    await call()
                used, wall = _cpu(serve.pid) - cpu, time.perf_counter() - wall
                print(f"  {name:26s} {(used - idle_rate * wall) * 1000 / requests:6.2f} ms CPU "
                      f"(wall {wall * 1000 / requests:.1f} ms)")
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        await fake.stop()


async def web_cpu(postgres: str, companies: int, queued: int, requests: int, profile: str, only: list[str]) -> None:
    from bot.db import throwaway_database

    with tempfile.TemporaryDirectory() as folder:
        if postgres:
            async with throwaway_database(postgres, "invoicebot_webcpu") as (url, _):
                print(f"PostgreSQL ({url})")
                await _web_cpu(url, companies, queued, requests, Path(folder), profile, only)
        else:
            print("SQLite (no --postgres / INVOICEBOT_TEST_POSTGRES_URL)")
            await _web_cpu(f"sqlite://{Path(folder) / 'web.db'}", companies, queued, requests, Path(folder),
                           profile, only)


async def main(orders: int, requests: int, companies: int, idle: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if companies:
            passed = await measure_under_load(Path(folder), companies, idle)
            print(f"ack under load: {'PASS' if passed else 'FAIL'}")
        if not orders:
            return
        async with database(f"sqlite://{Path(folder) / 'ack.db'}"):
            started = time.perf_counter()
            await seed(orders)
            print(f"seeded {orders:,} orders in {time.perf_counter() - started:.1f} s (SQLite)")
            ack, plain = await measure_ack(requests)
        p50, p99 = statistics.median(ack), pct(ack, 0.99)
        b50, b99 = statistics.median(plain), pct(plain, 0.99)
        ratio = p99 / b99
        print(f"/invoicing ack over HTTP: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
              f"(target p99 < 50 ms: {'target met' if p99 < 50 else 'target missed'})")
        print(f"bare aiohttp handler:     p50 {b50:.2f} ms, p99 {b99:.2f} ms; ratio p99 {ratio:.1f}× "
              f"(target ≤ 10×: {'target met' if ratio <= 10 else 'target missed'})")
        rss = idle_rss(Path(folder) / "serve")
        print(f"invoicebot serve idle RSS: {rss:.0f} MB (target ≤ 120 MB: "
              f"{'target met' if rss <= 120 else 'target missed'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--companies", type=int, default=500, help="the under-load phase (0: skip it)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds measured before the run is due")
    parser.add_argument("--web-cpu", action="store_true", help="only: CPU per request of serve --role web")
    parser.add_argument("--postgres", default=os.environ.get("INVOICEBOT_TEST_POSTGRES_URL", ""))
    parser.add_argument("--world-companies", type=int, default=1000)
    parser.add_argument("--queued", type=int, default=100, help="companies invoiced (their deliveries wait)")
    parser.add_argument("--cpu-requests", type=int, default=400)
    parser.add_argument("--profile", default="", help="--web-cpu: write serve's CPU profile (pstats) to this path")
    parser.add_argument("--only", default="", help="--web-cpu: only the requests whose name has one of these words "
                        "(comma-separated: schedule,PUT)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(client(0))
    elif args.web_cpu:
        asyncio.run(web_cpu(args.postgres, args.world_companies, args.queued, args.cpu_requests, args.profile,
                            [w for w in args.only.split(",") if w]))
    else:
        asyncio.run(main(args.orders, args.requests, args.companies, args.idle))
