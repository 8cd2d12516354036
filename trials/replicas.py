"""Replica race: three `invoicebot serve` on one PostgreSQL, 1,000 companies due at once, manual runs racing them.

Run: ``.venv/bin/python trials/replicas.py [--companies 1000] [--manual 30] [--replicas 3] [--seed 1] [--postgres URL]``
(the PostgreSQL admin URL may also come from ``INVOICEBOT_TEST_POSTGRES_URL``).

Setup (throwaway database, seeded before any replica starts): tenants ``north``
(70 % of the companies) and ``south`` (30 %), complete seller and buyer details,
priced SKUs; per company 4 dispatched orders before the slot, 1 on hold, 1 with an
unpriced SKU and 1 dispatched *after* the slot; every PDF Emailer enabled,
schedule ``daily``, ``next_run_at`` = the slot (30 s in the past), so all are due
at once. Then, at the same moment, the replicas start (different ports, one SMTP
sink) and ``invoicebot run <co> --tenant …`` is fired as a subprocess for a random
sample of companies. The trial waits until every integration has advanced past
its slot, every manual run exited and every delivery is ``sent``; stops the
replicas with SIGTERM (each must exit 0) and checks ``harness.check_invariants`` plus:

* each company has exactly one scheduled run (trigger ``schedule``/``catch_up``)
  for the slot, with the slot as cutoff, none failed; each sampled company exactly
  one manual run;
* the order dispatched after the slot is invoiced only where a manual run (cutoff
  "now") came; companies without a manual run have exactly one invoice;
* every Message-ID is in the ``MAIL_FROM`` domain.

The replicas run with a short scheduler lease (``--lease``, 3 s, through
``SCHEDULER_LEASE_SECONDS``): under this load a heartbeat may come late, a lease
run out while its replica is alive and another replica claim the slot. The checks
above then show that the first run rolled back instead of committing ("lease lost"
in the logs, counted in the figures) — never a second run or invoice.

Exit 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import asyncpg
import harness
from harness import MAIL_FROM, UNPRICED_SKU, Serve, Sink

ZONES = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]


async def seed(url: str, companies: int, slot: datetime, rng: random.Random) -> dict[str, list[str]]:
    """Tenants, companies and orders; returns tenant → company short names."""
    from bot.db import database
    from invoicing.parties.companies import create_company
    from models import Company, Order, OrderItem, OrderStatus

    split = {"north": round(companies * 0.7), "south": companies - round(companies * 0.7)}
    names: dict[str, list[str]] = {}
    async with database(url):
        for tenant_name, count in split.items():
            tenant, _ = await harness.seed_tenant(tenant_name, with_token=False)
            names[tenant_name] = []
            for n in range(count):
                short = f"{tenant_name[0]}{n:04d}"
                await create_company(tenant, short, name=f"Shop {short} Ltd", country="GB", currency="GBP",
                                     timezone=ZONES[n % len(ZONES)], accounting=harness.buyer(short, n))
                names[tenant_name].append(short)
        orders: list[Order] = []
        for company in await Company.all().order_by("id"):
            for k in range(4):
                orders.append(Order(company_id=company.id, external_ref=f"SO-{company.id}-{k}",
                                    status=OrderStatus.DISPATCHED, dispatched_at=slot - timedelta(hours=1 + k)))
            orders.append(Order(company_id=company.id, external_ref=f"SO-{company.id}-held", on_hold=True,
                                status=OrderStatus.DISPATCHED, dispatched_at=slot - timedelta(hours=2)))
            orders.append(Order(company_id=company.id, external_ref=f"SO-{company.id}-unpriced",
                                status=OrderStatus.DISPATCHED, dispatched_at=slot - timedelta(hours=3)))
            orders.append(Order(company_id=company.id, external_ref=f"SO-{company.id}-late",
                                status=OrderStatus.DISPATCHED, dispatched_at=slot + timedelta(seconds=15)))
        await Order.bulk_create(orders, batch_size=2000)
        items = []
        for order_id, ref in await Order.all().values_list("id", "external_ref"):
            sku = UNPRICED_SKU if ref.endswith("-unpriced") else rng.choice(harness.SKUS)[0]
            items.append(OrderItem(order_id=order_id, position=0, sku=sku, quantity=rng.randint(1, 3)))
        await OrderItem.bulk_create(items, batch_size=2000)
    conn = await asyncpg.connect(harness.pg_dsn(url))
    try:
        await conn.execute("UPDATE integration SET enabled = true, schedule = 'daily', next_run_at = $1 "
                           "WHERE kind = 'pdf_emailer'", slot)
        await conn.execute("UPDATE integration SET settings = jsonb_build_object('bcc', $1::jsonb) WHERE id % 7 = 0",
                           json.dumps(["audit@trials.example"]))
    finally:
        await conn.close()
    return names


def manual_run(tenant: str, company: str, database_url: str, workdir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTP_", "INVOICEBOT_"))}
    env.update({"DATABASE_URL": database_url, "MAIL_FROM": MAIL_FROM, "INVOICEBOT_DATA_DIR": str(workdir / "data")})
    return subprocess.Popen([str(harness.VENV_BIN / "invoicebot"), "run", company, "--tenant", tenant], cwd=workdir,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


async def trial(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    started = time.monotonic()
    admin = harness.admin_url(args.postgres)
    figures: dict[str, object] = {"seed": args.seed, "replicas": args.replicas}
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="invoicebot-replicas-") as folder_name:
        folder = Path(folder_name)
        async with harness.throwaway_database(admin, "invoicebot_replicas") as (url, _db):
            slot = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
            names = await seed(url, args.companies, slot, rng)
            seeded = time.monotonic()
            print(f"  seeded {args.companies} companies in {seeded - started:.1f} s", flush=True)
            sample = rng.sample([(t, c) for t, cs in names.items() for c in cs], min(args.manual, args.companies))
            sink = Sink(folder, seed=args.seed, max_delay=0.0)
            replicas: list[Serve] = []
            manual: list[tuple[str, str, subprocess.Popen]] = []
            conn = await asyncpg.connect(harness.pg_dsn(url))
            os.environ["SCHEDULER_LEASE_SECONDS"] = str(args.lease)  # Serve passes the environment on
            try:
                race_start = time.monotonic()
                for r in range(args.replicas):
                    replicas.append(Serve(database_url=url, smtp_port=sink.port, workdir=folder,
                                          log_name=f"replica{r}.log"))
                for tenant, company in sample:
                    manual.append((tenant, company, manual_run(tenant, company, url, folder)))
                async with aiohttp.ClientSession() as session:
                    await asyncio.gather(*(s.healthy(session, timeout=90) for s in replicas))

                last_report = [time.monotonic()]

                async def done() -> bool:
                    if time.monotonic() - last_report[0] >= args.progress:
                        last_report[0] = time.monotonic()
                        runs = await conn.fetchval("SELECT count(*) FROM invoice_run")
                        sent = await conn.fetchval("SELECT count(*) FROM delivery WHERE status = 'sent'")
                        print(f"  {time.monotonic() - race_start:5.0f} s: {runs} runs, {sent} e-mails sent, "
                              f"{sum(p.poll() is None for _, _, p in manual)} manual runs going", flush=True)
                    behind = await conn.fetchval(
                        "SELECT count(*) FROM integration WHERE enabled AND "
                        "(next_run_at <= $1 OR lease_owner IS NOT NULL)", slot)
                    unsent = await conn.fetchval("SELECT count(*) FROM delivery WHERE status IN ('pending', 'sending')")
                    running = sum(p.poll() is None for _, _, p in manual)
                    return behind == 0 and unsent == 0 and running == 0

                await harness.until(done, timeout=args.timeout, interval=0.5,
                                    what="every integration to run, every manual run to exit, every e-mail to leave")
                race_seconds = time.monotonic() - race_start
                codes = [s.terminate() for s in replicas]
                if codes != [0] * len(replicas):
                    extra.append(f"graceful stop (SIGTERM) exit codes {codes}, expected all 0")
                for tenant, company, proc in manual:
                    _out, err = proc.communicate(timeout=30)
                    if proc.returncode != 0:
                        extra.append(f"manual run {tenant}/{company} exited {proc.returncode}: "
                                     f"{err.decode(errors='replace').strip()[-300:]}")
                findings = await harness.check_invariants(conn, sink.received())
                findings.violations.extend(extra)
                await replica_checks(conn, findings, slot, {c for _, c in sample},
                                     len(names["north"]) + len(names["south"]))
            finally:
                for s in replicas:
                    if s.proc.poll() is None:
                        s.kill()
                for _, _, proc in manual:
                    if proc.poll() is None:
                        harness.kill_group(proc, signal.SIGKILL)
                        proc.wait(timeout=10)
                sink.close()
                await conn.close()
            per_replica = []
            leases_lost = heartbeats_failed = 0
            for r in range(len(replicas)):
                text = (folder / f"replica{r}.log").read_text(errors="replace")
                per_replica.append((len(re.findall(r"run done .*outcome=invoiced", text)),
                                    len(re.findall(r"run done ", text)), len(re.findall(r"delivery sent ", text))))
                leases_lost += len(re.findall(r"lease lost ", text))
                heartbeats_failed += len(re.findall(r"lease heartbeat failed ", text))
            figures.update({
                "companies due at once": args.companies,
                "manual `invoicebot run` racing them": len(sample),
                "scheduled runs per replica (all / invoiced)": [f"{a}/{i}" for i, a, _ in per_replica],
                "e-mails sent per replica": [d for _, _, d in per_replica],
                f"scheduler lease {args.lease} s: leases lost (run not started or rolled back) / heartbeats failed":
                    f"{leases_lost} / {heartbeats_failed}",
                "seed time (s)": round(seeded - started, 1),
                "race: start of replicas → everything run and sent (s)": round(race_seconds, 1),
            })
            figures.update(findings.figures)
            figures["duration (s)"] = round(time.monotonic() - started, 1)
            harness.print_summary(f"replica race (seed {args.seed})", figures, findings.violations)
            if findings.violations:
                for r in range(len(replicas)):
                    keep = Path(tempfile.gettempdir()) / f"invoicebot-replicas-{args.seed}-replica{r}.log"
                    keep.write_bytes((folder / f"replica{r}.log").read_bytes())
                print(f"replica logs kept in {tempfile.gettempdir()}/invoicebot-replicas-{args.seed}-replica*.log")
                return 1
            return 0


async def replica_checks(conn, findings: harness.Findings, slot: datetime, manual: set[str], companies: int) -> None:
    f = findings
    f.violate("company without exactly one scheduled run for its slot", await conn.fetch("""
        SELECT c.short_name,
               count(r.id) FILTER (WHERE r.trigger IN ('schedule', 'catch_up')) AS scheduled,
               count(r.id) FILTER (WHERE r.trigger IN ('schedule', 'catch_up') AND r.cutoff = $1
                                   AND r.outcome IN ('invoiced', 'no_orders')) AS good
        FROM company c LEFT JOIN invoice_run r ON r.company_id = c.id GROUP BY c.id
        HAVING count(r.id) FILTER (WHERE r.trigger IN ('schedule', 'catch_up')) <> 1
            OR count(r.id) FILTER (WHERE r.trigger IN ('schedule', 'catch_up') AND r.cutoff = $1
                                   AND r.outcome IN ('invoiced', 'no_orders')) <> 1""", slot))
    f.violate("failed or refused runs", await conn.fetch(
        "SELECT company_id, trigger, outcome, message FROM invoice_run WHERE outcome IN ('failed', 'refused')"))
    manual_runs = await conn.fetch("""
        SELECT c.short_name, count(r.id) AS n FROM company c JOIN invoice_run r ON r.company_id = c.id
        WHERE r.trigger = 'manual' GROUP BY c.short_name""")
    got = {r["short_name"]: r["n"] for r in manual_runs}
    f.violate("manual runs not exactly one per sampled company",
              [(c, got.get(c, 0)) for c in sorted(manual | set(got)) if got.get(c, 0) != (1 if c in manual else 0)])
    rows = await conn.fetch("""
        SELECT c.short_name, count(DISTINCT i.id) AS invoices,
               bool_or(o.external_ref LIKE '%-late' AND o.invoice_id IS NOT NULL) AS late_invoiced
        FROM company c LEFT JOIN invoice i ON i.company_id = c.id LEFT JOIN "order" o ON o.company_id = c.id
        GROUP BY c.short_name""")
    f.violate("order dispatched after the slot invoiced without a manual run",
              [r["short_name"] for r in rows if r["late_invoiced"] and r["short_name"] not in manual])
    f.violate("order dispatched after the slot missed by a manual run",
              [r["short_name"] for r in rows if not r["late_invoiced"] and r["short_name"] in manual])
    f.violate("company without a manual run not on exactly one invoice",
              [(r["short_name"], r["invoices"]) for r in rows if r["short_name"] not in manual and r["invoices"] != 1])
    domain = MAIL_FROM.rsplit("@", 1)[1]
    f.violate(f"Message-ID not in the MAIL_FROM domain ({domain})", await conn.fetch(
        "SELECT d.id, d.message_id, r.trigger FROM delivery d JOIN invoice_run r ON r.invoice_id = d.invoice_id "
        "WHERE d.message_id NOT LIKE $1", f"%@{domain}>"))
    counts = Counter({r["short_name"]: r["invoices"] for r in rows})
    f.figures["companies"] = companies
    f.figures["companies with 2 invoices (manual + scheduled, disjoint orders)"] = sum(
        1 for n in counts.values() if n == 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--manual", type=int, default=30, help="companies also run by `invoicebot run` at once")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lease", type=int, default=3, help="SCHEDULER_LEASE_SECONDS of the replicas")
    parser.add_argument("--postgres", help="PostgreSQL admin URL (default $INVOICEBOT_TEST_POSTGRES_URL)")
    parser.add_argument("--progress", type=float, default=15.0, help="seconds between progress lines")
    parser.add_argument("--timeout", type=float, default=420.0, help="seconds to wait for the race to settle")
    args = parser.parse_args()
    return asyncio.run(trial(args))


if __name__ == "__main__":
    sys.exit(main())
