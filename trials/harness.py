"""Shared machinery of the trials: a throwaway database, an SMTP sink, `invoicebot serve` children, the checks.

Everything here talks to the system from outside, as ops and a mail server would:
PostgreSQL over SQL, the service over HTTP and signals, e-mail through a real SMTP
sink in its own process. Production code is imported only to seed data (the same
setup functions the CLI and the feed use) and to compute the expected envelope.

Slack is the fake Web API of the tests (``tests/fakes/slack_api.py``) in its own
process (``FakeSlackProcess``), recording every message it kept with its metadata.

Run ``python trials/harness.py --sink FILE [--seed S] [--max-delay SECONDS]`` to get the
sink on its own: it prints its port, appends one JSON line per message received
(``mid``, ``rcpt``, ``from``) to FILE and exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VENV_BIN = ROOT / ".venv" / "bin"
MAIL_FROM = "invoices@trials.example"
#: What ``Serve(slack_api_url=…)`` configures; trials sign their Slack requests with it.
SLACK_SIGNING_SECRET = "trial-signing-secret"
LOOPBACK = "127.0.0.1"


# --- small utilities ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def admin_url(cli_value: str | None) -> str:
    url = cli_value or os.environ.get("INVOICEBOT_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("give --postgres URL or set INVOICEBOT_TEST_POSTGRES_URL "
                         "(`eval \"$(scripts/pg-throwaway start)\"`)")
    return url


def pg_dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def until(predicate, *, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll ``predicate`` (async, returns a truthy value when done) until ``timeout`` seconds; raise on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


def throwaway_database(admin: str, prefix: str) -> contextlib.AbstractAsyncContextManager[tuple[str, str]]:
    """``bot.db.throwaway_database``, imported when used: a trial's sink and Slack children never need the ORM."""
    from bot.db import throwaway_database as scratch

    return scratch(admin, prefix)


# --- the SMTP sink (child process) ----------------------------------------------------------


class _RecordingHandler:
    def __init__(self, out, rng: random.Random, max_delay: float) -> None:
        self._out = out
        self._rng = rng
        self._max_delay = max_delay

    async def handle_DATA(self, server, session, envelope) -> str:
        import email
        import email.policy

        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        # Recorded as soon as the data is in, before the reply: a real server that has
        # the message may deliver it even if the client dies before reading "250".
        self._out.write(json.dumps({"mid": str(message.get("Message-ID", "")), "rcpt": list(envelope.rcpt_tos),
                                    "from": envelope.mail_from, "t": time.time()}) + "\n")
        self._out.flush()
        if self._max_delay:
            # A slow server: widens the window between the outbox's "sending" and "sent".
            await asyncio.sleep(self._rng.uniform(0, self._max_delay))
        return "250 Message accepted for delivery"


def run_sink(path: Path, seed: int, max_delay: float) -> None:
    from aiosmtpd.controller import Controller

    with path.open("a", encoding="utf-8") as out:
        handler = _RecordingHandler(out, random.Random(seed), max_delay)
        controller = Controller(handler, hostname=LOOPBACK, port=free_port(), server_hostname="localhost")
        controller.start()
        print(controller.port, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)
        controller.stop()


class Sink:
    """The SMTP sink child process; ``received()`` reads what it recorded so far."""

    def __init__(self, folder: Path, *, seed: int, max_delay: float) -> None:
        self.path = folder / "sink.jsonl"
        self.path.touch()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--sink", str(self.path), "--seed", str(seed),
             "--max-delay", str(max_delay)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"SMTP sink did not start (said {line!r})")
        self.port = int(line)

    def received(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
        return rows

    def close(self) -> None:
        close_child(self.proc)


def close_child(proc: subprocess.Popen) -> None:
    """Stop a child that runs until its stdin closes (the sinks); SIGKILL it if it does not."""
    if proc.poll() is None:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)


