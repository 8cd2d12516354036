"""Our issued documents as Xero request elements, and our totals to compare Xero's with.

* An invoice is an ``ACCREC`` invoice: ``InvoiceNumber`` = ours, the contact by its ``ContactID`` (the
  contact whose ``ContactNumber`` is the company's short name, ``contacts``), one line per our line,
  ``LineAmountTypes`` Exclusive, the company's account code and the tax type of each line's VAT
  category (``company_settings.tax_type_for``), currency, issue and due dates (the seller's time zone),
  ``Reference`` = the period.
* A credit note is an ``ACCRECCREDIT`` credit note with ``CreditNoteNumber`` = ours, ``Reference`` naming
  the invoice it credits.
* A purchase order (the company's organisation) is ``SUBMITTED``, the seller as supplier contact,
  ``Reference`` = our invoice number, purchase-side tax types.

Each line carries ``TaxAmount`` (Xero: "can be overridden if the calculated TaxAmount is not correct"):
our VAT is computed per (category, rate) band, Xero's per line, so the band's tax is spread over its
lines (largest remainder) and Xero's ``TotalTax`` is ours. Amounts go as JSON numbers written from
``Decimal`` (never through float): ``encode`` writes the exact text that is stored and sent again.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from invoicing.billing.fx import issue_day
from invoicing.errors import InvoiceBotError
from invoicing.integrations.xero.company_settings import XeroCompanySettings, tax_type_for
from models import CreditNote, CreditNoteLine, Invoice, InvoiceLine

CENT = Decimal("0.01")
_MARK = f"__dec_{secrets.token_hex(6)}__"
_MARKED = re.compile(rf'"{_MARK}(-?[0-9]+(?:\.[0-9]+)?)"')


class PayloadError(InvoiceBotError):
    """The document cannot be written for Xero with these settings (e.g. a VAT category without a tax type)."""


@dataclass(frozen=True)
class Totals:
    sub_total: Decimal
    total_tax: Decimal
    total: Decimal

    def as_json(self) -> dict[str, str]:
        return {"SubTotal": str(self.sub_total), "TotalTax": str(self.total_tax), "Total": str(self.total)}


def encode(element: dict[str, Any]) -> str:
    """``element`` as JSON text with every ``Decimal`` as a plain number (exact, not via float)."""
    def mark(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"{_MARK}{value:f}"
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return _MARKED.sub(r"\1", json.dumps(element, default=mark, ensure_ascii=False, separators=(",", ":")))


def ours(document: Invoice | CreditNote) -> Totals:
    net, tax = _cents(Decimal(document.net_total)), _cents(Decimal(document.tax_total))
    return Totals(net, tax, net + tax)


def compare(expected: Totals, answered: dict[str, Any]) -> str:
    """How Xero's answer differs from our totals ("" when equal)."""
    found = []
    for name, value in (("SubTotal", expected.sub_total), ("TotalTax", expected.total_tax),
                        ("Total", expected.total)):
        theirs: Decimal | None
        try:
            theirs = Decimal(str(answered.get(name)))
        except ArithmeticError:
            theirs = None
        if theirs is None or not theirs.is_finite():
            found.append(f"{name} missing in Xero's answer")
        elif theirs != value:
            found.append(f"{name} {_cents(theirs)} in Xero, {value} here")
    return "; ".join(found)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _lines(lines: list[InvoiceLine] | list[CreditNoteLine], mapping: dict[str, str], account: str,
           breakdown: list[dict[str, str]], *, side: str) -> list[dict[str, Any]]:
    """One Xero line per our line, with the band tax spread over the band's lines."""
    out: list[dict[str, Any]] = []
    by_band: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
    for line in lines:
        category = str(line.vat_category or "S")
        rate = Decimal(line.tax_rate)
        tax_type = tax_type_for(mapping, category, f"{rate:f}")
        if tax_type is None:
            setting = "tax_types" if side == "sales" else "po_tax_types"
            raise PayloadError(f"No Xero tax type for VAT category {category} at {rate.normalize():f} %: "
                               f"`set {setting}={category}:<Xero tax type>`.")
        unit = Decimal(line.unit_cost) + Decimal(line.unit_shipping)
        amount = _cents(unit * line.quantity)
        element: dict[str, Any] = {
            "Description": f"{line.order_ref} · {line.sku} · {line.description}"[:4000],
            "Quantity": Decimal(line.quantity), "UnitAmount": unit,
            "TaxType": tax_type, "TaxAmount": _cents(amount * rate / 100),
        }
        if account:
            element["AccountCode"] = account
        by_band[(category, rate.normalize())].append(len(out))
        out.append(element)
        element["_amount"] = amount
    for band in breakdown:
        key = (str(band.get("category") or "S"), Decimal(band["rate"]).normalize())
        members = by_band.get(key, [])
        if not members:
            continue
        rest = _cents(Decimal(band["tax"])) - sum((out[i]["TaxAmount"] for i in members), Decimal(0))
        step = CENT if rest > 0 else -CENT
        for i in sorted(members, key=lambda i: -abs(out[i]["_amount"])):
            if rest == 0:
                break
            out[i]["TaxAmount"] += step
            rest -= step
    for element in out:
        del element["_amount"]
    return out


def _day(document: Invoice | CreditNote) -> date:
    return issue_day(document.issued_at, document.timezone)


def invoice_element(invoice: Invoice, lines: list[InvoiceLine], s: XeroCompanySettings, *,
                    contact_id: str) -> dict[str, Any]:
    day = _day(invoice)
    end = issue_day(invoice.period_end, invoice.timezone)
    start = issue_day(invoice.period_start, invoice.timezone) if invoice.period_start else None
    reference = f"{start} to {end}" if start else f"to {end}"
    return {
        "Type": "ACCREC", "InvoiceNumber": invoice.display_number, "Contact": {"ContactID": contact_id},
        "Date": day.isoformat(), "DueDate": (day + timedelta(days=invoice.payment_terms_days)).isoformat(),
        "Reference": reference, "LineAmountTypes": "Exclusive", "CurrencyCode": invoice.currency,
        "Status": s.status,
        "LineItems": _lines(lines, s.tax_types, s.account_code, invoice.tax_breakdown, side="sales"),
    }


def credit_note_element(note: CreditNote, lines: list[CreditNoteLine], invoice_number: str,
                        s: XeroCompanySettings, *, contact_id: str) -> dict[str, Any]:
    return {
        "Type": "ACCRECCREDIT", "CreditNoteNumber": note.display_number, "Contact": {"ContactID": contact_id},
        "Date": _day(note).isoformat(), "Reference": f"Credit for {invoice_number}: {note.reason}"[:255],
        "LineAmountTypes": "Exclusive", "CurrencyCode": note.currency, "Status": s.status,
        "LineItems": _lines(lines, s.tax_types, s.account_code, note.tax_breakdown, side="sales"),
    }


def purchase_order_element(invoice: Invoice, lines: list[InvoiceLine], s: XeroCompanySettings, *,
                           contact_id: str) -> dict[str, Any]:
    return {
        "Contact": {"ContactID": contact_id}, "Date": _day(invoice).isoformat(),
        "Reference": invoice.display_number, "Status": "SUBMITTED", "LineAmountTypes": "Exclusive",
        "CurrencyCode": invoice.currency,
        "LineItems": _lines(lines, s.po_tax_types, s.po_account_code, invoice.tax_breakdown, side="purchase"),
    }
