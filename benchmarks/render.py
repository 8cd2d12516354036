"""Benchmark of the invoice PDF renderer against a naive fpdf2 script.

Run: ``.venv/bin/python benchmarks/render.py [--png DIR]``

Figures (median of N renders, same process, warm caches for both sides except where
stated), with the targets of the issue:

* 20-line Unicode invoice: ≤ 10 ms, and ≤ 0.35 × the naive script
  (new FPDF, ``add_font`` per document, the same rows drawn with ``cell``);
* 500-line invoice: ≤ 150 ms, peak memory growth ≤ 50 MB (tracemalloc);
* for information: a 20-line invoice whose glyph set changes on every render, so
  the font subset cache never hits (the cost of a first-seen glyph set);
* the Factur-X path (render + CII + PDF/A-3 attachment, ``einvoice.hybrid``): 20 lines
  ≤ 25 ms, 500 lines ≤ 250 ms, byte-identical output, and its ratio to the plain PDF.
* for information: a 20-line invoice to a Japanese buyer with Arabic and Hebrew
  descriptions (Noto fallbacks, HarfBuzz shaping), warm and with a new CJK glyph set
  every render (subsetting the 13,000-glyph CJK face is the dominant cost).

The CPU is shared on CI and developer machines: under load the medians move by 2×;
``--runs`` more and compare against a run of the previous commit on the same machine.

``--png DIR`` also writes the sample PDFs there, for ``pdftoppm``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF

from invoicing.billing.document import (
    DocumentLine,
    DocumentTaxBand,
    InvoiceDocument,
    Party,
)
from invoicing.delivery.einvoice.hybrid import render_facturx_pdf
from invoicing.delivery.fonts import faces as fonts
from invoicing.delivery.pdf import render_invoice_pdf

_PRODUCTS = (
    ("TSH-ORG-M-BLK", "Organic cotton T-shirt, black, M — front print Łódź", Decimal("7.40"), Decimal("2.10")),
    ("MUG-11OZ-WHT", "Ceramic mug 11 oz, white, wrap-around print «Ελληνικά»", Decimal("3.95"), Decimal("1.80")),
    ("HOOD-ZIP-L-NVY", "Zip hoodie, navy, L — embroidered logo, Müller & Söhne", Decimal("14.20"), Decimal("3.40")),
    ("POS-A2-MAT", "Poster A2, matte 200 g/m², gallery edition printed with archival pigment inks "
     "and shipped in a reinforced tube", Decimal("5.10"), Decimal("2.90")),
    ("TOTE-NAT", "Tote bag, natural, 2-sided print (€ £ $)", Decimal("3.20"), Decimal("1.50")),
)


_SCRIPTS = ("كوب سيراميك أبيض", "חולצת כותנה אורגנית", "マグカップ 白 11オンス", "Ceramic mug, white")


def build_document(n_lines: int, *, buyer_name: str = "Müller & Söhne GmbH") -> InvoiceDocument:
    """A realistic EUR invoice from a Polish printer to a German retailer (reverse charged)."""
    start = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    lines = []
    for i in range(n_lines):
        sku, description, cost, shipping = _PRODUCTS[i % len(_PRODUCTS)]
        quantity = 1 + (i * 7) % 5
        lines.append(
            DocumentLine(
                order_ref=f"SO-{104_200 + i}",
                dispatched_at=start + timedelta(minutes=13 * i + 600),
                sku=sku,
                description=description,
                quantity=quantity,
                unit_cost=cost,
                unit_shipping=shipping,
                tax_rate=Decimal("0"),
                net=quantity * (cost + shipping),
            )
        )
    net = sum((line.net for line in lines), Decimal("0"))
    return InvoiceDocument(
        tenant_name="lodz-druk",
        number=f"LD-2026-{n_lines:05d}",
        issued_at=datetime(2026, 11, 8, 0, 5, tzinfo=UTC),
        period_start=start,
        period_end=datetime(2026, 11, 7, 23, 0, tzinfo=UTC),  # midnight in Warsaw
        timezone="Europe/Warsaw",
        currency="EUR",
        seller=Party(
            legal_name="Łódź Druk Sp. z o.o.",
            address_line1="ul. Piotrkowska 104",
            city="Łódź",
            postcode="90-926",
            country="PL",
            vat_number="PL7251234567",
            company_number="KRS 0000123456",
            email="faktury@lodzdruk.pl",
            phone="+48 42 123 45 67",
            iban="PL61 1090 1014 0000 0712 1981 2874",
            bic="WBKPPLPP",
        ),
        buyer=Party(
            legal_name=buyer_name,
            address_line1="Königstraße 12",
            address_line2="Hinterhaus, 3. OG",
            city="Stuttgart",
            postcode="70173",
            country="DE",
            vat_number="DE123456789",
            company_number="HRB 765432",
            email="buchhaltung@mueller-soehne.de",
        ),
        lines=tuple(lines),
        tax_bands=(DocumentTaxBand(rate=Decimal("0"), net=net, tax=Decimal("0.00")),),
        net_total=net,
        tax_total=Decimal("0.00"),
        gross_total=net,
        payment_terms_days=30,
        order_count=n_lines,
    )


def naive_render(doc: InvoiceDocument) -> bytes:
    """What a first fpdf2 script does: parse the fonts per document, one cell per value."""
    pdf = FPDF(format="A4")
    fonts.attach_by_add_font(pdf)
    pdf.set_creation_date(doc.issued_at)
    pdf.add_page()
    pdf.set_font(fonts.FAMILY, "B", 16)
    pdf.cell(0, 10, doc.seller.legal_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.FAMILY, "", 8)
    pdf.cell(0, 6, f"Invoice {doc.number} for {doc.buyer.legal_name}", new_x="LMARGIN", new_y="NEXT")
    widths = (25, 19, 22, 38, 10, 18, 17, 12, 21)
    for line in doc.lines:
        values = (line.order_ref, line.dispatched_at.strftime("%d %b %Y"), line.sku, line.description[:28],
                  str(line.quantity), f"{line.unit_cost:,}", f"{line.unit_shipping:,}", f"{line.tax_rate}",
                  f"{line.net:,}")  # fmt: skip
        for width, value in zip(widths, values, strict=True):
            pdf.cell(width, 5.5, value, border="B", align="L" if width in (25, 22, 38) else "R")
        pdf.ln()
    pdf.set_font(fonts.FAMILY, "B", 10)
    pdf.cell(0, 8, f"Total due {doc.gross_total:,} {doc.currency}", align="R")
    return bytes(pdf.output())


def median_ms(render: Callable[[InvoiceDocument], bytes], docs: list[InvoiceDocument]) -> float:
    timings = []
    for doc in docs:
        started = time.perf_counter()
        render(doc)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def peak_growth_mb(render: Callable[[InvoiceDocument], bytes], doc: InvoiceDocument) -> float:
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    render(doc)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - base) / 2**20


def verdict(ok: bool) -> str:
    return "target met" if ok else "target MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="renders per 20-line figure")
    parser.add_argument("--png", type=Path, help="also write the sample PDFs to this folder")
    args = parser.parse_args()
    small, large = build_document(20), build_document(500)

    started = time.perf_counter()
    render_invoice_pdf(small)  # loads the fonts once per process
    print(f"first render in this process (parses the fonts): {(time.perf_counter() - started) * 1000:.1f} ms")
    for _ in range(3):
        render_invoice_pdf(small), naive_render(small)

    ours = median_ms(render_invoice_pdf, [small] * args.runs)
    naive = median_ms(naive_render, [small] * args.runs)
    ratio = ours / naive
    print(f"20-line invoice, ours:  {ours:7.2f} ms  (target ≤ 10 ms)   {verdict(ours <= 10)}")
    print(f"20-line invoice, naive: {naive:7.2f} ms")
    print(f"ratio ours/naive:       {ratio:7.2f}     (target ≤ 0.35)   {verdict(ratio <= 0.35)}")

    fresh = [build_document(20, buyer_name=f"Käufer {chr(0x391 + i)}{chr(0x100 + 3 * i)} AG") for i in range(10)]
    cold = median_ms(render_invoice_pdf, fresh)
    print(f"20-line invoice, new glyph set every render (subset cache miss): {cold:.2f} ms  (information)")

    scripts = [replace(build_document(20, buyer_name=f"株式会社 山田商事 {chr(0x4E00 + 37 * i)}"),
                       lines=tuple(replace(line, description=_SCRIPTS[j % len(_SCRIPTS)])
                                   for j, line in enumerate(small.lines)))
               for i in range(6)]  # fmt: skip
    render_invoice_pdf(scripts[0])
    warm = median_ms(render_invoice_pdf, [scripts[0]] * 10)
    cold_cjk = median_ms(render_invoice_pdf, scripts[1:])
    print(f"20-line invoice in CJK, Arabic, Hebrew: {warm:.2f} ms warm, {cold_cjk:.2f} ms with a new CJK glyph set"
          "  (information)")  # fmt: skip

    render_invoice_pdf(large)
    ours_large = median_ms(render_invoice_pdf, [large] * 7)
    naive_large = median_ms(naive_render, [large] * 3)
    print(f"500-line invoice, ours: {ours_large:7.2f} ms  (target ≤ 150 ms)  {verdict(ours_large <= 150)}"
          f"   naive: {naive_large:.2f} ms")  # fmt: skip
    growth = peak_growth_mb(render_invoice_pdf, large)
    print(f"500-line invoice, peak memory growth: {growth:.1f} MB  (target ≤ 50 MB)  {verdict(growth <= 50)}")

    assert render_invoice_pdf(large) == render_invoice_pdf(large), "renders must be byte-identical"
    facturx_section(args.runs)
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
        (args.png / "invoice-20.pdf").write_bytes(render_invoice_pdf(small))
        (args.png / "invoice-500.pdf").write_bytes(render_invoice_pdf(large))
    return 0


def intra_community(doc: InvoiceDocument) -> InvoiceDocument:
    """The benchmark invoice as what it is for EN 16931: an exempt intra-Community supply (K, VATEX-EU-IC)."""
    return dataclasses.replace(
        doc, lines=tuple(dataclasses.replace(line, vat_category="K") for line in doc.lines),
        tax_bands=tuple(dataclasses.replace(band, category="K", exemption_code="VATEX-EU-IC",
                                            exemption_reason="Intra-Community supply (Article 138 Directive "
                                                             "2006/112/EC)") for band in doc.tax_bands))


def facturx_section(runs: int) -> None:
    """Factur-X: the plain render plus CII and the PDF/A-3 attachment, against the plain PDF."""
    small, large = intra_community(build_document(20)), intra_community(build_document(500))
    for _ in range(3):
        render_facturx_pdf(small)
    plain = median_ms(render_invoice_pdf, [small] * runs)
    hybrid = median_ms(render_facturx_pdf, [small] * runs)
    print(f"20-line Factur-X:       {hybrid:7.2f} ms  (target ≤ 25 ms)   {verdict(hybrid <= 25)}"
          f"   ×{hybrid / plain:.2f} the plain PDF ({plain:.2f} ms)")
    render_facturx_pdf(large)
    plain_large = median_ms(render_invoice_pdf, [large] * 7)
    hybrid_large = median_ms(render_facturx_pdf, [large] * 7)
    print(f"500-line Factur-X:      {hybrid_large:7.2f} ms  (target ≤ 250 ms)  {verdict(hybrid_large <= 250)}"
          f"   ×{hybrid_large / plain_large:.2f} the plain PDF ({plain_large:.2f} ms)")
    same = all(render_facturx_pdf(doc) == render_facturx_pdf(doc) for doc in (small, large))
    print(f"Factur-X bytes identical across renders: {same}  {verdict(same)}")
    assert same, "Factur-X renders must be byte-identical"


if __name__ == "__main__":
    raise SystemExit(main())
