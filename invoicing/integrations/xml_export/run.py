"""One run of a company's XML export: write the next file(s), record them with their ledger, queue the upload.

The whole run is **one database transaction**, like the PDF Emailer's:

    lock this integration row → select the orders (``selection``) → take the next sequence
    (max + 1 of the company's files, under the lock: gapless) → write the file to a temp
    file, streamed (``writer.write_orders``) → validate it against the XSD
    (``validation.validate_orders_file``) → gzip it into ``XmlExport.body`` → create the
    ``XmlExport`` (status ``pending``: the upload outbox row) and its ``XmlExportItem``
    ledger rows → record the run (``InvoiceRun``, outcome ``exported``) → queue the
    channel notice → commit

Nothing leaves the process before the commit: the upload worker (``uploads``) sends the
file afterwards. A crash before the commit leaves nothing (no sequence used, no order
marked); after it, a file whose upload is retried. Nothing to export → no file, no
sequence taken (outcome ``no_orders``).

``content=invoices``: one file per issued invoice and credit note of the company not yet
exported (dated before the cutoff, from ``starting_from``), each UBL 2.1 / Peppol BIS 3.0
(``documents.ubl_document``) with its own sequence number.

Run records: the emailer's ``InvoiceRun`` is reused (its ``integration`` names the kind;
``orders_invoiced`` holds the orders exported, ``message`` the file name), so ``/invoicing
schedule``, the scheduler and the audit of runs see every kind the same way.

``checkpoint(step)`` is called at ``claimed``, ``selected``, ``numbered``, ``written``,
``validated``, ``ledgered`` and ``recorded`` (crash trials kill the process there).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from invoicing.billing.credit_document import credit_document
from invoicing.billing.document import InvoiceDocument
from invoicing.billing.runs import RunReport, Skipped, check_plan
from invoicing.clock import Clock, utc_now
from invoicing.delivery import notices
from invoicing.errors import NotEligible
from invoicing.integrations.xml_export import documents, endpoint, fields, selection
from invoicing.integrations.xml_export.file_names import file_name
from invoicing.integrations.xml_export.records import ORDER_REF_LENGTH, ExportHeader, identifier_problem
from invoicing.integrations.xml_export.settings import KIND, check_ready
from invoicing.integrations.xml_export.validation import validate_orders_file
from invoicing.integrations.xml_export.writer import write_orders
from invoicing.parties.companies import find_company
from invoicing.retrying import transaction_attempts
from invoicing.scheduling.claims import LeaseLost
from models import (
    Company,
    CreditNote,
    CreditNoteLine,
    Integration,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    NoticeKind,
    RunOutcome,
    RunTrigger,
    Tenant,
    XmlContent,
    XmlExport,
    XmlExportItem,
)

log = logging.getLogger(__name__)

Checkpoint = Callable[[str], None]
LeaseCheck = Callable[[], Awaitable[None]]
#: Skipped orders kept by reference on the file row and the run record (counts per reason are complete).
SKIPPED_KEEP = 200


def _no_checkpoint(_: str) -> None:
    return None


async def _no_lease() -> None:
    return None


@dataclass(frozen=True)
class _Run:
    tenant: Tenant
    company: Company
    integration: Integration
    trigger: RunTrigger
    actor: str
    now: datetime
    cutoff: datetime


async def run_company(tenant: Tenant, company: Company, *, trigger: RunTrigger = RunTrigger.MANUAL, actor: str = "",
                      dry_run: bool = False, cutoff: datetime | None = None, clock: Clock = utc_now,
                      checkpoint: Checkpoint = _no_checkpoint, lease_check: LeaseCheck = _no_lease,
                      **_: Any) -> RunReport:
    """Export ``company``'s next file(s) now (manual) or for a scheduled ``cutoff``; see the module doc.

    Raises ``NotEligible`` when the export is refused (OMS Lite, no usable destination); a refused
    non-dry run is recorded with outcome ``refused``.
    """
    now = clock()
    cutoff = cutoff or now
    integration = await Integration.get(company_id=company.id, kind=KIND)
    run = _Run(tenant, company, integration, trigger, actor, now, cutoff)
    try:
        check_plan(tenant)
        check_ready(company, integration.settings or {})
    except NotEligible as refusal:
        if not dry_run:
            async with in_transaction():
                record = await _record(run, RunOutcome.REFUSED, message=refusal.message)
                if trigger != RunTrigger.MANUAL:
                    await notices.queue_run_problem(company, record.id, refusal.message, failed=False, now=now)
        raise
    if dry_run:
        return await _dry_run(run)
    try:
        async for attempt in transaction_attempts():
            async with attempt:
                await Integration.filter(id=integration.id).update(updated_at=now)  # the row lock: one run at once
                await integration.refresh_from_db()
                await lease_check()
                checkpoint("claimed")
                if fields.content_of(integration.settings or {}) == XmlContent.INVOICES:
                    report = await _export_documents(run, checkpoint)
                else:
                    report = await _export_orders(run, checkpoint)
    except LeaseLost:
        raise
    except Exception as exc:
        log.warning("xml export failed tenant=%s company=%s error=%s", tenant.name, company.short_name,
                    type(exc).__name__)
        message = getattr(exc, "message", None) or f"XML export failed ({type(exc).__name__}); no file was written."
        try:
            async with in_transaction():
                record = await _record(run, RunOutcome.FAILED, message=message)
                if trigger != RunTrigger.MANUAL:
                    await notices.queue_run_problem(company, record.id, message, failed=True, now=now)
        except Exception:
            log.exception("could not record failed xml export company=%s", company.short_name)
        raise
    log.info("xml export done tenant=%s company=%s outcome=%s orders=%d message=%r", tenant.name,
             company.short_name, report.outcome.value, report.orders_invoiced, report.message)
    return report


async def run_by_name(tenant: Tenant, short_name: str, **options: Any) -> RunReport:
    """``run_company`` for adapters that hold a name (Slack ``xml <co> run``, the demo)."""
    company = await find_company(tenant, short_name)
    return await run_company(await Tenant.get(id=tenant.id), company, **options)


async def _dry_run(run: _Run) -> RunReport:
    s = run.integration.settings or {}
    if fields.content_of(s) == XmlContent.INVOICES:
        invoices, credits = await _unexported_documents(run)
        count = len(invoices) + len(credits)
        return _report(run, RunOutcome.EXPORTED if count else RunOutcome.NO_ORDERS, dry_run=True, orders=0,
                       skipped=(), message=f"{count} document(s) would be exported.")
    chosen = await selection.select_orders(run.tenant, run.company, run.integration, run.cutoff, spool=None,
                                           lock=False)
    name = file_name(run.tenant.name, run.company.short_name, await _next_sequence(run.company.id))
    outcome = RunOutcome.EXPORTED if chosen.items else RunOutcome.NO_ORDERS
    message = f"Would write {name} → {endpoint.location(s, name)}" if chosen.items else ""
    return _report(run, outcome, dry_run=True, orders=len(chosen.items), skipped=chosen.skipped, message=message,
                   file=name if chosen.items else None, revisions=chosen.revisions)


async def _export_orders(run: _Run, checkpoint: Checkpoint) -> RunReport:
    tenant, company, integration = run.tenant, run.company, run.integration
    with tempfile.TemporaryDirectory(prefix="invoicebot-xml-") as tmp:
        spool_path = Path(tmp) / "orders.pickle"
        with spool_path.open("wb") as spool:
            chosen = await selection.select_orders(tenant, company, integration, run.cutoff, spool=spool, lock=True)
        checkpoint("selected")
        if not chosen.items:
            record = await _record(run, RunOutcome.NO_ORDERS, skipped=chosen.skipped,
                                   message="No orders to export: no file, no sequence number used.")
            return _report(run, RunOutcome.NO_ORDERS, dry_run=False, orders=0, skipped=chosen.skipped,
                           run_id=record.id)
        sequence = await _next_sequence(company.id)
        name = file_name(tenant.name, company.short_name, sequence)
        checkpoint("numbered")
        header = ExportHeader(tenant=tenant.name, company=company.short_name, company_name=company.name,
                              sequence=sequence, file_name=name, created_at=run.now,
                              starting_from=integration.starting_from, cutoff=run.cutoff,
                              skipped=tuple((_safe_ref(s.ref), s.reason) for s in chosen.skipped))
        xml_path = Path(tmp) / name
        count = await asyncio.to_thread(_write, xml_path, spool_path, header)
        checkpoint("written")
        await asyncio.to_thread(validate_orders_file, xml_path)
        checkpoint("validated")
        body, digest, size = await asyncio.to_thread(pack_file, xml_path)
    export = await XmlExport.create(
        tenant_id=tenant.id, company_id=company.id, integration_id=integration.id, sequence=sequence,
        file_name=name, content=XmlContent.ORDERS, next_attempt_at=run.now, sha256=digest, size=size, body=body,
        order_count=count, skipped=_skipped_json(chosen.skipped), cutoff=run.cutoff,
    )
    await XmlExportItem.bulk_create(
        [XmlExportItem(export_id=export.id, order_id=i.order_id, revision=i.revision, fingerprint=i.fingerprint)
         for i in chosen.items], batch_size=2000)
    checkpoint("ledgered")
    return await _finish(run, [export], orders=count, skipped=chosen.skipped, revisions=chosen.revisions,
                         checkpoint=checkpoint)


async def _export_documents(run: _Run, checkpoint: Checkpoint) -> RunReport:
    tenant, company = run.tenant, run.company
    invoices, credits = await _unexported_documents(run)
    checkpoint("selected")
    if not invoices and not credits:
        record = await _record(run, RunOutcome.NO_ORDERS,
                               message="No invoices or credit notes to export: no file, no sequence number used.")
        return _report(run, RunOutcome.NO_ORDERS, dry_run=False, orders=0, skipped=(), run_id=record.id)
    docs = await _documents(tenant, invoices, credits)
    sequence = await _next_sequence(company.id)
    checkpoint("numbered")
    exports: list[XmlExport] = []
    for offset, (invoice, note, doc) in enumerate(docs):
        data = await asyncio.to_thread(documents.ubl_document, doc)
        body, digest, size = pack_bytes(data)
        exports.append(await XmlExport.create(
            tenant_id=tenant.id, company_id=company.id, integration_id=run.integration.id,
            sequence=sequence + offset, file_name=file_name(tenant.name, company.short_name, sequence + offset),
            content=XmlContent.INVOICES, next_attempt_at=run.now, sha256=digest, size=size, body=body,
            order_count=0 if note is not None else invoice.order_count, skipped={}, cutoff=run.cutoff,
            invoice_id=invoice.id, credit_note_id=note.id if note is not None else None))
    checkpoint("written")
    checkpoint("validated")
    checkpoint("ledgered")
    return await _finish(run, exports, orders=0, skipped=(), revisions=0, checkpoint=checkpoint)


async def _finish(run: _Run, exports: list[XmlExport], *, orders: int, skipped: tuple[Skipped, ...],
                  revisions: int, checkpoint: Checkpoint) -> RunReport:
    s = run.integration.settings or {}
    first, last = exports[0], exports[-1]
    names = first.file_name if len(exports) == 1 else f"{first.file_name} … {last.file_name}"
    what = f"{orders} order(s)" if first.content == XmlContent.ORDERS else f"{len(exports)} document(s)"
    message = f"{names}: {what}, queued for upload to {endpoint.location(s, first.file_name)}"
    run.integration.last_cutoff_at = max(filter(None, (run.integration.last_cutoff_at, run.cutoff)))
    await run.integration.save(update_fields=["last_cutoff_at"])
    record = await _record(run, RunOutcome.EXPORTED, orders=orders, skipped=skipped, message=message)
    report = _report(run, RunOutcome.EXPORTED, dry_run=False, orders=orders, skipped=skipped, run_id=record.id,
                     message=message, file=first.file_name, revisions=revisions)
    await notices.queue_integration_notice(run.company, NoticeKind.XML_EXPORTED, f"xml-export:{first.id}", {
        "company": run.company.short_name, "file_name": first.file_name, "last_file_name": last.file_name,
        "files": len(exports), "content": str(first.content), "location": endpoint.location(s, first.file_name),
        "orders": orders, "revisions": revisions, "export_id": first.id, "run_id": record.id,
        "actor": run.actor, **notice_skipped(skipped),
    }, now=run.now)
    checkpoint("recorded")
    return report


def notice_skipped(skipped: tuple[Skipped, ...]) -> dict[str, Any]:
    reasons = sorted(Counter(s.reason for s in skipped).items(), key=lambda kv: -kv[1])[:notices.SKIPPED_REASONS]
    return {"skipped": [{"ref": s.ref, "reason": s.reason} for s in skipped[:notices.SKIPPED_REFS]],
            "skipped_by_reason": dict(reasons)}


async def _next_sequence(company_id: int) -> int:
    """The company's next file number: max + 1 (called under the integration row lock: gapless, unique)."""
    last = await XmlExport.filter(company_id=company_id).order_by("-sequence").limit(1).values_list("sequence")
    return int(last[0][0]) + 1 if last else 1


