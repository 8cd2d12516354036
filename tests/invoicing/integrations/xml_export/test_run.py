"""An XML export run: which orders go into the file, revisions, skipped reasons, a gapless sequence, one transaction."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from invoicing.billing.runs import RunReport
from invoicing.errors import NotEligible
from invoicing.ingest.order_sync import ItemInput
from invoicing.integrations.pdf_emailer.run import run_company as invoice_company
from invoicing.integrations.xml_export import run as xml_run
from invoicing.integrations.xml_export import settings as xml_settings
from invoicing.integrations.xml_export.validation import validate_orders_file
from models import (
    InvoiceRun,
    NoticeKind,
    Order,
    RunOutcome,
    SlackNotice,
    XmlExport,
    XmlExportItem,
    XmlExportStatus,
)
from tests import factories
from tests.invoicing.integrations.xml_export.helpers import NS, at, refs_in, setup, xml_of


async def _run(tenant, company, hours: float = 1, **options) -> RunReport:
    return await xml_run.run_company(tenant, company, clock=lambda: at(hours), actor="test", **options)


async def test_a_run_writes_one_valid_file_with_the_eligible_orders_and_reports_the_skipped(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="A-1", items=[ItemInput("MUG", 2), ItemInput("TEE", 1)])
    await factories.order(company, ref="A-2", sku="TEE")
    await factories.order(company, ref="HELD", on_hold=True)
    await factories.order(company, ref="ERR", error="address unreadable")
    await factories.order(company, ref="NOPRICE", sku="CAP")
    await factories.order(company, ref="LATER", dispatched_at=at(5))
    await factories.order(company, ref="OPEN", status="in_production")

    report = await _run(tenant, company)

    assert report.outcome == RunOutcome.EXPORTED and report.orders_invoiced == 2
    assert report.skipped_by_reason == {"on hold": 1, "has an error (include_errors is off)": 1,
                                        "no price for SKU CAP": 1}
    [export] = await XmlExport.all()
    assert (export.sequence, export.file_name, export.status) == (1, "inkwell-zeta-000001.xml", XmlExportStatus.PENDING)
    data = xml_of(export)
    assert refs_in(data) == ["A-1", "A-2"]
    path = tmp_path / export.file_name
    path.write_bytes(data)
    validate_orders_file(path)  # what is queued is a valid file
    root = etree.fromstring(data)
    first = root.find(".//x:Order", NS)
    assert first is not None and first.get("revision") == "0"
    # MUG: 2 × 4.50 goods + 2 × 1.25 shipping, TEE: 7.00; VAT 20 % over the invoice nets.
    assert first.findtext("x:Totals/x:Net", namespaces=NS) == "18.50"
    assert first.findtext("x:Totals/x:Gross", namespaces=NS) == "22.20"
    assert first.findtext("x:Shipping/x:Net", namespaces=NS) == "2.50"
    assert sorted(e.findtext("x:OrderRef", namespaces=NS) for e in root.iterfind(".//x:SkippedOrder", NS)) == \
        ["ERR", "HELD", "NOPRICE"]
    ledger = await XmlExportItem.filter(export_id=export.id).order_by("order_id").values_list("revision", flat=True)
    assert list(ledger) == [0, 0]
    run = await InvoiceRun.get(id=report.run_id)
    assert run.outcome == RunOutcome.EXPORTED and run.orders_invoiced == 2 and run.orders_skipped == 3
    notice = await SlackNotice.get(kind=NoticeKind.XML_EXPORTED)
    assert notice.payload["location"] == (tmp_path / "share" / export.file_name).as_uri()
    assert notice.payload["orders"] == 2


async def test_nothing_to_export_writes_no_file_and_uses_no_sequence_number(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="HELD", on_hold=True)
    report = await _run(tenant, company)
    assert report.outcome == RunOutcome.NO_ORDERS
    assert await XmlExport.all().count() == 0
    await factories.order(company, ref="B-1")
    await _run(tenant, company, 2)
    assert [e.sequence for e in await XmlExport.all()] == [1]


async def test_an_order_goes_once_and_again_as_a_revision_after_a_change_until_it_is_invoiced(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="R-1")
    await factories.order(company, ref="R-2")
    await _run(tenant, company, 1)
    assert (await _run(tenant, company, 2)).outcome == RunOutcome.NO_ORDERS  # unchanged: not again

    await factories.order(company, ref="R-1", items=[ItemInput("MUG", 3)])  # changed after export
    await _run(tenant, company, 3)
    second = await XmlExport.get(sequence=2)
    assert refs_in(xml_of(second)) == ["R-1"]
    assert etree.fromstring(xml_of(second)).find(".//x:Order", NS).get("revision") == "1"  # type: ignore[union-attr]

    await factories.order(company, ref="R-2", items=[ItemInput("MUG", 5)])
    await factories.emailer(company, enabled=True)
    await invoice_company(tenant, company, clock=lambda: at(4))  # invoiced now
    assert await Order.filter(company_id=company.id, invoice_id__isnull=False).count() == 2
    assert (await _run(tenant, company, 5)).outcome == RunOutcome.NO_ORDERS  # invoiced since: never again
    assert await XmlExport.all().count() == 2


async def test_an_invoiced_order_never_exported_goes_once_with_its_invoice_number(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="I-1")
    await factories.emailer(company, enabled=True)
    report = await invoice_company(tenant, company, clock=lambda: at(0.5))
    await _run(tenant, company)
    [export] = await XmlExport.all()
    number = etree.fromstring(xml_of(export)).findtext(".//x:Order/x:InvoiceNumber", namespaces=NS)
    assert number == report.invoice_number
    assert (await _run(tenant, company, 2)).outcome == RunOutcome.NO_ORDERS


async def test_the_same_file_has_the_same_bytes(db, tmp_path: Path):
    """gzip with mtime 0 and a deterministic writer: the stored body is a function of the file."""
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="D-1")
    await _run(tenant, company)
    [export] = await XmlExport.all()
    assert xml_run.pack_bytes(xml_of(export))[0] == export.body


async def test_two_runs_at_once_take_consecutive_sequence_numbers_and_share_no_order(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    for n in range(6):
        await factories.order(company, ref=f"C-{n}")

    async def one(hours: float) -> RunReport:
        return await _run(tenant, company, hours)

    reports = await asyncio.gather(one(1), one(1.5))
    assert sorted(r.outcome for r in reports) == [RunOutcome.EXPORTED, RunOutcome.NO_ORDERS]
    await factories.order(company, ref="C-9")
    await _run(tenant, company, 2)
    assert [e.sequence for e in await XmlExport.all().order_by("sequence")] == [1, 2]
    assert await XmlExportItem.all().count() == 7
    assert len(set(await XmlExportItem.all().values_list("order_id", flat=True))) == 7


async def test_a_dry_run_shows_what_would_go_and_writes_nothing(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="Y-1")
    report = await _run(tenant, company, dry_run=True)
    assert report.dry_run and report.orders_invoiced == 1 and "inkwell-zeta-000001.xml" in report.message
    assert await XmlExport.all().count() == 0 and await InvoiceRun.all().count() == 0


async def test_a_run_without_destination_is_refused_and_recorded(db, tmp_path: Path):
    tenant = await factories.tenant()
    company = await factories.company(tenant, "zeta")
    with pytest.raises(NotEligible, match="no destination"):
        await _run(tenant, company)
    [run] = await InvoiceRun.all()
    assert run.outcome == RunOutcome.REFUSED and await XmlExport.all().count() == 0


async def test_a_crash_inside_the_run_leaves_no_file_and_no_ledger(db, tmp_path: Path):
    tenant, company = await setup(tmp_path)
    await factories.order(company, ref="K-1")

    def crash(step: str) -> None:
        if step == "ledgered":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        await _run(tenant, company, checkpoint=crash)
    assert await XmlExport.all().count() == 0 and await XmlExportItem.all().count() == 0
    await _run(tenant, company, 2)
    assert [e.sequence for e in await XmlExport.all()] == [1]


async def test_invoices_content_exports_each_issued_invoice_and_credit_note_once_as_ubl(db, tmp_path: Path):
    from invoicing.billing.credit_notes import issue_credit_note  # noqa: F401 - imported to fail loudly if moved

    tenant, company = await setup(tmp_path)
    await xml_settings.configure(company, now=factories.T0, actor="test", box=xml_settings.SecretBox(None),
                                 content="invoices")
    await factories.order(company, ref="U-1")
    await factories.emailer(company, enabled=True)
    report = await invoice_company(tenant, company, clock=lambda: at(0.5))
    await _run(tenant, company)
    [export] = await XmlExport.all()
    assert export.invoice_id == report.invoice_id and export.credit_note_id is None
    root = etree.fromstring(xml_of(export))
    assert etree.QName(root).localname == "Invoice"
    assert Decimal(root.findtext(".//{*}LegalMonetaryTotal/{*}PayableAmount") or "0") == report.gross
    assert (await _run(tenant, company, 2)).outcome == RunOutcome.NO_ORDERS
