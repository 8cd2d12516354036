"""The ``invoicebot`` command line (also ``python -m bot``).

Bad input exits with code 2 and one line saying what was wrong; domain refusals
(``InvoiceBotError``) likewise. Unexpected errors are bugs: they keep their traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from bot.db import database, migrate
from bot.settings import Settings
from invoicing.clock import utc_now
from invoicing.errors import InvoiceBotError, NotFound
from invoicing.runs import RunReport, run_company
from invoicing.setup import create_tenant, get_tenant
from models import Tenant

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
    demo.add_argument("--data-dir", type=Path, help="where the database, PDFs and outbox go (default ./invoicebot-data)")

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
    handlers: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int]]] = {
        "demo": _demo, "migrate": _migrate, "tenant": _tenant, "run": _run,
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
        tenant = await create_tenant(args.name, slack_team_id=args.slack_team, plan=args.plan, currency=args.currency)
    console.print(f"Tenant [bold]{tenant.name}[/] created (plan {tenant.plan.value}, Slack team {tenant.slack_team_id}).")
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
        report = await run_company(tenant, args.company, actor="cli", dry_run=args.dry_run)
    console.print(summary_table([report], title="Dry run (nothing written)" if args.dry_run else "Invoice run"))
    return 0


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    url = settings.resolved_database_url()
    async with database(url):
        seeded, reports = await run_demo(utc_now())
    where = settings.data_dir.resolve()
    console.print(f"[dim]Database: {url}[/]")
    console.print("Seeded demo tenant [bold]inkwell[/] (3 retailers, 300 orders)." if seeded
                  else "Demo tenant already seeded: invoicing again finds only what is new.")
    console.print(summary_table(reports, title="InvoiceBot demo — invoice run"))
    issued = [r for r in reports if r.invoice_number]
    console.print(f"{len(issued)} invoice(s) issued. Data dir: {where}")
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
