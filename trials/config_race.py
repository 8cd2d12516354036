"""Config race: admins of several workspaces change configuration at once through Slack.

Run: ``.venv/bin/python trials/config_race.py [--tenants 3] [--commands 900] [--replicas 2]
[--concurrency 24] [--seed 1] [--postgres URL]``.

Setup (throwaway PostgreSQL database): ``--tenants`` tenants, each linked to its own
Slack workspace (``T1``, ``T2``, …) with three *root* InvoiceBot admins that are never
removed, a pool of churn users, and three companies with the same short names in every
tenant (so a cross-workspace mix-up would show). ``--replicas`` ``invoicebot serve``
processes share the database and a fake Slack Web API run by the trial (nobody is a
workspace admin there: only the tenant's admin list grants rights).

The race: ``--commands`` signed ``/invoicing`` requests fired ``--concurrency`` at a time,
spread over the replicas, each from a random root admin of a random workspace:
``admins add|remove``, ``accounting <co> set email=``, ``emailer <co> set channel=``,
``emailer <co> set bcc=``, ``emailer <co> set schedule=``; one in ten is sent with
*another* workspace's team id (it must be refused and change nothing there).

Then, from outside (SQL on the database):

* **replay** — for every (tenant, target, key) the audit entries written during the race,
  in id order, form a chain starting at the value before the race (each ``old`` is the
  previous ``new``) and ending at the value in the database: any break is a lost update
  or a wrong ``old``;
* **security** — no audit entry in a tenant was written by another tenant's admin; every
  churn user who is not an admin at the end is refused a mutating command and it changes
  nothing;
* every request answered 200 and every command got a reply.

Exit 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import asyncpg
import harness
from harness import LOOPBACK, Serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bot.slack_harness import sign  # noqa: E402 - after the path setup
from tests.fakes.slack_api import FakeSlack, text_of  # noqa: E402

SIGNING_SECRET = harness.SLACK_SIGNING_SECRET
COMPANIES = ("giftory", "maplewood", "mueller")
CHANNELS = ("#billing", "#finance", "#ops", "#accounts", "none")
SCHEDULES = ("daily", "weekly", "monthly", "hourly", "0 6 * * 1-5")


def root_admins(t: int) -> list[str]:
    return [f"UROOT{t}X{i}" for i in range(3)]


def churn_users(t: int) -> list[str]:
    return [f"UCHURN{t}X{i}" for i in range(6)]


async def seed(url: str, tenants: int) -> None:
    from bot.db import database
    from invoicing.parties.companies import create_company
    from invoicing.parties.tenants import add_admin, create_tenant

    async with database(url):
        for t in range(1, tenants + 1):
            tenant = await create_tenant(f"tenant{t}", slack_team_id=f"T{t}")
            for user in root_admins(t):
                await add_admin(tenant, user, actor="cli")
            for short in COMPANIES:
                await create_company(tenant, short, name=f"{short.title()} of {t}", country="GB", currency="GBP",
                                     channel="#billing", accounting={"email": f"ap@{short}{t}.example"})


async def snapshot(conn: asyncpg.Connection) -> dict[tuple[int, str, str], str]:
    """The audited configuration values as the audit log writes them (text)."""
    state: dict[tuple[int, str, str], str] = {}
    for row in await conn.fetch("SELECT id, admin_user_ids FROM tenant"):
        admins = row["admin_user_ids"]
        admins = json.loads(admins) if isinstance(admins, str) else (admins or [])
        state[(row["id"], "admins", "admins")] = ",".join(admins)
    rows = await conn.fetch(
        "SELECT c.tenant_id, c.short_name, c.email, c.slack_channel, i.schedule, i.settings "
        "FROM company c JOIN integration i ON i.company_id = c.id AND i.kind = 'pdf_emailer'")
    for row in rows:
        target = f"company:{row['short_name']}"
        settings = row["settings"]
        settings = json.loads(settings) if isinstance(settings, str) else (settings or {})
        state[(row["tenant_id"], target, "email")] = row["email"]
        state[(row["tenant_id"], target, "channel")] = row["slack_channel"]
        state[(row["tenant_id"], target, "schedule")] = row["schedule"]
        state[(row["tenant_id"], target, "bcc")] = ",".join(settings.get("bcc") or []) or "none"
    return state


def command_for(rng: random.Random, t: int, tenants: int) -> tuple[str, str, str, bool]:
    """(team, user, text, foreign) for one request."""
    user = rng.choice(root_admins(t))
    foreign = tenants > 1 and rng.random() < 0.1
    team = f"T{rng.choice([x for x in range(1, tenants + 1) if x != t])}" if foreign else f"T{t}"
    company = rng.choice(COMPANIES)
    roll = rng.random()
    if roll < 0.4:
        text = f"admins {rng.choice(['add', 'remove'])} <@{rng.choice(churn_users(t))}>"
    elif roll < 0.6:
        text = f"accounting {company} set email=ap-{rng.randrange(1000)}@{company}{t}.example"
    elif roll < 0.75:
        text = f"emailer {company} set channel={rng.choice(CHANNELS)}"
    elif roll < 0.9:
        text = f"emailer {company} set bcc=copy{rng.randrange(100)}@audit{t}.example"
    else:
        text = f'emailer {company} set schedule="{rng.choice(SCHEDULES)}"'
    return team, user, text, foreign


class SlackClient:
    """Signed ``/invoicing`` requests to the replicas, replies collected by the fake Web API."""

    def __init__(self, session: aiohttp.ClientSession, fake: FakeSlack, ports: list[int]) -> None:
        self.session = session
        self.fake = fake
        self.ports = ports
        self.statuses: Counter[int] = Counter()
        self.sent = 0

    async def command(self, team: str, user: str, text: str) -> int:
        body = urlencode({
            "token": "legacy", "team_id": team, "team_domain": team.lower(), "channel_id": "CBILLING",
            "channel_name": "billing", "user_id": user, "user_name": user.lower(), "command": "/invoicing",
            "text": text, "response_url": self.fake.response_url(f"r{self.sent}"), "trigger_id": "1.2.3",
        })
        port = self.ports[self.sent % len(self.ports)]
        self.sent += 1
        ts = int(time.time())
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": sign(body, ts, SIGNING_SECRET)}
        try:
            async with self.session.post(f"http://{LOOPBACK}:{port}/slack/events", data=body.encode(),
                                         headers=headers) as response:
                await response.read()
                self.statuses[response.status] += 1
                return response.status
        except aiohttp.ClientError:
            self.statuses[0] += 1
            return 0


def replay(entries: list[asyncpg.Record], before: dict[tuple[int, str, str], str],
           after: dict[tuple[int, str, str], str]) -> tuple[int, list[str], int]:
    """(keys checked, breaks, entries replayed): the race's audit chain against the two snapshots."""
    state = dict(before)
    breaks: list[str] = []
    replayed = 0
    for entry in entries:
        old = entry["old"] if isinstance(entry["old"], dict) else json.loads(entry["old"] or "{}")
        new = entry["new"] if isinstance(entry["new"], dict) else json.loads(entry["new"] or "{}")
        for key, value in new.items():
            where = (entry["tenant_id"], entry["target"], key)
            if where not in state:
                continue  # a key this trial does not track (e.g. next_run_at moved by a schedule change)
            replayed += 1
            if str(old.get(key)) != str(state[where]):
                breaks.append(f"entry {entry['id']} {entry['action']} {where}: old={old.get(key)!r} "
                              f"but the chain says {state[where]!r}")
            state[where] = str(value)
    for where, value in after.items():
        if str(state.get(where)) != str(value):
            breaks.append(f"final {where}: database has {value!r}, the audit log replays to {state.get(where)!r}")
    return len(after), breaks, replayed