class FakeSlackProcess:
    """The fake Slack Web API (``tests/fakes/slack_api.py``) as a child; ``posts()`` reads what it kept."""

    def __init__(self, folder: Path, *, seed: int, max_delay: float) -> None:
        self.path = folder / "slack.jsonl"
        self.path.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.slack_api", "--record", str(self.path), "--seed", str(seed),
             "--max-delay", str(max_delay)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("port="):
            self.close()
            raise RuntimeError(f"fake Slack did not start (said {line!r})")
        self.api_url = f"http://{LOOPBACK}:{int(line.removeprefix('port='))}/api/"

    def posts(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def close(self) -> None:
        close_child(self.proc)


# --- `invoicebot serve` children -----------------------------------------------------------


def kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the child leads its own session: this reaches its render pool too


class Serve:
    """One ``invoicebot serve`` process in its own process group (so kills reach its PDF workers)."""

    def __init__(self, *, database_url: str, smtp_port: int, workdir: Path, log_name: str, port: int | None = None,
                 extra_args: tuple[str, ...] = (), slack_api_url: str | None = None) -> None:
        self.port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTP_", "INVOICEBOT_"))}
        env.update({
            "DATABASE_URL": database_url, "HOST": LOOPBACK, "PORT": str(self.port),
            "SMTP_HOST": LOOPBACK, "SMTP_PORT": str(smtp_port), "SMTP_SECURITY": "none", "MAIL_FROM": MAIL_FROM,
            "INVOICEBOT_DATA_DIR": str(workdir / "data"), "PYTHONUNBUFFERED": "1",
        })
        if slack_api_url:
            env.update({"SLACK_BOT_TOKEN": "xoxb-trial", "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
                        "SLACK_API_URL": slack_api_url})
        self.log_path = workdir / log_name
        self._log = self.log_path.open("ab")
        # cwd = workdir: pydantic-settings reads ``.env`` from the working directory; the repo's must not leak in.
        self.proc = subprocess.Popen([str(VENV_BIN / "invoicebot"), "serve", *extra_args], cwd=workdir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def healthy(self, session, timeout: float = 30.0) -> float:
        """Wait for ``GET /healthz`` to answer 200; returns seconds since spawn."""

        async def probe() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode} before it was healthy "
                                   f"(log: {self.log_path})")
            try:
                async with session.get(f"http://{LOOPBACK}:{self.port}/healthz") as response:
                    return response.status == 200
            except OSError:
                return False
            except Exception:  # noqa: BLE001 - aiohttp client errors while it starts
                return False

        await until(probe, timeout=timeout, interval=0.05, what=f"serve on port {self.port} to be healthy")
        return time.monotonic() - self.started

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it (bounded)."""
        kill_group(self.proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 45.0) -> int | None:
        """SIGTERM (graceful stop), wait up to ``timeout``; SIGKILL the group if it did not exit. Returns its code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        kill_group(self.proc, signal.SIGKILL)  # stray render workers, if any
        self._log.close()
        return self.proc.returncode


# --- seeding (through the same functions the CLI and the feed use) ------------------------

SELLER_GB = {"legal_name": "{name} Print & Ship Ltd", "address_line1": "Unit 4, Riverside Works", "city": "Leeds",
             "postcode": "LS10 1AB", "country": "GB", "vat_number": "GB980780684", "company_number": "08123456"}
SKUS = [("MUG", "4.20", "1.10", "20"), ("TEE", "7.85", "1.60", "20"), ("KIDS", "5.10", "1.60", "0"),
        ("POSTER", "3.333", "2.25", "20")]
#: A product with no price at all: orders of it must be skipped and reported, never invoiced.
UNPRICED_SKU = "NOPRICE"


def buyer(short: str, n: int) -> dict[str, str]:
    return {"legal_name": f"{short.title()} Ltd", "address_line1": f"{n} Market Street", "city": "Manchester",
            "postcode": "M1 1AE", "email": f"ap@{short}.example"}


async def seed_tenant(name: str, *, with_token: bool = True) -> tuple[Any, str | None]:
    """A tenant with complete seller details, priced SKUs and (optionally) a feed token; Tortoise must be open."""
    from invoicing.ingest.catalog import PriceInput, set_product
    from invoicing.ingest.tokens import create_token
    from invoicing.parties.tenants import create_tenant

    tenant = await create_tenant(name, currency="GBP")
    tenant.update_from_dict({k: v.format(name=name.title()) for k, v in SELLER_GB.items()})
    tenant.invoice_prefix = f"{name[:3].upper()}-"
    await tenant.save()
    for sku, cost, shipping, tax in SKUS:
        await set_product(tenant, sku, name=f"Product {sku}", prices=[PriceInput(None, cost, shipping, tax)])
    await set_product(tenant, UNPRICED_SKU, name="Not yet priced", prices=[])
    token = (await create_token(tenant, label="trials")).token if with_token else None
    return tenant, token


