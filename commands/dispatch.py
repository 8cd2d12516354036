"""The ``/invoicing`` grammar: sub-command → handler, with help and precise errors.

``dispatch`` never raises: domain errors become an ephemeral reply that says what
was wrong and shows the usage; unexpected errors are logged with a reference the
ops person can quote, and the reply carries no traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from commands import (
    admins,
    audit,
    companies,
    credit,
    deliveries,
    emailer,
    fx,
    invoices,
    orders,
    prices,
    runs,
    seller,
    xero,
    xero_company,
    xml,
)
from commands.context import Args, CommandContext
from commands.replies import Reply, context, header, message, section
from commands.tokenizer import tokenize
from invoicing.errors import InvoiceBotError

log = logging.getLogger(__name__)

Handler = Callable[[Args, CommandContext], Awaitable[Reply]]
#: Whether these arguments ask the command to change something (see ``mutates``).
Mutates = Callable[[Args], bool]


def _never(_: Args) -> bool:
    return False


def _always(_: Args) -> bool:
    return True


def _word_is(position: int, *actions: str) -> Mutates:
    """The command changes something when its ``position``-th word is one of ``actions``."""
    def check(args: Args) -> bool:
        return len(args.words) > position and args.words[position].lower() in actions

    return check


def _run_mutates(args: Args) -> bool:
    flags = [w.lower() for w in args.words[1:]]
    return not (flags and all(flag in runs.DRY_RUN_FLAGS for flag in flags))


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    handler: Handler
    details: str = ""
    #: True for arguments that change state: such commands of one workspace are applied in
    #: arrival order (``bot/lanes.py``); reads are not serialised against each other.
    mutates: Mutates = _never


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("help", "help [command]", "this list, or the details of one command", lambda a, c: _help(a)),
        Command("seller", "seller [set key=value …]", "the seller details printed on every invoice", seller.seller,
                "Keys: legal_name address_line1 address_line2 city region postcode country vat_number "
                "company_number email phone payment_terms_days iban bic currency invoice_prefix credit_note_prefix "
                "timezone. "
                "`currency` is the seller's accounting currency (VAT of other-currency invoices is also shown "
                "in it); `timezone` is the zone invoice dates are printed in. "
                "Values with spaces go in quotes: `seller set legal_name=\"Inkwell Print & Ship Ltd\"`.",
                _word_is(0, "set")),
        Command("companies", "companies [page=N]", "list the dropship companies", companies.companies),
        Command("company",
                "company add <co> name=\"…\" country=GB currency=GBP timezone=Europe/London [channel=#billing] "
                "[language=de] · company set <co> language=en|de|fr|pl|es|it|nl|auto",
                "add a dropship company, or set its invoice language", companies.company,
                "`language` is the invoice language (labels, dates, legal notes); auto (default) follows the "
                "buyer's country: DE/AT/CH de, FR/BE/LU fr, PL pl, ES es, IT it, NL nl, else en.",
                _word_is(0, "add", "set")),
        Command("accounting", "accounting <co> [edit | set key=value …]",
                "show or change a company's accounting details (edit opens a form)", companies.accounting,
                "Keys: legal_name address_line1 address_line2 city region postcode country vat_number "
                "company_number email phone payment_terms_days iban bic. `email` is where invoices are sent.",
                _word_is(1, "set")),
        Command("emailer", "emailer <co> [enable | disable | set include_errors= starting_from= bcc= schedule= "
                "next= channel= approval= approval_timeout= on_timeout= einvoice=]",
                "the company's PDF Emailer integration",
                emailer.emailer,
                "`schedule=` hourly|daily|weekly|monthly or a 5-field cron (company time zone). "
                "`next=\"YYYY-MM-DD HH:MM\"` (company time zone) or none. `bcc=a@x.com,b@y.com`. "
                "`starting_from=YYYY-MM-DD`. `include_errors=yes|no`. `approval=on|off`: scheduled runs post a "
                "preview with Approve / Skip instead of issuing; `approval_timeout=30m|24h|2d` (default 24h); "
                "`on_timeout=skip|issue` (default skip). `einvoice=auto|facturx|none`: Factur-X (EN 16931 XML in a "
                "PDF/A-3) — auto = for EU buyers.", _word_is(1, "enable", "disable", "set")),
        Command("xml", "xml <co> [enable | disable | set host= port= username= path= dir= schedule= next= "
                "starting_from= content= host_key= auth= password= include_errors= | test | run [dry-run]] · xml key",
                "the company's XML accounting export (SFTP or a local directory)", xml.xml,
                "A destination is an SFTP server (`host= port=22 username= path=/upload`, its host key pinned with "
                "`host_key=\"ssh-ed25519 AAAA…\"` or learned with `test` and the *Trust this key* button) or a "
                "local directory (`dir=/mnt/share`). `auth=key` (default: install the line `xml key` shows in the "
                "user's authorized_keys) or `auth=password password=…` (stored encrypted). `content=orders` "
                "(default: every dispatched order once, changed ones again as revisions) or `content=invoices` "
                "(each issued invoice and credit note as UBL). Schedule rules as for the emailer. `test` writes "
                "and removes a probe file. See docs/xml-export.md.", xml.mutates),
        Command("orders", "orders <co> [invoiced|uninvoiced|held|errors] [from=YYYY-MM-DD] [to=YYYY-MM-DD] "
                "[invoice=N] [page=N]",
                "look up orders and which invoice they are on", orders.orders),
        Command("run", "run <co> [dry-run]", "invoice a company now (dry-run previews)", runs.run,
                mutates=_run_mutates),
        Command("invoices", "invoices <co> [from=YYYY-MM-DD] [to=YYYY-MM-DD] [page=N]", "list a company's invoices",
                invoices.invoices),
        Command("invoice", "invoice <number> [resend]", "show an invoice and its PDF, or e-mail it again",
                invoices.invoice, mutates=_word_is(1, "resend")),
        Command("credit", "credit <number> [lines=1,4-6 | all] reason=\"…\" [reinvoice=yes]",
                "credit (part of) an issued invoice with a credit note (admins; confirm button)", credit.credit,
                "Lines are the invoice's line numbers as printed; `2:1` credits one unit of line 2. Shows a preview "
                "with an *Issue credit note* button: nothing is issued until an admin confirms. `reinvoice=yes` "
                "lets the next run invoice the credited orders again (every line of each order must be credited)."),
        Command("void", "void <number> reason=\"…\" [reinvoice=yes]",
                "credit everything that remains on an invoice (admins; confirm button)", credit.void),
        Command("price", "price <co|default> <sku> cost= shipping= tax= [name=\"…\"] [category=S|Z|E|AE|K|G|O|auto] "
                "[exemption=VATEX-…]",
                "set a product's price (default or for one company)", prices.price,
                "Amounts are per unit in the company's currency (default prices: the seller currency); tax in %. "
                "`category=` sets the EN 16931 VAT category (default auto: derived per invoice from the seller's "
                "and buyer's countries and the buyer's VAT number); S needs tax above 0, the others tax=0; "
                "E needs `exemption=` with its VATEX code (e.g. VATEX-EU-132).",
                _always),
        Command("fx", "fx [list | set <BASE> <QUOTE> <rate> [date=YYYY-MM-DD]] [page=N]",
                "exchange rates used to show VAT in the seller's currency", fx.fx,
                "`fx set EUR GBP 0.8523` records 1 EUR = 0.8523 GBP for today (seller time zone) or `date=`. "
                "An invoice uses the latest rate on or before its issue date (direct, inverse, or crossed via "
                "EUR); a run without one is refused.", _word_is(0, "set")),
        Command("schedule", "schedule [page=N]", "upcoming invoice runs across companies", runs.schedule),
        Command("audit", "audit [<co>] [page=N]", "recent configuration changes", audit.audit),
        Command("deliveries", "deliveries [<co>] [failed] [page=N]",
                "e-mails and Slack notices waiting or failed, and why",
                deliveries.deliveries),
        Command("xero", xero.USAGE, "the Xero app and connected organisations (admins change them)", xero.xero,
                "`setup` opens a form for your own Xero app's client id and secret (stored encrypted). `connect` "
                "answers with a Xero link (10 minutes, once); `connect <co>` connects a dropship company's own "
                "organisation (purchase orders). `status` shows scopes, token age and today's calls. `disconnect` "
                "revokes InvoiceBot's access at Xero (confirm button). `xero <co> enable` pushes every invoice and "
                "credit note issued for the company to Xero (ACCREC, contact = its short name); `set status=` "
                "AUTHORISED (default) or DRAFT, `account_code=` (default 200), `tax_types=S:OUTPUT2,Z:ZERORATEDOUTPUT` "
                "(VAT category, optionally with rate: S5:RROUTPUT), `purchase_orders=on` (a matching purchase order "
                "in the company's own organisation; `po_account_code=`, `po_tax_types=`); `retry` sends refused "
                "documents again. See docs/xero.md.",
                lambda a: _word_is(0, "connect", "disconnect")(a) or xero_company.mutates(a)),
        Command("admins", "admins [add|remove @user]", "who may change configuration", admins.admins,
                mutates=_word_is(0, "add", "remove")),
    )
}


def mutates(text: str) -> bool:
    """Whether ``/invoicing text`` asks for a change (``company add``, ``… set``, ``run`` without
    dry-run, ``invoice … resend``…). Text that does not parse, an unknown command and help
    are reads: they answer with an error or text and change nothing."""
    try:
        tokens = tokenize(text)
    except InvoiceBotError:
        return False
    if not tokens.words or tokens.words[0].lower() not in COMMANDS:
        return False
    return COMMANDS[tokens.words[0].lower()].mutates(Args(tokens.words[1:], tokens.options))


def usage(name: str) -> str:
    return f"`/invoicing {COMMANDS[name].usage}`"


def help_reply() -> Reply:
    lines = [f"`{c.usage}` — {c.summary}" for c in COMMANDS.values()]
    return message("InvoiceBot commands", header("/invoicing commands"), section("\n".join(lines)),
                   context("`<co>` is a company's short name. `/invoicing help <command>` for details."))


async def _help(args: Args) -> Reply:
    if not args.words:
        return help_reply()
    name = args.words[0].lower()
    if name not in COMMANDS:
        return error_reply(f"There is no command {name!r}.", None)
    c = COMMANDS[name]
    details = f"\n{c.details}" if c.details else ""
    return message(f"/invoicing {c.usage}", section(f"{usage(name)}\n{c.summary}.{details}"))


def error_reply(text: str, command: str | None) -> Reply:
    hint = f"Usage: {usage(command)}" if command else "`/invoicing help` lists the commands."
    return message(text, section(f":warning: {text}"), context(hint), error=True)


async def dispatch(text: str, ctx: CommandContext) -> Reply:
    """Answer one ``/invoicing`` text for ``ctx``. Never raises."""
    name: str | None = None
    try:
        tokens = tokenize(text)
        if not tokens.words:
            return help_reply()
        name = tokens.words[0].lower()
        if name not in COMMANDS:
            name = None
            return error_reply(f"Unknown command {tokens.words[0]!r}.", None)
        return await COMMANDS[name].handler(Args(tokens.words[1:], tokens.options), ctx)
    except InvoiceBotError as exc:
        return error_reply(exc.message, name)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("command failed ref=%s tenant=%s user=%s command=%s", ref, ctx.tenant.name, ctx.user_id, name)
        return error_reply(f"Something went wrong on our side (ref {ref}). Please try again; if it keeps "
                           "happening, quote the ref to the InvoiceBot team.", None)