async def trial(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    started = time.monotonic()
    admin = harness.admin_url(args.postgres)
    figures: dict[str, Any] = {"seed": args.seed, "tenants (workspaces)": args.tenants, "replicas": args.replicas}
    violations: list[str] = []
    with tempfile.TemporaryDirectory(prefix="invoicebot-config-") as folder_name:
        folder = Path(folder_name)
        async with harness.throwaway_database(admin, "invoicebot_config") as (url, _db):
            await seed(url, args.tenants)
            fake = await FakeSlack(admins=set()).start()
            replicas = [Serve(database_url=url, smtp_port=harness.free_port(), workdir=folder,
                              log_name=f"replica{r}.log", slack_api_url=fake.api_url) for r in range(args.replicas)]
            conn = await asyncpg.connect(harness.pg_dsn(url))
            try:
                async with aiohttp.ClientSession() as session:
                    await asyncio.gather(*(s.healthy(session, timeout=90) for s in replicas))
                    before = await snapshot(conn)
                    first_race_entry = await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_entry")
                    client = SlackClient(session, fake, [s.port for s in replicas])
                    plan = [command_for(rng, rng.randrange(1, args.tenants + 1), args.tenants)
                            for _ in range(args.commands)]
                    gate = asyncio.Semaphore(args.concurrency)

                    async def send(team: str, user: str, text: str) -> int:
                        async with gate:
                            return await client.command(team, user, text)

                    race_start = time.monotonic()
                    await asyncio.gather(*(send(team, user, text) for team, user, text, _ in plan))

                    async def replied() -> bool:
                        return len(fake.received("response_url")) >= len(plan)

                    try:
                        await harness.until(replied, timeout=120, what="a reply to every command")
                    except TimeoutError as exc:
                        violations.append(f"{exc}: {len(fake.received('response_url'))} of {len(plan)} replies")
                    race_seconds = time.monotonic() - race_start
                    replies = [text_of(c.params) for c in fake.received("response_url")]

                    after = await snapshot(conn)
                    entries = await conn.fetch(
                        "SELECT id, tenant_id, actor, action, target, old, new FROM audit_entry WHERE id > $1 "
                        "ORDER BY id", first_race_entry)
                    keys, breaks, replayed = replay(entries, before, after)
                    if breaks:
                        violations.append(f"audit chain breaks (lost updates / wrong old values): {len(breaks)} — "
                                          f"e.g. {'; '.join(breaks[:5])}")

                    tenant_of_team = {f"T{t}": t for t in range(1, args.tenants + 1)}
                    tenant_ids = dict(await conn.fetch("SELECT slack_team_id, id FROM tenant"))
                    foreign_actor = []
                    for entry in entries:
                        team = next((tm for tm, tid in tenant_ids.items() if tid == entry["tenant_id"]), "")
                        own = {f"slack:{u}" for u in root_admins(tenant_of_team[team]) + churn_users(
                            tenant_of_team[team])}
                        if entry["actor"] not in own:
                            foreign_actor.append(f"entry {entry['id']} in {team} by {entry['actor']}")
                    if foreign_actor:
                        violations.append(f"changes by another workspace's admin: {len(foreign_actor)} — "
                                          f"e.g. {'; '.join(foreign_actor[:5])}")

                    # Every churn user who is not an admin now must be refused and change nothing.
                    outsiders = []
                    for t in range(1, args.tenants + 1):
                        admins = set(after[(tenant_ids[f"T{t}"], "admins", "admins")].split(","))
                        outsiders += [(t, u) for u in churn_users(t) if u not in admins]
                    mark = await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_entry")
                    answered_before = len(fake.received("response_url"))
                    for t, user in outsiders:
                        await client.command(f"T{t}", user, f"admins add <@{user}>")
                    await harness.until(lambda: _at_least(fake, answered_before + len(outsiders)), timeout=60,
                                        what="replies to the outsiders' commands")
                    leaked = await conn.fetchval("SELECT count(*) FROM audit_entry WHERE id > $1", mark)
                    if leaked:
                        violations.append(f"{leaked} change(s) by users who are no longer admins")
                    if set(client.statuses) - {200}:
                        violations.append(f"non-200 answers: {dict(client.statuses)}")
                    if any("Something went wrong" in r for r in replies):
                        violations.append(f"{sum('Something went wrong' in r for r in replies)} replies were "
                                          "'Something went wrong'")
            finally:
                codes = [s.terminate() for s in replicas]
                await conn.close()
                await fake.stop()
            if codes != [0] * len(replicas):
                violations.append(f"graceful stop (SIGTERM) exit codes {codes}, expected all 0")
            refused = sum("admin" in r.lower() and "only" in r.lower() for r in replies)
            figures.update({
                "commands raced": len(plan),
                "of them with another workspace's team id": sum(f for *_, f in plan),
                "answers by status": dict(client.statuses),
                "replies received": len(replies),
                "refusal replies (not an admin here)": refused,
                "audit entries written in the race": len(entries),
                "values replayed / keys checked": f"{replayed} / {keys}",
                "outsiders refused after the race": len(outsiders),
                "race (s)": round(race_seconds, 1),
                "commands per second": round(len(plan) / race_seconds, 1) if race_seconds else None,
            })
            figures["duration (s)"] = round(time.monotonic() - started, 1)
            harness.print_summary(f"config race (seed {args.seed})", figures, violations)
            if violations:
                for r in range(len(replicas)):
                    keep = Path(tempfile.gettempdir()) / f"invoicebot-config-{args.seed}-replica{r}.log"
                    keep.write_bytes((folder / f"replica{r}.log").read_bytes())
                print(f"replica logs kept in {tempfile.gettempdir()}/invoicebot-config-{args.seed}-replica*.log")
                return 1
            return 0


async def _at_least(fake: FakeSlack, count: int) -> bool:
    return len(fake.received("response_url")) >= count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--commands", type=int, default=900)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres")
    return asyncio.run(trial(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