# --- the invariants ------------------------------------------------------------------------------


@dataclass
class Findings:
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def violate(self, kind: str, rows: list[Any], show: int = 5) -> None:
        if rows:
            sample = "; ".join(str(dict(r)) if hasattr(r, "keys") else str(r) for r in rows[:show])
            self.violations.append(f"{kind}: {len(rows)} — e.g. {sample}")


async def check_invariants(conn, received: list[dict[str, Any]], *, final: bool = True) -> Findings:
    """Every rule of the promise, as SQL over the whole database plus what the SMTP sink received.

    The promise: every eligible order is on exactly one invoice; invoice numbers are
    1..N per tenant, gapless and unique; every invoice is delivered (a ``sent``
    delivery whose Message-ID reached the sink with the right envelope); no orphan
    runs, invoices or deliveries. Duplicates (one Message-ID received more than
    once) are counted, and must be explained by recorded attempts.
    """
    from invoicing.delivery.mail import envelope_recipients

    f = Findings()
    fig = f.figures

    # Numbers: 1..N per tenant, no gap, no duplicate, and the sequence row agrees.
    rows = await conn.fetch("""
        SELECT t.id, t.name, t.last_invoice_number AS seq, count(i.id) AS n, count(DISTINCT i.number) AS distinct_n,
               coalesce(min(i.number), 0) AS lo, coalesce(max(i.number), 0) AS hi
        FROM tenant t LEFT JOIN invoice i ON i.tenant_id = t.id GROUP BY t.id ORDER BY t.id""")
    fig["invoices per tenant"] = {r["name"]: r["n"] for r in rows}
    f.violate("invoice numbers not 1..N without gaps or duplicates",
              [r for r in rows
               if not (r["n"] == r["distinct_n"] == r["hi"] == r["seq"] and r["lo"] == (1 if r["n"] else 0))])

    # Orders ↔ invoices ↔ lines.
    f.violate("invoiced order not eligible (status, hold, error, starting_from, cutoff, company, unpriced)",
              await conn.fetch("""
        SELECT o.id, o.external_ref, o.status, o.on_hold, o.error, o.dispatched_at, i.period_end, i.display_number
        FROM "order" o JOIN invoice i ON i.id = o.invoice_id
        JOIN integration e ON e.company_id = o.company_id
        WHERE o.status <> 'dispatched' OR o.on_hold OR o.dispatched_at IS NULL
           OR (coalesce(o.error, '') <> '' AND NOT e.include_errors)
           OR (e.starting_from IS NOT NULL AND o.dispatched_at < e.starting_from)
           OR o.dispatched_at >= i.period_end OR i.company_id <> o.company_id
           OR EXISTS (SELECT 1 FROM order_item oi WHERE oi.order_id = o.id AND oi.sku = $1)""", UNPRICED_SKU))
    f.violate("order billed on more than one invoice (lines)", await conn.fetch("""
        SELECT order_id_ref, array_agg(DISTINCT invoice_id) AS invoices FROM invoice_line
        GROUP BY order_id_ref HAVING count(DISTINCT invoice_id) > 1"""))
    f.violate("invoice lines and marked orders disagree", await conn.fetch("""
        SELECT * FROM (
          SELECT i.id, i.display_number, i.order_count,
                 (SELECT count(*) FROM "order" o WHERE o.invoice_id = i.id) AS marked,
                 (SELECT count(DISTINCT l.order_id_ref) FROM invoice_line l WHERE l.invoice_id = i.id) AS billed,
                 (SELECT count(*) FROM invoice_line l LEFT JOIN "order" o ON o.id = l.order_id_ref
                   WHERE l.invoice_id = i.id AND o.invoice_id IS DISTINCT FROM i.id) AS foreign_lines
          FROM invoice i) x
        WHERE NOT (order_count = marked AND marked = billed AND foreign_lines = 0)"""))
    # Eligible but not invoiced, up to the company's latest completed cutoff.
    missed = await conn.fetch("""
        WITH reach AS (SELECT company_id, max(cutoff) AS c FROM invoice_run
                       WHERE outcome IN ('invoiced', 'no_orders') GROUP BY company_id)
        SELECT o.id, o.external_ref, o.company_id, o.dispatched_at, r.c AS latest_cutoff
        FROM "order" o JOIN integration e ON e.company_id = o.company_id
        JOIN reach r ON r.company_id = o.company_id
        WHERE o.invoice_id IS NULL AND o.status = 'dispatched' AND NOT o.on_hold AND o.dispatched_at < r.c
          AND (coalesce(o.error, '') = '' OR e.include_errors)
          AND (e.starting_from IS NULL OR o.dispatched_at >= e.starting_from)
          AND NOT EXISTS (SELECT 1 FROM order_item oi WHERE oi.order_id = o.id AND oi.sku = $1)""", UNPRICED_SKU)
    f.violate("eligible order not invoiced by a run whose cutoff covers it", missed)

    # Runs ↔ invoices.
    f.violate("run 'invoiced' without its invoice", await conn.fetch("""
        SELECT r.id, r.company_id, r.invoice_id FROM invoice_run r LEFT JOIN invoice i ON i.id = r.invoice_id
        WHERE r.outcome = 'invoiced' AND (r.invoice_id IS NULL OR i.id IS NULL OR i.company_id <> r.company_id
              OR r.orders_invoiced <> i.order_count)"""))
    f.violate("run not 'invoiced' but pointing at an invoice", await conn.fetch(
        "SELECT id, outcome, invoice_id FROM invoice_run WHERE outcome <> 'invoiced' AND invoice_id IS NOT NULL"))
    f.violate("invoice without its run", await conn.fetch("""
        SELECT i.id, i.display_number FROM invoice i
        WHERE (SELECT count(*) FROM invoice_run r WHERE r.invoice_id = i.id) <> 1"""))

    # Deliveries ↔ invoices ↔ what the sink received.
    deliveries = await conn.fetch("""
        SELECT d.id, d.invoice_id, d.kind, d.status, d.message_id, d.to_addr, d.bcc::text AS bcc, d.attempts,
               d.last_error, i.id AS inv FROM delivery d LEFT JOIN invoice i ON i.id = d.invoice_id ORDER BY d.id""")
    f.violate("delivery pointing to no invoice", [d for d in deliveries if d["inv"] is None])
    f.violate("invoice without exactly one initial delivery", await conn.fetch("""
        SELECT i.id, i.display_number,
               (SELECT count(*) FROM delivery d WHERE d.invoice_id = i.id AND d.kind = 'initial') AS initial
        FROM invoice i
        WHERE (SELECT count(*) FROM delivery d WHERE d.invoice_id = i.id AND d.kind = 'initial') <> 1"""))
    f.violate("Message-ID used by two deliveries", await conn.fetch(
        "SELECT message_id, count(*) FROM delivery GROUP BY message_id HAVING count(*) > 1"))
    status = Counter(d["status"] for d in deliveries)
    fig["deliveries by status"] = dict(status)
    if final:
        f.violate("delivery not sent at the end (failed or still queued)",
                  [{k: d[k] for k in ("id", "status", "attempts", "last_error")} for d in deliveries
                   if d["status"] != "sent"])

    by_mid: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in received:
        by_mid[row["mid"]].append(row)
    known = {d["message_id"]: d for d in deliveries}
    f.violate("e-mail received that no delivery row accounts for (phantom)",
              [mid for mid in by_mid if mid not in known])
    never, wrong_envelope, unexplained = [], [], []
    for d in deliveries:
        copies = by_mid.get(d["message_id"], [])
        if d["status"] == "sent" and not copies:
            never.append(d["message_id"])
        expected = sorted(a.casefold() for a in envelope_recipients(d["to_addr"], json.loads(d["bcc"])))
        if any(sorted(a.casefold() for a in c["rcpt"]) != expected for c in copies):
            wrong_envelope.append((d["message_id"], expected, [c["rcpt"] for c in copies]))
        if len(copies) > d["attempts"]:  # every copy must be a recorded hand-off
            unexplained.append((d["message_id"], len(copies), d["attempts"]))
    f.violate("delivery recorded 'sent' but never received by the sink", never)
    f.violate("envelope recipients differ from To + BCC (deduplicated)", wrong_envelope)
    f.violate("more copies received than attempts recorded", unexplained)
    duplicates = {mid: len(rows) for mid, rows in by_mid.items() if len(rows) > 1}
    fig["e-mails received"] = len(received)
    fig["distinct Message-IDs received"] = len(by_mid)
    fig["duplicate copies (same Message-ID again)"] = sum(n - 1 for n in duplicates.values())
    fig["messages received more than once"] = len(duplicates)
    fig["duplicates explained by a recorded resend after unknown outcome"] = sum(
        1 for mid in duplicates if known.get(mid) and known[mid]["attempts"] >= duplicates[mid])
    fig["deliveries retried after an unknown outcome"] = sum(
        1 for d in deliveries if "unknown outcome" in (d["last_error"] or ""))

    runs = await conn.fetch("SELECT outcome, trigger, count(*) AS n FROM invoice_run GROUP BY 1, 2 ORDER BY 1, 2")
    fig["runs"] = sum(r["n"] for r in runs)
    fig["runs by outcome/trigger"] = {f"{r['outcome']}/{r['trigger']}": r["n"] for r in runs}
    failed = await conn.fetch("SELECT message, count(*) AS n FROM invoice_run WHERE outcome = 'failed' GROUP BY 1")
    if failed:
        fig["failed runs (rolled back, recorded)"] = {r["message"]: r["n"] for r in failed}
    counts = await conn.fetchrow("""
        SELECT (SELECT count(*) FROM invoice) AS invoices, (SELECT count(*) FROM "order") AS orders,
               (SELECT count(*) FROM "order" WHERE invoice_id IS NOT NULL) AS invoiced_orders,
               (SELECT count(*) FROM invoice_line) AS lines""")
    fig.update({"invoices": counts["invoices"], "orders": counts["orders"],
                "orders invoiced": counts["invoiced_orders"], "invoice lines": counts["lines"],
                "orders not invoiced (ineligible, or after the last cutoff)":
                    counts["orders"] - counts["invoiced_orders"]})
    return f


