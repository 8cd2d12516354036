"""``invoices <co>`` and ``invoice <number> [resend]``: issued invoices, their PDFs, re-sending.

Credit notes are listed under the invoice they credit, and an invoice shows what was
credited and what remains on it (gross, in its currency).
"""

from __future__ import annotations

from decimal import Decimal

from commands.context import Args, CommandContext
from commands.formatting import local, money
from commands.paging import beyond_end, footer, page_of
from commands.replies import (
    FileUpload,
    Reply,
    context,
    fields_section,
    header,
    message,
    section,
)
from invoicing.billing.document import InvoiceDocument
from invoicing.billing.queries import parse_bound
from invoicing.delivery.mail import attachment_filename
from invoicing.errors import InvalidInput, NotFound
from invoicing.parties.companies import find_company
from invoicing.validation import storable
from models import Company, CreditNote, Delivery, Invoice


async def credit_notes_of(invoice_ids: list[int]) -> dict[int, list[CreditNote]]:
    """The credit notes of these invoices, oldest first, by invoice id."""
    found: dict[int, list[CreditNote]] = {}
    for note in await CreditNote.filter(invoice_id__in=invoice_ids).order_by("number") if invoice_ids else []:
        found.setdefault(note.invoice_id, []).append(note)
    return found


def credit_lines(gross: Decimal, currency: str, notes: list[CreditNote], timezone: str) -> list[str]:
    """One line per credit note and what remains; nothing for an invoice never credited."""
    if not notes:
        return []
    credited = sum((Decimal(n.gross_total) for n in notes), Decimal(0))
    rows = [f"    ↳ credit note *{n.display_number}* · {local(n.issued_at, timezone, with_time=False)} · "
            f"{money(n.gross_total, currency)} credited · {n.reason}" for n in notes]
    rows.append(f"    ↳ remains {money(gross - credited, currency)} of {money(gross, currency)}")
    return rows


async def invoices(args: Args, ctx: CommandContext) -> Reply:
    c = await find_company(ctx.tenant, args.word(0, "company"))
    args.no_extra_words(1)
    args.only_options(("from", "to", "page"))
    page = page_of(args)
    query = Invoice.filter(tenant_id=ctx.tenant.id, company_id=c.id)
    if "from" in args.options:
        query = query.filter(issued_at__gte=parse_bound(args.options["from"], "from", end=False, timezone=c.timezone))
    if "to" in args.options:
        query = query.filter(issued_at__lt=parse_bound(args.options["to"], "to", end=True, timezone=c.timezone))
    total = await query.count()
    if not total:
        return message(f"No invoices for {c.short_name}.", section(f"No invoices for *{c.short_name}* in that range."))
    rows = await query.order_by("-number").offset(page.offset).limit(page.size).values(
        "id", "display_number", "issued_at", "order_count", "gross_total", "currency")
    if not rows:
        return message(f"No invoices of {c.short_name} on that page.",
                       section(beyond_end(page, total, "invoices", f"invoices {c.short_name}")))
    notes = await credit_notes_of([r["id"] for r in rows])
    lines: list[str] = []
    for r in rows:
        lines.append(f"*{r['display_number']}* · {local(r['issued_at'], c.timezone, with_time=False)} · "
                     f"{r['order_count']} orders · {money(r['gross_total'], r['currency'])}")
        lines.extend(credit_lines(Decimal(r["gross_total"]), r["currency"], notes.get(r["id"], []), c.timezone))
    return message(f"Invoices of {c.short_name} ({page.span(total)})",
                   header(f"Invoices of {c.short_name} · {page.span(total)}"), section("\n".join(lines)),
                   *footer(page, total, command="invoices", words=[c.short_name], options=args.options))


async def find_invoice(ctx: CommandContext, number: str) -> Invoice:
    """The asking workspace's invoice ``number`` (another tenant's does not exist: ``NotFound``)."""
    found = (await Invoice.get_or_none(tenant_id=ctx.tenant.id, display_number=number)
             if storable(number, 40) else None)
    if found is None:
        raise NotFound(f"No invoice {number!r} in {ctx.tenant.name}. `/invoicing invoices <co>` lists them.")
    return found


async def pdf_upload(found: Invoice, ctx: CommandContext) -> FileUpload:
    """The invoice's PDF, rendered from the stored invoice (issued documents never change)."""
    pdf = await ctx.services.render_pdf(await InvoiceDocument.load(found))
    number = found.display_number
    return FileUpload(filename=attachment_filename(number), content=pdf, title=f"Invoice {number}")


async def invoice(args: Args, ctx: CommandContext) -> Reply:
    number = args.word(0, "invoice number")
    action = args.words[1].lower() if len(args.words) > 1 else ""
    args.no_extra_words(2)
    args.only_options(())
    found = await find_invoice(ctx, number)
    company = await Company.get(id=found.company_id)
    if action == "resend":
        await ctx.require_admin("re-send invoices")
        await ctx.services.resend_invoice(found.display_number, ctx.tenant.id)
        return message(f"Invoice {number} queued for sending again.", section(
            f":incoming_envelope: Invoice *{number}* will be e-mailed again to {found.buyer.get('email')} "
            "(a new message with its own Message-ID; same PDF)."), ephemeral=False)
    if action:
        raise InvalidInput("invoice", f"unknown action {action!r}; use `invoice {number}` or `invoice {number} resend`")
    deliveries = await Delivery.filter(invoice_id=found.id, credit_note_id=None).order_by("id")
    sent = "; ".join(f"{d.kind} {d.status}{' (' + d.last_error + ')' if d.last_error else ''}" for d in deliveries)
    notes = (await credit_notes_of([found.id])).get(found.id, [])
    credited = sum((Decimal(n.gross_total) for n in notes), Decimal(0))
    credit_fields = [("Credited", money(credited, found.currency)),
                     ("Remains", money(Decimal(found.gross_total) - credited, found.currency))] if notes else []
    credit_blocks = [section("\n".join(credit_lines(Decimal(found.gross_total), found.currency, notes,
                                                   company.timezone)))] if notes else []
    return message(
        f"Invoice {number}",
        header(f"Invoice {number} — {company.short_name}"),
        fields_section([
            ("Issued", local(found.issued_at, found.timezone)), ("Orders", str(found.order_count)),
            ("Net", money(found.net_total, found.currency)), ("VAT", money(found.tax_total, found.currency)),
            ("Total", money(found.gross_total, found.currency)), ("Buyer", str(found.buyer.get("legal_name"))),
            *credit_fields,
        ]),
        *credit_blocks,
        context(f"E-mail: {sent or 'none'}"),
        ephemeral=False,
        file=await pdf_upload(found, ctx),
    )
