"""Crash trial: `invoicebot serve` SIGKILLed at random moments, again and again, must keep the promise.

Run: ``.venv/bin/python trials/crash.py [--kills 100] [--seed 1] [--quick] [--postgres URL]``
(the PostgreSQL admin URL may also come from ``INVOICEBOT_TEST_POSTGRES_URL``).

Setup (throwaway database): two tenants (``alpha`` with 8 companies, ``beta`` with 4;
one company includes orders with errors, one has a ``starting_from`` that excludes
older orders, two have BCC lists — one repeating the To address), every PDF Emailer
enabled with the cron schedule ``* * * * *``. An SMTP sink (aiosmtpd, its own
process) records every Message-ID and envelope; it waits up to ``--smtp-delay`` s
before its "250", like a slow server, so kills also land between the outbox's
``sending`` and ``sent``.

Each life: prepare the database as the downtime would have left it (push every
``next_run_at`` into the past so runs are due at once; on a random half of the
restarts the downtime is "long": the ``sending`` e-mails and Slack notices of the dead
process are made due as their 300-s / 120-s leases would be; scheduler leases are
*not* touched — ``serve`` runs with a 3-s lease (``SCHEDULER_LEASE_SECONDS``) kept by
its heartbeat, so a dead process's leases run out on their own), spawn
``invoicebot serve``, feed new orders through ``POST /api/v1/orders:batch`` (a batch
cut off by a kill is sent again next life: the feed is idempotent), then SIGKILL the
process group at a random moment — 10 % during start-up, the rest 0–0.4 s or 0–2.5 s
after ``/healthz`` answered (runs and deliveries cluster right after start-up). Just before each kill
the trial notes whether the service had
a database transaction open, and after it how many deliveries were left ``sending``.

Slack is the fake Web API in its own process (``harness.FakeSlackProcess``), answering
``chat.postMessage`` up to ``--slack-delay`` s late so kills also land between a
notice's ``sending`` and ``sent``; every company has a channel (beta's four share one).

Finally feeding stops, every integration is made due, and one
last ``serve`` runs until every company has a run whose cutoff is after the last
order and every delivery and Slack notice is ``sent``; it is stopped with SIGTERM (must
exit 0). Then ``harness.check_invariants`` and ``harness.check_announcements`` (every
issued invoice announced in its channel at least once; duplicates counted). Exit 1
on any violation.

How the 300-s ``sending`` grace is handled: the service has no setting for it, so the
trial does what the passing of time would do while no process runs — it sets
``next_attempt_at`` of the dead process's ``sending`` rows to now (never while a
``serve`` is alive, so a live worker is never doubled); the next ``serve`` then
re-sends them with the same Message-ID and records "resent after unknown outcome".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import asyncpg
import harness
from harness import LOOPBACK, UNPRICED_SKU, FakeSlackProcess, Serve, Sink

COMPANIES = {"alpha": ["acorn", "birch", "cedar", "dune", "elm", "fern", "gorse", "hazel"],
             "beta": ["iris", "juniper", "kelp", "larch"]}
INCLUDE_ERRORS = {"cedar"}
STARTING_FROM_COMPANY = "dune"
BCC = {"birch": ["audit@alpha.example", "AP@birch.example"], "kelp": ["books@beta.example"]}
#: Slack channel ids; beta's companies share one (its posts queue behind the 1-per-second pacing).
CHANNELS = {short: "CBETA" for short in COMPANIES["beta"]}
SHIP_TO = {"name": "J. Doe", "line1": "1 High St", "city": "Leeds", "postcode": "LS1 1AA", "country": "GB"}


async def seed(url: str, started: datetime) -> dict[str, str]:
    """Tenants, companies, prices, tokens, enabled emailers; returns tenant → feed token."""
    from bot.db import database
    from invoicing.parties.companies import create_company

    tokens: dict[str, str] = {}
    async with database(url):
        for tenant_name, shorts in COMPANIES.items():
            tenant, token = await harness.seed_tenant(tenant_name)
            tokens[tenant_name] = token
            for n, short in enumerate(shorts):
                await create_company(tenant, short, name=f"{short.title()} Ltd", country="GB", currency="GBP",
                                     timezone="Europe/London" if n % 2 else "UTC", accounting=harness.buyer(short, n),
                                     channel=CHANNELS.get(short, f"C{short.upper()}"))
    conn = await asyncpg.connect(harness.pg_dsn(url))
    try:
        await conn.execute("UPDATE integration SET enabled = true, schedule = '* * * * *', next_run_at = $1",
                           started)
        for short in INCLUDE_ERRORS:
            await conn.execute("UPDATE integration SET include_errors = true WHERE company_id = "
                               "(SELECT id FROM company WHERE short_name = $1)", short)
        for short, bcc in BCC.items():
            await conn.execute("UPDATE integration SET settings = jsonb_build_object('bcc', $2::jsonb) "
                               "WHERE company_id = "
                               "(SELECT id FROM company WHERE short_name = $1)", short, json.dumps(bcc))
        await conn.execute("UPDATE integration SET starting_from = $2 WHERE company_id = "
                           "(SELECT id FROM company WHERE short_name = $1)", STARTING_FROM_COMPANY,
                           started - timedelta(minutes=10))
    finally:
        await conn.close()
    return tokens


class Feeder:
    """Makes random orders (every kind the rules care about) and posts them in batches per tenant."""

    def __init__(self, rng: random.Random, tokens: dict[str, str]) -> None:
        self.rng = rng
        self.tokens = tokens
        self.serial = 0
        self.unsent: dict[str, list[dict]] = {t: [] for t in COMPANIES}  # batches cut off by a kill: sent again
        self.posted = 0
        self.failed_posts = 0

    def new_orders(self, count: int) -> None:
        now = datetime.now(UTC)
        for _ in range(count):
            self.serial += 1
            tenant = self.rng.choice(list(COMPANIES))
            company = self.rng.choice(COMPANIES[tenant])
            kind = self.rng.random()
            order = {"company": company, "ref": f"SO-{self.serial:06d}", "status": "dispatched", "on_hold": False,
                     "error": None, "ship_to": SHIP_TO,
                     "dispatched_at": (now - timedelta(seconds=self.rng.uniform(1, 90))).isoformat(),
                     "items": [{"sku": self.rng.choice(harness.SKUS)[0], "quantity": self.rng.randint(1, 4)}
                               for _ in range(self.rng.randint(1, 3))]}
            if kind < 0.08:
                order["on_hold"] = True
            elif kind < 0.16:
                order["error"] = "address could not be verified"
            elif kind < 0.21:
                order["status"] = "cancelled"
            elif kind < 0.26:
                order["status"], order["dispatched_at"] = "in_production", None
            elif kind < 0.30:
                order["items"].append({"sku": UNPRICED_SKU, "quantity": 1})
            elif kind < 0.34 and company == STARTING_FROM_COMPANY:
                order["dispatched_at"] = (now - timedelta(hours=2)).isoformat()  # before starting_from: never
            self.unsent[tenant].append(order)

    async def post_all(self, session: aiohttp.ClientSession, port: int) -> None:
        for tenant, orders in self.unsent.items():
            while orders:
                batch = orders[:200]
                try:
                    async with session.post(f"http://{LOOPBACK}:{port}/api/v1/orders:batch",
                                            json={"orders": batch},
                                            headers={"Authorization": f"Bearer {self.tokens[tenant]}"},
                                            timeout=aiohttp.ClientTimeout(total=20)) as response:
                        body = await response.json()
                        if response.status != 200:
                            raise SystemExit(f"feed refused a batch: {response.status} {body}")
                except (TimeoutError, aiohttp.ClientError, ConnectionError):
                    self.failed_posts += 1
                    return  # killed under us: what was not acknowledged is sent again next life
                del orders[:len(batch)]
                self.posted += len(batch)


async def prepare_restart(conn: asyncpg.Connection, rng: random.Random, *, long_downtime: bool) -> None:
    """What the downtime leaves behind: due integrations; after a long one also expired outbox leases."""
    now = datetime.now(UTC)
    rows = await conn.fetch("SELECT id FROM integration WHERE enabled")
    for row in rows:
        await conn.execute("UPDATE integration SET next_run_at = $2 WHERE id = $1", row["id"],
                           now - timedelta(seconds=rng.uniform(0.5, 20)))
    if long_downtime:
        # The dead process's outbox leases (300 s e-mail, 120 s Slack) would have passed. Its
        # scheduler leases are left alone: they are 3 s here and must run out by themselves.
        await conn.execute("UPDATE delivery SET next_attempt_at = $1 WHERE status = 'sending'", now)
        await conn.execute("UPDATE slack_notice SET next_attempt_at = $1 WHERE status = 'sending'", now)


async def open_transactions(conn: asyncpg.Connection, db: str) -> int:
    """Transactions the service has open right now (other backends on our database)."""
    return await conn.fetchval("""
        SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
          AND xact_start IS NOT NULL AND backend_type = 'client backend'""", db)


#: The scheduler lease of every ``serve`` here: short, so a killed process's leases run out within a life.
LEASE_SECONDS = "3"


async def trial(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    os.environ["SCHEDULER_LEASE_SECONDS"] = LEASE_SECONDS  # ``Serve`` passes the environment on

    def say(text: str) -> None:
        if not args.quiet:
            print(text, flush=True)

    started_wall = time.monotonic()
    admin = harness.admin_url(args.postgres)
    figures: dict[str, object] = {"seed": args.seed, "kills requested": args.kills}
    with tempfile.TemporaryDirectory(prefix="invoicebot-crash-") as folder_name:
        folder = Path(folder_name)
        async with harness.throwaway_database(admin, "invoicebot_crash") as (url, db):
            tokens = await seed(url, datetime.now(UTC))
            say(f"  seeded in {time.monotonic() - started_wall:.1f} s")
            sink = Sink(folder, seed=args.seed, max_delay=args.smtp_delay)
            slack = FakeSlackProcess(folder, seed=args.seed, max_delay=args.slack_delay)
            serve: Serve | None = None
            conn = await asyncpg.connect(harness.pg_dsn(url))
            feeder = Feeder(rng, tokens)
            kills = kills_in_tx = kills_in_startup = kills_leaving_sending = 0
            startup_times: list[float] = []
            try:
                async with aiohttp.ClientSession() as session:
                    for _life in range(args.kills):
                        await prepare_restart(conn, rng, long_downtime=rng.random() < 0.5)
                        feeder.new_orders(rng.randint(10, 50))
                        sending_before = {r["id"] for r in await conn.fetch(
                            "SELECT id FROM delivery WHERE status = 'sending'")}
                        feeding = None
                        serve = Serve(database_url=url, smtp_port=sink.port, workdir=folder, log_name="serve.log",
                                  slack_api_url=slack.api_url)
                        if rng.random() < 0.10:
                            await asyncio.sleep(rng.uniform(0.0, 1.5))  # during start-up (imports, migrations)
                            kills_in_startup += 1
                        else:
                            startup_times.append(await serve.healthy(session, timeout=60))
                            feeding = asyncio.create_task(feeder.post_all(session, serve.port))
                            # Runs and deliveries cluster right after start-up (everything is due then).
                            await asyncio.sleep(rng.uniform(0.0, 0.4) if rng.random() < 0.5 else rng.uniform(0.0, 2.5))
                            if rng.random() < 0.3:  # sometimes more orders arrive mid-life
                                feeder.new_orders(rng.randint(1, 10))
                                feeding = asyncio.gather(feeding, feeder.post_all(session, serve.port))
                        if await open_transactions(conn, db):
                            kills_in_tx += 1
                        serve.kill()
                        serve = None
                        kills += 1
                        if kills % 10 == 0:
                            say(f"  {kills} kills, {time.monotonic() - started_wall:.0f} s")
                        if feeding is not None:
                            await asyncio.gather(feeding, return_exceptions=True)
                        sending_after = {r["id"] for r in await conn.fetch(
                            "SELECT id FROM delivery WHERE status = 'sending'")}
                        if sending_after - sending_before:
                            kills_leaving_sending += 1

                    # The end: orders a kill cut off are delivered to a serve that is then stopped
                    # gracefully (SIGTERM, must exit 0); then the downtime is long, every integration
                    # is due after the last order, and one last serve runs until everything settled.
                    await prepare_restart(conn, rng, long_downtime=True)
                    serve = Serve(database_url=url, smtp_port=sink.port, workdir=folder, log_name="serve.log",
                                  slack_api_url=slack.api_url)
                    await serve.healthy(session, timeout=60)
                    for _ in range(10):
                        if not any(feeder.unsent.values()):
                            break
                        await feeder.post_all(session, serve.port)
                    if any(feeder.unsent.values()):
                        raise SystemExit("could not post the last orders to a live serve")
                    t0 = time.monotonic()
                    graceful = [serve.terminate()]
                    say(f"  posted the last orders; graceful stop took {time.monotonic() - t0:.1f} s")
                    serve = None
                    final_mark = datetime.now(UTC)
                    await prepare_restart(conn, rng, long_downtime=True)
                    await conn.execute("UPDATE integration SET next_run_at = $1 WHERE enabled", final_mark)
                    serve = Serve(database_url=url, smtp_port=sink.port, workdir=folder, log_name="serve.log",
                                  slack_api_url=slack.api_url)
                    await serve.healthy(session, timeout=60)

                    async def settled() -> bool:
                        behind = await conn.fetchval("""
                            SELECT count(*) FROM integration e WHERE e.enabled AND NOT EXISTS (
                              SELECT 1 FROM invoice_run r WHERE r.company_id = e.company_id AND r.cutoff >= $1
                                AND r.outcome IN ('invoiced', 'no_orders'))""", final_mark)
                        unsent = await conn.fetchval(
                            "SELECT count(*) FROM delivery WHERE status IN ('pending', 'sending')")
                        unposted = await conn.fetchval(
                            "SELECT count(*) FROM slack_notice WHERE status IN ('pending', 'sending')")
                        return behind == 0 and unsent == 0 and unposted == 0

                    t0 = time.monotonic()
                    await harness.until(settled, timeout=args.settle_timeout, interval=0.5,
                                        what="every company to run past the last order, every e-mail and notice sent")
                    say(f"  final serve settled after {time.monotonic() - t0:.1f} s")
                    t0 = time.monotonic()
                    graceful.append(serve.terminate())
                    say(f"  graceful stop took {time.monotonic() - t0:.1f} s")
                    serve = None
                    findings = await harness.check_invariants(conn, sink.received())
                    await harness.check_announcements(conn, slack.posts(), findings)
                    if graceful != [0, 0]:
                        findings.violations.append(f"graceful stops (SIGTERM) exited with {graceful}, expected 0")
            finally:
                if serve is not None:
                    serve.kill()
                sink.close()
                slack.close()
                await conn.close()
            figures.update({
                "kills survived (SIGKILL of the process group)": kills,
                "  of them during start-up": kills_in_startup,
                "  with a service DB transaction open at the kill": kills_in_tx,
                "  leaving a delivery in 'sending'": kills_leaving_sending,
                "median start-up to /healthz (s)": round(sorted(startup_times)[len(startup_times) // 2], 2)
                if startup_times else None,
                "orders posted (acknowledged batches)": feeder.posted,
                "feed batches cut off by a kill (re-sent)": feeder.failed_posts,
            })
            figures.update(findings.figures)
            figures["duration (s)"] = round(time.monotonic() - started_wall, 1)
            harness.print_summary(f"crash trial (seed {args.seed})", figures, findings.violations)
            log = folder / "serve.log"
            keep = Path(tempfile.gettempdir()) / f"invoicebot-crash-{args.seed}-serve.log"
            keep.write_bytes(log.read_bytes() if log.exists() else b"")
            print(f"serve logs (every life) kept at {keep}")
            if findings.violations:
                return 1
            return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs before the final run (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="about 1 minute: 30 kills")
    parser.add_argument("--postgres", help="PostgreSQL admin URL (default $INVOICEBOT_TEST_POSTGRES_URL)")
    parser.add_argument("--smtp-delay", type=float, default=0.3, help="the sink waits up to this long before 250")
    parser.add_argument("--slack-delay", type=float, default=0.3,
                        help="the fake Slack answers chat.postMessage up to this late (after keeping the message)")
    parser.add_argument("--settle-timeout", type=float, default=180.0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.kills = min(args.kills, 30)
    return asyncio.run(trial(args))


if __name__ == "__main__":
    sys.exit(main())