async def check_announcements(conn, posts: list[dict[str, Any]], findings: Findings) -> None:
    """Every issued invoice of a company with a channel was announced there at least once.

    ``posts`` are the messages the fake Slack kept; a run notice carries ``run:<run id>``
    in its metadata. Posts of one key more than once are counted (at-least-once allows
    them; the metadata lookup should keep them rare).
    """
    keys = Counter(((p.get("metadata") or {}).get("event_payload") or {}).get("key") for p in posts)
    rows = await conn.fetch("""
        SELECT i.display_number, r.id AS run_id, c.slack_channel AS channel FROM invoice i
        JOIN invoice_run r ON r.invoice_id = i.id JOIN company c ON c.id = i.company_id
        WHERE c.slack_channel <> '' ORDER BY i.id""")
    never = [(r["display_number"], r["run_id"]) for r in rows if keys[f"run:{r['run_id']}"] == 0]
    wrong_channel = [p for p in posts if not str(p.get("channel", "")).startswith("C")]
    findings.violate("issued invoices never announced in Slack", never)
    findings.violate("Slack posts to an unexpected channel", wrong_channel)
    notices = await conn.fetch("SELECT status, count(*) AS n FROM slack_notice GROUP BY 1 ORDER BY 1")
    findings.figures.update({
        "invoices announced in Slack (≥ 1 post)": len(rows) - len(never),
        "run notices posted more than once": sum(1 for r in rows if keys[f"run:{r['run_id']}"] > 1),
        "Slack messages kept by the fake": len(posts),
        "notice rows by status": {r["status"]: r["n"] for r in notices},
        "notices found already posted (metadata lookup)": await conn.fetchval(
            "SELECT count(*) FROM slack_notice WHERE last_error = 'found already posted'"),
    })


def print_summary(title: str, figures: dict[str, Any], violations: list[str]) -> None:
    print(f"\n=== {title} ===")
    width = max(len(k) for k in figures) + 2
    for key, value in figures.items():
        print(f"  {key:<{width}} {value}")
    print(f"  {'violations':<{width}} {len(violations)}")
    for v in violations:
        print(f"    ✗ {v}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink", type=Path, required=True, help="run the SMTP sink, appending to this file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=0.0, help="seconds the sink may wait before its 250")
    args = parser.parse_args()
    run_sink(args.sink, args.seed, args.max_delay)
