"""Sample documents for looking at the PDF: ``.venv/bin/python benchmarks/pdf_samples.py OUT_DIR``.

Writes ``<name>.pdf`` and, when ``pdftoppm`` (poppler-utils) is installed, ``<name>-1.png``
for a DE→FR goods invoice (German labels), a GB→US export, a credit note, a Japanese and
an Arabic buyer. docs/invoice-sample*.png are made from these.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from invoicing.billing.document import DocumentLine, DocumentTaxBand, FxConversion, InvoiceDocument, Party
from invoicing.delivery.pdf import render_invoice_pdf

ISSUED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
_CENT = Decimal("0.01")

DE_SELLER = Party(legal_name="Druckerei Nord GmbH", address_line1="Speicherstadt 12", city="Hamburg",
                  postcode="20457", country="DE", vat_number="DE811111111", company_number="HRB 123456 (AG Hamburg)",
                  email="rechnung@druckerei-nord.de", phone="+49 40 1234567", iban="DE89 3704 0044 0532 0130 00",
                  bic="COBADEFFXXX")  # fmt: skip
FR_BUYER = Party(legal_name="Boutique Lumière SARL", address_line1="14 rue de la République", city="Lyon",
                 postcode="69002", country="FR", vat_number="FR40303265045", company_number="RCS Lyon 303 265 045",
                 email="compta@lumiere.example")  # fmt: skip
GB_SELLER = Party(legal_name="Print Works Ltd", address_line1="1 Printer Lane", city="Leeds", postcode="LS1 4AP",
                  country="GB", vat_number="GB123456789", company_number="01234567",
                  email="accounts@printworks.co.uk", phone="+44 113 496 0000", iban="GB33 BUKB 2020 1555 5555 55",
                  bic="BUKBGB22")  # fmt: skip
US_BUYER = Party(legal_name="Main Street Goods Inc.", address_line1="500 Market Street", address_line2="Suite 210",
                 city="San Francisco", region="CA", postcode="94105", country="US", company_number="EIN 12-3456789",
                 email="ap@mainstreet.example")  # fmt: skip
JP_BUYER = Party(legal_name="株式会社 山田商事", address_line1="千代田区丸の内一丁目1番1号",
                 address_line2="丸の内ビル 12階", city="東京都", postcode="100-0005", country="JP",
                 company_number="法人番号 1234567890123",
                 email="keiri@yamada.example")  # fmt: skip
AE_BUYER = Party(legal_name="شركة النور للتجارة العامة ذ.م.م", address_line1="شارع الشيخ زايد، برج الإمارات",
                 city="دبي", country="AE", vat_number="TRN 100123456700003",
                 email="accounts@alnoor.example")  # fmt: skip
PL_SELLER = Party(legal_name="Przedsiębiorstwo Handlowo-Usługowe „Żółty Łabędź” Spółka z ograniczoną "
                  "odpowiedzialnością Spółka Komandytowa", address_line1="ul. Piotrkowska 104 lok. 7",
                  city="Łódź", postcode="90-926", country="PL", vat_number="PL7251234567",
                  company_number="KRS 0000123456", email="faktury@zoltylabedz.pl",
                  iban="PL61 1090 1014 0000 0712 1981 2874", bic="WBKPPLPP")  # fmt: skip

_PRODUCTS = (
    ("TSH-ORG-M-BLK", "Bio-Baumwoll-T-Shirt, schwarz, M — Frontdruck", Decimal("7.40"), Decimal("2.10"), "shirt"),
    ("MUG-11OZ-WHT", "Keramiktasse 11 oz, weiß, Rundumdruck", Decimal("3.95"), Decimal("1.80"), "mug"),
    ("POS-A2-MAT", "Poster A2, matt 200 g/m², Galerie-Edition mit Archiv-Pigmenttinten gedruckt und in einer "
     "verstärkten Versandrolle verschickt", Decimal("5.10"), Decimal("2.90"), "poster"),
    ("TOTE-NAT", "Stofftasche, natur, beidseitig bedruckt", Decimal("3.20"), Decimal("1.50"), "tote"),
)


def _lines(n: int, rate: str, category: str, descriptions: dict[str, str] | None = None) -> list[DocumentLine]:
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    lines = []
    for i in range(n):
        sku, text, cost, shipping, kind = _PRODUCTS[i % len(_PRODUCTS)]
        quantity = 1 + (i * 7) % 5
        lines.append(DocumentLine(order_ref=f"SO-{104_200 + i}", dispatched_at=start + timedelta(hours=7 * i),
                                  sku=sku, description=(descriptions or {}).get(kind, text), quantity=quantity,
                                  unit_cost=cost, unit_shipping=shipping, tax_rate=Decimal(rate),
                                  net=(quantity * (cost + shipping)).quantize(_CENT),
                                  vat_category=category))  # fmt: skip
    return lines


def document(lines: list[DocumentLine], seller: Party, buyer: Party, currency: str, *, reason: str = "",
             code: str = "", **changes: object) -> InvoiceDocument:  # fmt: skip
    """A consistent document: one band per (category, rate), totals from the lines."""
    nets: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.vat_category, line.tax_rate)
        nets[key] = nets.get(key, Decimal(0)) + line.net
    bands = tuple(DocumentTaxBand(rate=rate, net=net, tax=(net * rate / 100).quantize(_CENT), category=category,
                                  exemption_reason=reason if rate == 0 else "",
                                  exemption_code=code if rate == 0 else "")
                  for (category, rate), net in sorted(nets.items(), key=lambda kv: -kv[0][1]))  # fmt: skip
    net = sum((b.net for b in bands), Decimal(0))
    tax = sum((b.tax for b in bands), Decimal(0))
    zone = ZoneInfo(str(changes.get("timezone", "Europe/Berlin")))
    doc = InvoiceDocument(tenant_name="demo", number="INV-2026-00042", issued_at=ISSUED,
                          period_start=datetime(2026, 11, 1, tzinfo=zone).astimezone(UTC),
                          period_end=datetime(2026, 12, 1, tzinfo=zone).astimezone(UTC), timezone=zone.key,
                          currency=currency, seller=seller, buyer=buyer, lines=tuple(lines),
                          tax_bands=bands, net_total=net, tax_total=tax, gross_total=net + tax, payment_terms_days=30,
                          order_count=len(lines))  # fmt: skip
    return replace(doc, **changes)  # type: ignore[arg-type]


def samples() -> dict[str, InvoiceDocument]:
    de_fr = document(_lines(9, "0", "K"), DE_SELLER, FR_BUYER, "EUR", language="de",
                     reason="Steuerfreie innergemeinschaftliche Lieferung", code="VATEX-EU-IC",
                     notes=("Steuerfreie innergemeinschaftliche Lieferung gemäß § 4 Nr. 1 Buchst. b i. V. m. § 6a UStG "
                            "und Art. 138 Richtlinie 2006/112/EG.",))  # fmt: skip
    en = {"shirt": "Organic cotton T-shirt, black, M — front print", "mug": "Ceramic mug 11 oz, white, wrap-around",
          "poster": "Poster A2, matte 200 g/m², gallery edition with archival pigment inks, shipped in a tube",
          "tote": "Tote bag, natural, 2-sided print"}  # fmt: skip
    gb_us = document(_lines(8, "0", "G", en), GB_SELLER, US_BUYER, "USD", language="en", timezone="Europe/London",
                     reason="Export of goods outside the UK", code="VATEX-EU-G",
                     notes=("Zero-rated export of goods: the goods are shipped to a destination outside the UK "
                            "(VAT Notice 703).",))  # fmt: skip
    gb_eur_lines = _lines(5, "20", "S", en)
    gb_eur = document(gb_eur_lines, GB_SELLER, replace(FR_BUYER, vat_number=""), "EUR", timezone="Europe/London")
    fx_rate = Decimal("0.8523")
    fx_bands = tuple((b.rate, b.category, (b.tax * fx_rate).quantize(_CENT)) for b in gb_eur.tax_bands)
    gb_eur = replace(gb_eur, fx=FxConversion(currency="GBP", rate=fx_rate, rate_date=date(2026, 11, 27), source="ecb",
                                             tax_bands=fx_bands, tax_total=sum((b[2] for b in fx_bands), Decimal(0))))
    credit = replace(document(gb_eur_lines[:2], GB_SELLER, replace(FR_BUYER, vat_number=""), "EUR",
                              timezone="Europe/London"),
                     kind="credit_note", number="CN-000007", original_number="INV-2026-00031",
                     original_issued_at=datetime(2026, 10, 31, 8, 0, tzinfo=UTC),
                     reason="Two mugs arrived broken; credited in full.")  # fmt: skip
    ja = {"shirt": "オーガニックコットンTシャツ 黒 M（前面プリント）", "mug": "マグカップ 白 11オンス",
          "poster": "ポスター A2 マット紙 ギャラリー版", "tote": "トートバッグ 生成り 両面プリント"}
    jp = document(_lines(6, "0", "G", ja), GB_SELLER, JP_BUYER, "JPY", timezone="Europe/London",
                  reason="Export of goods outside the UK", code="VATEX-EU-G")  # fmt: skip
    jp = replace(jp, lines=tuple(replace(line, unit_cost=line.unit_cost * 100, unit_shipping=line.unit_shipping * 100,
                                         net=line.net * 100) for line in jp.lines))  # fmt: skip
    jp = document(list(jp.lines), GB_SELLER, JP_BUYER, "JPY", timezone="Europe/London",
                  reason="Export of goods outside the UK", code="VATEX-EU-G")  # fmt: skip
    ar = {"mug": "كوب سيراميك أبيض ١١ أونصة", "tote": "حقيبة قماشية طبيعية"}
    ae = document(_lines(6, "0", "G", {**en, **ar}), PL_SELLER, AE_BUYER, "EUR", timezone="Europe/Warsaw",
                  reason="Export of goods outside the EU", code="VATEX-EU-G",
                  notes=("VAT exempt export of goods (Art. 146 Directive 2006/112/EC).",))  # fmt: skip
    return {"de-fr": de_fr, "gb-us": gb_us, "gb-eur-fx": gb_eur, "credit-note": credit, "ja": jp, "ar": ae}


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in samples().items():
        path = out / f"{name}.pdf"
        path.write_bytes(render_invoice_pdf(doc))
        if shutil.which("pdftoppm"):
            subprocess.run(["pdftoppm", "-r", "110", "-png", str(path), str(out / name)], check=True)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/invoice-samples")))