async def _unexported_documents(run: _Run) -> tuple[list[Invoice], list[CreditNote]]:
    company, integration = run.company, run.integration
    window: dict[str, Any] = {"company_id": company.id, "issued_at__lt": run.cutoff}
    if integration.starting_from is not None:
        window["issued_at__gte"] = integration.starting_from
    done_invoices = {row[0] for row in await XmlExport.filter(company_id=company.id, content=XmlContent.INVOICES,
                                                              credit_note_id=None).values_list("invoice_id")}
    done_credits = {row[0] for row in await XmlExport.filter(company_id=company.id, credit_note_id__isnull=False)
                    .values_list("credit_note_id")}
    invoices = [i for i in await Invoice.filter(**window).order_by("issued_at", "id") if i.id not in done_invoices]
    credits = [c for c in await CreditNote.filter(**window).order_by("issued_at", "id") if c.id not in done_credits]
    return invoices, credits


async def _documents(tenant: Tenant, invoices: list[Invoice], credits: list[CreditNote]
                     ) -> list[tuple[Invoice, CreditNote | None, InvoiceDocument]]:
    """Each document in issue order, invoices and credit notes interleaved by issue time."""
    wanted = {i.id: i for i in invoices}
    for note in credits:
        if note.invoice_id not in wanted:
            wanted[note.invoice_id] = await Invoice.get(id=note.invoice_id)
    lines: dict[int, list[InvoiceLine]] = {}
    for line in await InvoiceLine.filter(invoice_id__in=list(wanted)).order_by("position"):
        lines.setdefault(line.invoice_id, []).append(line)
    base = {iid: InvoiceDocument.from_models(inv, lines.get(iid, []), tenant_name=tenant.name)
            for iid, inv in wanted.items()}
    out: list[tuple[datetime, int, Invoice, CreditNote | None, InvoiceDocument]] = [
        (i.issued_at, 0, i, None, base[i.id]) for i in invoices]
    for note in credits:
        note_lines = await CreditNoteLine.filter(credit_note_id=note.id).order_by("position")
        out.append((note.issued_at, 1, wanted[note.invoice_id], note,
                    credit_document(note, note_lines, base[note.invoice_id])))
    out.sort(key=lambda row: (row[0], row[1], (row[3] or row[2]).id))
    return [(invoice, note, doc) for _, _, invoice, note, doc in out]


