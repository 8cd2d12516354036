"""How fast Slack gets its acknowledgement, with 100k orders in the database.

Run: ``.venv/bin/python benchmarks/slack_ack.py [--orders 100000] [--requests 300]``

Sends signed ``/invoicing orders acme invoiced page=2`` requests to the real bolt app
over HTTP and times request → HTTP response (the ack Slack waits for; the listing
itself follows via ``response_url``, which is also waited for so requests do not pile
up). Beside it, a bare aiohttp handler on the same server, same client, same run.
Targets: p99 < 50 ms and ≤ 10× the bare handler. Then ``invoicebot serve`` is started
as a real process and its idle RSS is read (target ≤ 120 MB).
"""

from __future__ import annotations

import argparse
import asyncio
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
from tests.bot.slack_harness import start_harness, stop_harness

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


async def main(orders: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
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
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.requests))
