"""The ``invoicebot`` command line (also ``python -m bot``).

Bad input exits with code 2 and one line saying what was wrong; domain refusals
(``InvoiceBotError``) likewise. Unexpected errors are bugs: they keep their traceback.

Every write is one short transaction, opened only once the input is checked and closed
before anything is printed, and run again (``invoicing.retrying``) when it meets another
process's write lock: with the embedded SQLite database the server writes the same file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from bot.db import database, migrate
from bot.settings import Settings
from invoicing.billing.runs import RunReport
from invoicing.clock import utc_now
from invoicing.delivery.mail import mail_domain
from invoicing.errors import InvoiceBotError, NotFound
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.parties.tenants import create_tenant, get_tenant
from invoicing.retrying import atomic_retry
from models import Tenant

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# Wide enough for the summary table even when stdout is a pipe or a CI log.
console = Console(width=None if sys.stdout.isatty() else 132)


class _Parser(argparse.ArgumentParser):
    """argparse that says what was wrong in one line and exits 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"invoicebot: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="invoicebot", description="Order invoicing for a print-on-demand / dropship OMS.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="seed a demo tenant in an embedded SQLite database and run invoicing")
    demo.add_argument("--data-dir", type=Path,
                      help="where the database, PDFs and outbox go (default ./invoicebot-data)")

    sub.add_parser("migrate", help="apply database migrations (DATABASE_URL)")

    tenant = sub.add_parser("tenant", help="manage tenants (admin companies)")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", required=True, parser_class=_Parser)
    create = tenant_sub.add_parser("create", help="create a tenant linked to a Slack workspace")
    create.add_argument("name")
    create.add_argument("--slack-team", required=True, metavar="T…", help="Slack team id of the workspace")
    create.add_argument("--plan", choices=["oms", "oms_lite"], default="oms")
    create.add_argument("--currency", default="GBP", help="currency of default prices (ISO 4217)")

    run = sub.add_parser("run", help="run invoicing for one company now")
    run.add_argument("company", help="the company's short name")
    run.add_argument("--tenant", help="tenant name (needed when there is more than one)")
    run.add_argument("--dry-run", action="store_true", help="preview: write nothing, take no number")

    token = sub.add_parser("token", help="order-feed API tokens of a tenant")
    token_sub = token.add_subparsers(dest="token_command", required=True, parser_class=_Parser)
    token_create = token_sub.add_parser("create", help="create a token; it is printed once (stdout)")
    token_create.add_argument("tenant")
    token_create.add_argument("--label", default="", help="what the token is for, e.g. the OMS instance")
    token_sub.add_parser("list", help="list a tenant's tokens (prefixes only)").add_argument("tenant")
    token_revoke = token_sub.add_parser("revoke", help="revoke a token by its prefix")
    token_revoke.add_argument("tenant")
    token_revoke.add_argument("prefix", help="as shown by `token list`, e.g. ibt_AbCd1234")

    importer = sub.add_parser("import", help="import orders or prices from CSV, or the ECB exchange rates (fx: "
                                             "eurofxref.csv / eurofxref-hist.csv); all-or-nothing, see docs/feed.md")
    importer.add_argument("kind", choices=["orders", "prices", "fx"])
    importer.add_argument("file", type=Path, metavar="FILE.csv")
    importer.add_argument("--tenant", required=True, help="tenant name")

    serve = sub.add_parser("serve", help="HTTP (Slack /slack/events, feed /api/v1, /healthz) + scheduler + outbox")
    serve.add_argument("--no-scheduler", action="store_true", help="run no scheduler (another replica schedules)")
    serve.add_argument("--role", choices=["all", "web", "worker"], default=None,
                       help="all (default, SERVE_ROLE): everything; web: Slack, feed and Xero callback only; "
                            "worker: scheduler and outboxes, /healthz only (README, Operations)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        overrides = {"invoicebot_data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"invoicebot: error: setting {first['loc'][0]}: {first['msg']}", file=sys.stderr)
        return 2
    handlers: dict[str, Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]] = {
        "token": _token, "import": _import,
        "demo": _demo, "migrate": _migrate, "tenant": _tenant, "run": _run, "serve": _serve,
    }
    try:
        return asyncio.run(handlers[args.command](args, settings))
    except InvoiceBotError as exc:
        print(f"invoicebot: error: {exc.message}", file=sys.stderr)
        return 2


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    await migrate(settings.resolved_database_url())
    console.print("Database is up to date.")
    return 0