def _write(path: Path, spool_path: Path, header: ExportHeader) -> int:
    with path.open("wb") as out, spool_path.open("rb") as source:
        return write_orders(out, header, selection.spooled(source))


def pack_file(path: Path) -> tuple[bytes, str, int]:
    """``(gzip body with mtime 0, sha256 of the file, size)``; the same file always gives the same body."""
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    size = 0
    with path.open("rb") as source, gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as packed:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            packed.write(chunk)
    return buffer.getvalue(), digest.hexdigest(), size


def pack_bytes(data: bytes) -> tuple[bytes, str, int]:
    """``pack_file`` for a file held in memory (the same gzip header, so the same body)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as packed:
        packed.write(data)
    return buffer.getvalue(), hashlib.sha256(data).hexdigest(), len(data)


def unpack_to(body: bytes, path: Path) -> None:
    """Write the file a ``body`` holds to ``path`` (streamed)."""
    with gzip.GzipFile(fileobj=io.BytesIO(body), mode="rb") as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out, 1 << 20)


def _safe_ref(ref: str) -> str:
    if identifier_problem("order ref", ref, ORDER_REF_LENGTH) is None:
        return ref
    return (ref.encode("unicode_escape").decode("ascii").replace("\\t", " ").strip() or "?")[:ORDER_REF_LENGTH]


def _skipped_json(skipped: tuple[Skipped, ...]) -> dict[str, Any]:
    return {"refs": [{"ref": s.ref, "reason": s.reason} for s in skipped[:SKIPPED_KEEP]],
            "by_reason": dict(Counter(s.reason for s in skipped))}


async def _record(run: _Run, outcome: RunOutcome, *, message: str, orders: int = 0,
                  skipped: tuple[Skipped, ...] = ()) -> InvoiceRun:
    return await InvoiceRun.create(
        tenant_id=run.tenant.id, company_id=run.company.id, integration_id=run.integration.id, trigger=run.trigger,
        actor=run.actor, started_at=run.now, finished_at=utc_now(), cutoff=run.cutoff, outcome=outcome,
        message=message, orders_invoiced=orders, orders_skipped=len(skipped),
        skipped=[{"ref": s.ref, "reason": s.reason} for s in skipped[:SKIPPED_KEEP]],
        skipped_by_reason=dict(Counter(s.reason for s in skipped)))


def _report(run: _Run, outcome: RunOutcome, *, dry_run: bool, orders: int, skipped: tuple[Skipped, ...],
            run_id: int | None = None, message: str = "", file: str | None = None, revisions: int = 0) -> RunReport:
    del file, revisions  # in the notice; the report's message names the file
    return RunReport(
        tenant=run.tenant.name, company=run.company.short_name, outcome=outcome, dry_run=dry_run, cutoff=run.cutoff,
        period_start=run.integration.last_cutoff_at or run.integration.starting_from, currency=run.company.currency,
        run_id=run_id, orders_invoiced=orders, skipped=skipped[:SKIPPED_KEEP],
        skipped_by_reason=dict(Counter(s.reason for s in skipped)), message=message, tenant_id=run.tenant.id,
        company_id=run.company.id, integration_id=run.integration.id)
