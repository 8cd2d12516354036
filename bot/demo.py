"""``invoicebot demo``: a believable tenant, ~300 orders, one invoicing pass, a summary.

The seed is deterministic (fixed random seed, dates relative to the first run) and
happens once per database; running the demo again re-runs invoicing, which finds
nothing new to invoice — proving that orders are never invoiced twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from invoicing import audit
from invoicing.billing.document import InvoiceDocument
from invoicing.billing.fx import issue_day, set_rate
from invoicing.billing.runs import RunReport
from invoicing.delivery.mail import attachment_filename, mail_domain
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.pdf import render_invoice_pdf
from invoicing.delivery.transport import FileTransport
from invoicing.ingest.catalog import PriceInput, set_product
from invoicing.ingest.order_sync import ItemInput, upsert_order
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.integrations.xml_export import run as xml_run
from invoicing.integrations.xml_export import settings as xml_settings
from invoicing.integrations.xml_export.uploads import Uploads
from invoicing.parties.companies import create_company
from invoicing.parties.tenants import create_tenant
from invoicing.secrets import SecretBox
from models import Company, FxSource, Integration, IntegrationKind, Invoice, Tenant

TENANT = "inkwell"
SELLER = {
    "legal_name": "Inkwell Print & Ship Ltd",
    "address_line1": "Unit 4, Riverside Works",
    "address_line2": "Hunslet Road",
    "city": "Leeds",
    "region": "West Yorkshire",
    "postcode": "LS10 1AB",
    "country": "GB",
    "vat_number": "GB980780684",
    "company_number": "08123456",
    "email": "accounts@inkwell-print.example",
    "phone": "+44 113 496 0000",
    "iban": "GB33BUKB20201555555555",
    "bic": "BUKBGB22",
}


@dataclass(frozen=True)
class Retailer:
    short: str
    name: str
    country: str
    currency: str
    timezone: str
    accounting: dict[str, str]
    orders: int
    include_errors: bool


RETAILERS = (
    Retailer("giftory", "Giftory", "GB", "GBP", "Europe/London", {
        "legal_name": "Giftory Ltd", "address_line1": "12 Shoreditch High Street", "city": "London",
        "postcode": "E1 6PG", "vat_number": "GB 434 0312 01", "company_number": "11223344",
        "email": "accounts@giftory.example", "payment_terms_days": "14"}, 120, False),
    Retailer("druckhaus", "Müller & Söhne Druckhaus", "DE", "EUR", "Europe/Berlin", {
        "legal_name": "Müller & Söhne Druckhaus GmbH", "address_line1": "Friedrichstraße 123", "city": "Berlin",
        "postcode": "10117", "vat_number": "DE136695976", "company_number": "HRB 123456 B",
        "email": "buchhaltung@mueller-soehne.example", "payment_terms_days": "30"}, 100, False),
    Retailer("maplewood", "Maplewood Home Goods", "US", "USD", "America/New_York", {
        "legal_name": "Maplewood Home Goods Inc.", "address_line1": "88 Congress Street", "city": "Portland",
        "region": "ME", "postcode": "04101", "email": "ap@maplewood.example", "payment_terms_days": "30"},
        80, True),
)

# sku: (name, default GBP cost, shipping, UK VAT %, {retailer: (cost, shipping)} in their currency)
PRODUCTS: dict[str, tuple[str, str, str, str, dict[str, tuple[str, str]]]] = {
    "MUG-11OZ": ("Ceramic mug 11oz, full-wrap print", "4.20", "1.10", "20",
                 {"druckhaus": ("4.95", "1.40"), "maplewood": ("5.40", "2.10")}),
    "TEE-ORG-M": ("Organic cotton T-shirt, M", "7.85", "1.60", "20",
                  {"druckhaus": ("9.10", "1.90"), "maplewood": ("9.80", "2.60")}),
    "KIDS-TEE-5Y": ("Kids T-shirt, age 5 (zero-rated)", "5.10", "1.60", "0",
                    {"druckhaus": ("5.90", "1.90")}),
    "POSTER-A2": ("Poster A2, 200gsm silk", "3.333", "2.25", "20",
                  {"druckhaus": ("3.90", "2.60"), "maplewood": ("4.25", "3.10")}),
    "CANVAS-3040": ("Canvas 30×40 cm, 18mm frame", "11.50", "3.95", "20",
                    {"maplewood": ("14.75", "5.20")}),
    "TOTE-NAT": ("Tote bag, natural", "3.05", "1.10", "20",
                 {"druckhaus": ("3.60", "1.30"), "maplewood": ("3.95", "1.80")}),
}
DEMO_RATES = {"EUR": "0.8523", "USD": "0.7874"}
NO_PRICE_SKU = "PHONE-CASE-14"  # in the catalogue feed but never priced: orders are skipped


async def seed(now: datetime) -> Tenant:
    """Create the demo tenant, retailers, prices and ~300 orders (once)."""
    tenant = await create_tenant(TENANT, slack_team_id="T0DEMO0001", plan="oms", currency="GBP", actor="demo")
    tenant.update_from_dict({**SELLER, "invoice_prefix": "INK-", "timezone": "Europe/London"})
    await tenant.save()
    for r in RETAILERS:
        await create_company(tenant, r.short, name=r.name, country=r.country, currency=r.currency,
                             timezone=r.timezone, channel="#billing", accounting=r.accounting, actor="demo")
        await Integration.filter(company__short_name=r.short, company__tenant_id=tenant.id,
                                 kind=IntegrationKind.PDF_EMAILER).update(
            enabled=True, include_errors=r.include_errors, settings={"bcc": ["billing-ops@inkwell-print.example"]})
    for sku, (name, cost, shipping, vat, overrides) in PRODUCTS.items():
        prices = [PriceInput(None, cost, shipping, vat)]
        # Exports from the UK (DE, US buyers) are zero-rated.
        prices += [PriceInput(short, c, s, "0") for short, (c, s) in overrides.items()]
        await set_product(tenant, sku, name=name, prices=prices, actor="demo")
    # EUR and USD invoices show their VAT in GBP too, so the demo needs rates on record
    # (illustrative, as ops would set them with `/invoicing fx set`).
    for base, rate in DEMO_RATES.items():
        await set_rate(tenant, base, "GBP", rate, issue_day(now, tenant.timezone) - timedelta(days=1),
                       source=FxSource.OPS, actor="demo")
    rng = random.Random(20261125)
    skus = list(PRODUCTS)
    weights = [30, 25, 8, 20, 5, 12]  # canvases and kids tees are the rare ones
    for r in RETAILERS:
        company = await Company.get(tenant_id=tenant.id, short_name=r.short)
        for n in range(1, r.orders + 1):
            roll = rng.random()
            status, on_hold, error = "dispatched", False, None
            if roll < 0.06:
                on_hold = True
            elif roll < 0.12:
                error = rng.choice(["Artwork resolution below 150 dpi", "Address failed validation"])
            elif roll < 0.17:
                status = "cancelled"
            elif roll < 0.27:
                status = rng.choice(["received", "in_production"])
            items = [ItemInput(rng.choices(skus, weights)[0], rng.choice([1, 1, 1, 2, 3, 5]))
                     for _ in range(rng.choice([1, 1, 2, 3]))]
            if rng.random() < 0.04:
                items.append(ItemInput(NO_PRICE_SKU, 1, "Phone case, iPhone 14"))
            dispatched = now - timedelta(days=rng.uniform(0.2, 13.5)) if status == "dispatched" else None
            await upsert_order(
                company, f"{r.short[:3].upper()}-{10000 + n}", items=items, status=status, dispatched_at=dispatched,
                on_hold=on_hold, error=error,
                ship_to={"name": "Customer", "line1": "1 Example Road", "city": "Somewhere", "postcode": "X1 1XX",
                         "country": r.country},
            )
    await audit.record(tenant.id, actor="demo", action="demo.seed", target="tenant:inkwell",
                       new={"orders": sum(r.orders for r in RETAILERS)})
    return tenant


@dataclass(frozen=True)
class DemoResult:
    seeded: bool
    reports: list[RunReport]
    pdfs: list[Path]
    emails: list[Path]
    #: The XML export files written this time (one retailer's, to a local directory under the data dir).
    xml_files: tuple[Path, ...] = ()


async def run_demo(now: datetime, *, data_dir: Path, outbox_dir: Path, mail_from: str) -> DemoResult:
    """Seed if needed, invoice every retailer once, write the PDFs and deliver to the file outbox."""
    tenant = await Tenant.get_or_none(name=TENANT)
    seeded = tenant is None
    if tenant is None:
        tenant = await seed(now)
    domain = mail_domain(mail_from)
    reports = [await run_by_name(tenant, r.short, actor="demo", clock=lambda: now, mail_domain=domain)
               for r in RETAILERS]
    pdf_dir = data_dir / "invoices"
    pdf_dir.mkdir(parents=True, exist_ok=True)
    pdfs = []
    for report in reports:
        if report.invoice_id is None:
            continue
        document = await InvoiceDocument.load(await Invoice.get(id=report.invoice_id))
        path = pdf_dir / attachment_filename(str(report.invoice_number))  # a prefix may hold "/"
        path.write_bytes(render_invoice_pdf(document))
        pdfs.append(path)
    sent = [o for o in await Outbox(FileTransport(outbox_dir), render_invoice_pdf, mail_from,
                                    clock=lambda: now).deliver_due() if o.status == "sent"]
    emails = sorted(path for o in sent for path in outbox_dir.glob(f"{o.invoice_number}-*.eml"))
    return DemoResult(seeded, reports, pdfs, emails, await export_xml(tenant, now, data_dir / "xml-export"))


#: The retailer whose orders the demo exports as XML (the embedded default: a local directory).
XML_RETAILER = "giftory"


async def export_xml(tenant: Tenant, now: datetime, directory: Path) -> tuple[Path, ...]:
    """Export ``XML_RETAILER``'s new orders to ``directory`` and upload them there; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    company = await Company.get(tenant_id=tenant.id, short_name=XML_RETAILER)
    box = SecretBox(None)  # a local directory needs no secret
    await xml_settings.configure(company, now=now, actor="demo", box=box, dir=str(directory.resolve()))
    await xml_run.run_company(await Tenant.get(id=tenant.id), company, actor="demo", clock=lambda: now)
    outcomes = await Uploads(box, clock=lambda: now).upload_due()
    return tuple(directory / o.file_name for o in outcomes if o.status == "sent")