async def _tenant(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings.resolved_database_url()):
        tenant = await atomic_retry(lambda _: create_tenant(args.name, slack_team_id=args.slack_team, plan=args.plan,
                                                            currency=args.currency))
    console.print(f"Tenant [bold]{tenant.name}[/] created "
                  f"(plan {tenant.plan.value}, Slack team {tenant.slack_team_id}).")
    return 0


async def _only_tenant(name: str | None) -> Tenant:
    if name:
        return await get_tenant(name)
    tenants = await Tenant.all().limit(2)
    if len(tenants) == 1:
        return tenants[0]
    if not tenants:
        raise NotFound("No tenant yet. Create one with `invoicebot tenant create NAME --slack-team T…`.")
    raise NotFound("There is more than one tenant: say which with --tenant NAME.")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings.resolved_database_url()):
        tenant = await _only_tenant(args.tenant)
        report = await run_by_name(tenant, args.company, actor="cli", dry_run=args.dry_run,
                                   mail_domain=mail_domain(settings.mail_from))
    console.print(summary_table([report], title="Dry run (nothing written)" if args.dry_run else "Invoice run"))
    return 0


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import XML_RETAILER, run_demo

    url = settings.resolved_database_url()
    async with database(url):
        result = await run_demo(utc_now(), data_dir=settings.data_dir, outbox_dir=settings.resolved_outbox_dir(),
                                mail_from=settings.mail_from)
    where = settings.data_dir.resolve()
    console.print(f"[dim]Database: {url}[/]")
    console.print("Seeded demo tenant [bold]inkwell[/] (3 retailers, 300 orders)." if result.seeded
                  else "Demo tenant already seeded: invoicing again finds only what is new.")
    console.print(summary_table(result.reports, title="InvoiceBot demo — invoice run"))
    issued = [r for r in result.reports if r.invoice_number]
    console.print(f"{len(issued)} invoice(s) issued. Data dir: {where}")
    for path in result.pdfs:
        console.print(f"  PDF     {path.resolve()}", soft_wrap=True)
    for path in result.emails:
        console.print(f"  e-mail  {path.resolve()}", soft_wrap=True)
    console.print(f"{len(result.xml_files)} XML export file(s) written for {XML_RETAILER}.")
    for path in result.xml_files:
        console.print(f"  XML     {path.resolve()}", soft_wrap=True)
    return 0


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from bot.app import Service

    logging.getLogger().setLevel(logging.INFO)
    service = Service(settings, scheduler_enabled=not args.no_scheduler, role=args.role or settings.serve_role)
    await service.start()
    if service.role != "web":
        service.renderer.warm()  # the outbox renders here: spawn the workers before a burst needs them
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    console.print(f"InvoiceBot serving ({service.role}) on {settings.host}:{service.port} "
                  f"(database {settings.resolved_database_url().split('@')[-1]})")
    await stop.wait()
    await service.stop()
    return 0


def _skipped_text(report: RunReport) -> str:
    if not report.skipped_by_reason:
        return "—"
    return "\n".join(f"{count} × {reason}" for reason, count in sorted(report.skipped_by_reason.items(),
                                                                       key=lambda kv: -kv[1]))


def summary_table(reports: Sequence[RunReport], *, title: str) -> Table:
    table = Table(title=title, show_lines=True)
    for column, justify in (("Company", "left"), ("Invoice", "left"), ("Orders", "right"), ("Net", "right"),
                            ("Tax", "right"), ("Gross", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("Skipped (why)", justify="left", min_width=30)
    for r in reports:
        has_invoice = r.invoice_number is not None
        table.add_row(
            r.company,
            r.invoice_number or "no invoice",
            str(r.orders_invoiced),
            f"{r.net:,} {r.currency}" if has_invoice else "—",
            f"{r.tax:,} {r.currency}" if has_invoice else "—",
            f"{r.gross:,} {r.currency}" if has_invoice else "—",
            _skipped_text(r),
        )
    return table


async def _token(args: argparse.Namespace, settings: Settings) -> int:
    from invoicing.ingest.tokens import create_token, list_tokens, revoke_token

    async with database(settings.resolved_database_url()):
        tenant = await get_tenant(args.tenant)
        if args.token_command == "create":
            new = await atomic_retry(lambda _: create_token(tenant, label=args.label, actor="cli"))
            # The token alone on stdout (scriptable: TOKEN=$(invoicebot token create acme)); the note on stderr.
            print(new.token)
            print(f"Token {new.prefix}… for tenant {tenant.name} created. Store it now: it is not shown again. "
                  "Send it as `Authorization: Bearer <token>`.", file=sys.stderr)
            return 0
        if args.token_command == "revoke":
            revocation = await atomic_retry(lambda _: revoke_token(tenant, args.prefix, actor="cli"))
            when = f"{revocation.token.revoked_at:%Y-%m-%d %H:%M} UTC"
            console.print(f"Token {revocation.token.prefix} was already revoked ({when})." if revocation.already_revoked
                          else f"Token {revocation.token.prefix} revoked; requests with it now get 401.")
            return 0
        tokens = await list_tokens(tenant)
    table = Table(title=f"API tokens of {tenant.name}")
    for column in ("Prefix", "Label", "Created (UTC)", "Last used (UTC)", "Status"):
        table.add_column(column, no_wrap=True)
    for info in tokens:
        table.add_row(info.prefix, info.label or "—", f"{info.created_at:%Y-%m-%d %H:%M}",
                      f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never",
                      "active" if info.active else f"revoked {info.revoked_at:%Y-%m-%d}")
    console.print(table if tokens else f"No API tokens for {tenant.name}. `invoicebot token create {tenant.name}`.")
    return 0


class _ImportProgress:
    """A rich progress bar per import phase, only when stdout is a terminal (never in logs or pipes)."""

    _LABELS = {"check": "Checking rows", "write": "Writing"}

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Callable[[str, int, int], None] | None:
        if not sys.stdout.isatty():
            return None
        from rich.progress import Progress

        self._bar = Progress(console=console, transient=True)
        self._bar.__enter__()
        return self._update

    def _update(self, phase: str, done: int, total: int) -> None:
        assert self._bar is not None
        if phase not in self._tasks:
            self._tasks[phase] = self._bar.add_task(self._LABELS.get(phase, phase), total=total)
        self._bar.update(self._tasks[phase], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    from invoicing.ingest.csv_import import import_orders, import_prices

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"invoicebot: error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.kind == "fx":
        return await _import_fx(args, settings, data)
    async with database(settings.resolved_database_url()):
        tenant = await get_tenant(args.tenant)
        with _ImportProgress() as progress:
            if args.kind == "orders":
                report = await import_orders(tenant, data, progress=progress)
            else:
                report = await import_prices(tenant, data, actor="cli", progress=progress)
    if report.errors:
        print(f"invoicebot: error: {args.file.name}: {len(report.errors)} bad row(s); nothing was imported",
              file=sys.stderr)
        for error in report.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    stale = f", {report.stale} stale (older than stored, ignored)" if report.stale else ""
    console.print(f"Imported {report.kind} from {args.file.name} ({report.rows} rows, {report.encoding}): "
                  f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged{stale}.")
    return 0


async def _import_fx(args: argparse.Namespace, settings: Settings, data: bytes) -> int:
    """``import fx FILE``: the ECB reference rates (``invoicing.billing.ecb``); errors exit 2 via ``main``."""
    from invoicing.billing.ecb import import_ecb

    async with database(settings.resolved_database_url()):
        tenant = await get_tenant(args.tenant)
        result = await import_ecb(tenant, data, actor="cli")
    kept = f", {result.kept} kept (set by ops or the feed)" if result.kept else ""
    console.print(f"Imported ECB rates from {args.file.name} ({result.days} day(s), {result.rates} rates): "
                  f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged{kept}.")
    return 0
