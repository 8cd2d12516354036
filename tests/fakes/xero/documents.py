"""Creating and updating Invoices, CreditNotes, PurchaseOrders and Contacts the way Xero validates them.

Each element of a request is checked on its own and either becomes an object (what Xero answers: ids,
totals, ``/Date(…)/`` dates) or comes back with ``HasErrors: true`` and ``ValidationErrors``. Rules
modelled beyond the OpenAPI schema (messages as Xero words them where known):
- a contact is named by ``ContactID`` (must exist), ``ContactNumber`` (must exist unless a ``Name`` is
  given, which creates it) or ``Name`` (found or created);
- ``InvoiceNumber`` of sales invoices, ``CreditNoteNumber`` of sales credit notes and
  ``PurchaseOrderNumber`` are unique in the organisation (PUT never updates; POST updates by id/number);
- every ``AccountCode`` and ``TaxType`` must exist in the organisation (configurable per organisation);
  an authorised or submitted invoice/credit note needs an account code on every line;
- creation statuses are DRAFT, SUBMITTED and AUTHORISED; authorised sales invoices need a DueDate;
- ``ContactNumber`` is at most 50 characters;
- a line's ``TaxAmount``, when given, overrides the computed tax (the spec: "can be overriden if the
  calculated TaxAmount is not correct").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.fakes.xero.store import OrgStore, new_id
from tests.fakes.xero.totals import document_totals, line_total

CREATABLE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
CONTACT_NUMBER_MAX = 50


@dataclass(frozen=True)
class Kind:
    """One document collection: its JSON key, id and number fields and the types it accepts."""

    key: str
    id_field: str
    number_field: str
    types: tuple[str, ...]
    unique_types: tuple[str, ...]
    label: str

    def items(self, store: OrgStore) -> list[dict[str, Any]]:
        return {"Invoices": store.invoices, "CreditNotes": store.credit_notes,
                "PurchaseOrders": store.purchase_orders}[self.key]


INVOICES = Kind("Invoices", "InvoiceID", "InvoiceNumber", ("ACCREC", "ACCPAY"), ("ACCREC",), "Invoice")
CREDIT_NOTES = Kind("CreditNotes", "CreditNoteID", "CreditNoteNumber", ("ACCRECCREDIT", "ACCPAYCREDIT"),
                    ("ACCRECCREDIT",), "Credit Note")
PURCHASE_ORDERS = Kind("PurchaseOrders", "PurchaseOrderID", "PurchaseOrderNumber", (), ("",), "Purchase Order")
KINDS = {kind.key.lower(): kind for kind in (INVOICES, CREDIT_NOTES, PURCHASE_ORDERS)}


def ms_date(value: datetime | date) -> str:
    """Xero's JSON date: ``/Date(milliseconds+0000)/``."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return f"/Date({int(value.timestamp() * 1000)}+0000)/"


_MS = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    match = _MS.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC).date()
    try:
        return datetime.fromisoformat(value[:19]).date() if "T" in value else date.fromisoformat(value)
    except ValueError:
        return None


def _decimal(value: Any, default: str) -> Decimal:
    if value is None:
        return Decimal(default)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(default)


def _errored(element: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    return {**element, "HasErrors": True, "StatusAttributeString": "ERROR",
            "ValidationErrors": [{"Message": message} for message in errors]}


def resolve_contact(store: OrgStore, given: Any, errors: list[str], *, created: list[dict[str, Any]],
                    now: datetime) -> dict[str, Any] | None:
    """The contact a document names, creating it from a new Name as Xero does (appended to ``created``)."""
    if not isinstance(given, dict) or not given:
        errors.append("A Contact must be specified for this type of transaction")
        return None
    if given.get("ContactID"):
        contact = store.contact_by_id(str(given["ContactID"]))
        if contact is None:
            errors.append(f"The contact with ContactID {given['ContactID']} could not be found")
        return contact
    number, name = given.get("ContactNumber"), given.get("Name")
    if number:
        contact = store.contact_by_number(str(number))
        if contact is not None:
            return contact
        if not name:
            errors.append(f"A contact with ContactNumber '{number}' could not be found")
            return None
    if name:
        key = str(name).strip().lower()
        contact = store.contact_by_name(key) or next((c for c in created if c["Name"].strip().lower() == key), None)
        if contact is None:
            contact = new_contact(dict(given), now=now)
            created.append(contact)
        return contact
    errors.append("A Contact must be specified for this type of transaction")
    return None


def new_contact(given: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    return {**given, "ContactID": new_id(), "ContactStatus": "ACTIVE", "UpdatedDateUTC": ms_date(now),
            "HasValidationErrors": False}


def contact_errors(store: OrgStore, element: dict[str, Any], *, existing: dict[str, Any] | None) -> list[str]:
    errors = []
    name = element.get("Name", existing.get("Name") if existing else None)
    if not name or not str(name).strip():
        errors.append("The contact name must be specified")
    else:
        other = store.contact_by_name(str(name))
        if other is not None and other is not existing:
            errors.append(f"The contact name {name} is already assigned to another contact. "
                          "The contact name must be unique across all active contacts.")
    number = element.get("ContactNumber")
    if number is not None and len(str(number)) > CONTACT_NUMBER_MAX:
        errors.append(f"The Contact Number must not exceed {CONTACT_NUMBER_MAX} characters")
    return errors


def save_contacts(store: OrgStore, elements: list[dict[str, Any]], *, create_only: bool, now: datetime,
                  commit: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
    for element in elements:
        existing = None
        if element.get("ContactID"):
            existing = store.contact_by_id(str(element["ContactID"]))
            if existing is None or create_only:
                out.append(_errored(element, ["The contact could not be found" if existing is None
                                              else "A contact with this ContactID already exists"]))
                continue
        elif element.get("ContactNumber") and not create_only:
            existing = store.contact_by_number(str(element["ContactNumber"]))
        errors = contact_errors(store, element, existing=existing)
        if any(p is None and c.get("Name", "").strip().lower() == str(element.get("Name", "")).strip().lower()
               for p, c in pending):
            errors.append(f"The contact name {element.get('Name')} is already assigned to another contact. "
                          "The contact name must be unique across all active contacts.")
        if errors:
            out.append(_errored(element, errors))
            continue
        if existing is None:
            contact = new_contact(element, now=now)
        else:
            contact = {**existing, **element, "UpdatedDateUTC": ms_date(now)}
        pending.append((existing, contact))
        out.append({**contact, "HasErrors": False, "StatusAttributeString": "OK"})
    if commit:
        for existing, contact in pending:
            if existing is None:
                store.contacts.append(contact)
            else:
                existing.clear()
                existing.update(contact)
    return out


def _lines(store: OrgStore, kind: Kind, element: dict[str, Any], status: str, unitdp: int,
           errors: list[str]) -> tuple[list[dict[str, Any]], tuple[Decimal, Decimal, Decimal]]:
    amount_types = element.get("LineAmountTypes") or "Exclusive"
    lines, totals = [], []
    for given in element.get("LineItems") or []:
        account = given.get("AccountCode")
        if account is not None and account not in store.accounts:
            errors.append(f"Account code '{account}' is not a valid code for this document.")
        elif account is None and kind is not PURCHASE_ORDERS and status != "DRAFT":
            errors.append("Account code must be specified")
        tax_type = given.get("TaxType") or (store.accounts.get(account, "NONE") if account else "NONE")
        if tax_type not in store.tax_rates:
            errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of "
                          "transaction.")
            continue
        if not given.get("Description") and not given.get("ItemCode"):
            errors.append("Description must be specified for each line item")
        total = line_total(quantity=_decimal(given.get("Quantity"), "1"),
                           unit_amount=_decimal(given.get("UnitAmount"), "0"),
                           discount_rate=_decimal(given.get("DiscountRate"), "0"),
                           rate_percent=store.tax_rates[tax_type], amount_types=amount_types, unitdp=unitdp)
        if given.get("TaxAmount") is not None and amount_types != "NoTax" and store.honours_tax_amount:
            # Xero: "This value can be overriden if the calculated <TaxAmount> is not correct."
            total = replace(total, tax_amount=_decimal(given["TaxAmount"], "0").quantize(Decimal("0.01")))
        if "LineAmount" in given and _decimal(given["LineAmount"], "0") != total.line_amount:
            errors.append(f"The line total {given['LineAmount']} does not match the expected line total "
                          f"{total.line_amount}")
        totals.append(total)
        lines.append({**given, "LineItemID": given.get("LineItemID") or new_id(), "Quantity": total.quantity,
                      "UnitAmount": total.unit_amount, "LineAmount": total.line_amount, "TaxType": tax_type,
                      "TaxAmount": total.tax_amount})
    return lines, document_totals(totals, amount_types)


def save_documents(store: OrgStore, kind: Kind, elements: list[dict[str, Any]], *, create_only: bool,
                   unitdp: int, now: datetime, commit: bool) -> list[dict[str, Any]]:
    """Validate and (when ``commit``) store each element; the answer's elements in request order."""
    items = kind.items(store)
    out: list[dict[str, Any]] = []
    accepted: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
    new_contacts: list[dict[str, Any]] = []
    batch_numbers: set[tuple[str, str, str]] = set()
    sequence = store.sequences.get(kind.key, 0)
    for element in elements:
        errors: list[str] = []
        doc_type = element.get("Type", "")
        if kind.types and doc_type not in kind.types:
            errors.append(f"{kind.label} Type must be one of {', '.join(kind.types)}")
        existing = None
        number = element.get(kind.number_field)
        if element.get(kind.id_field):
            existing = store.by_id.get(str(element[kind.id_field]).lower())
            existing = existing if existing is not None and kind.id_field in existing else None
            if existing is None or create_only:
                errors.append(f"{kind.label} could not be found" if existing is None
                              else f"{kind.label} already exists; use POST to update it")
        elif number and doc_type in kind.unique_types:
            index_key = (kind.key, doc_type, str(number))
            stored = store.by_number.get(index_key)
            if index_key in batch_numbers or (stored is not None and create_only):
                errors.append(f"{kind.label} # must be unique.")
            existing = stored
            batch_numbers.add(index_key)
        merged = {**(existing or {}), **element}
        status = merged.get("Status") or "DRAFT"
        if existing is None and status not in CREATABLE_STATUSES:
            errors.append(f"{kind.label} not of valid status for creation")
        contact = resolve_contact(store, merged.get("Contact"), errors, created=new_contacts, now=now)
        dates = {}
        for field_name in ("Date", "DueDate", "DeliveryDate"):
            if merged.get(field_name) is not None:
                parsed = parse_date(merged[field_name])
                if parsed is None:
                    errors.append(f"{field_name} is not a valid date")
                else:
                    dates[field_name] = parsed
        if kind is INVOICES and doc_type == "ACCREC" and status == "AUTHORISED" and "DueDate" not in dates:
            errors.append("Due Date is mandatory for authorised invoices")
        if status in ("SUBMITTED", "AUTHORISED") and not merged.get("LineItems"):
            errors.append(f"A {kind.label} must have at least one line item")
        lines, (subtotal, tax, total) = _lines(store, kind, merged, status, unitdp, errors)
        if errors:
            out.append(_errored(element, errors))
            continue
        assert contact is not None
        day = dates.get("Date", now.date())
        document = {
            **merged, kind.id_field: (existing or {}).get(kind.id_field) or new_id(), "Status": status,
            "LineAmountTypes": merged.get("LineAmountTypes") or "Exclusive",
            "Contact": {k: contact[k] for k in ("ContactID", "ContactNumber", "Name") if k in contact},
            "Date": ms_date(day), "DateString": f"{day.isoformat()}T00:00:00", "LineItems": lines,
            "SubTotal": subtotal, "TotalTax": tax, "Total": total,
            "CurrencyCode": merged.get("CurrencyCode") or "GBP",
            "CurrencyRate": _decimal(merged.get("CurrencyRate"), "1"),
            "UpdatedDateUTC": ms_date(now), "HasErrors": False, "HasAttachments": False,
        }
        for field_name in ("DueDate", "DeliveryDate"):
            if field_name in dates:
                document[field_name] = ms_date(dates[field_name])
                document[f"{field_name}String"] = f"{dates[field_name].isoformat()}T00:00:00"
        if kind is not PURCHASE_ORDERS:
            document.update(AmountDue=total, AmountPaid=Decimal("0.00"), AmountCredited=Decimal("0.00"))
        if not document.get(kind.number_field) and (kind is PURCHASE_ORDERS or doc_type == "ACCREC"):
            sequence += 1  # Xero numbers them from the organisation's settings (here PO-0001 …, INV-0001 …)
            document[kind.number_field] = f"{'PO' if kind is PURCHASE_ORDERS else 'INV'}-{sequence:04d}"
        accepted.append((existing, document))
        out.append({**document, "StatusAttributeString": "OK"})
    if commit:
        store.sequences[kind.key] = sequence
        store.contacts.extend(new_contacts)
        for existing, document in accepted:
            if existing is None:
                items.append(document)
            else:
                existing.clear()
                existing.update(document)
                document = existing
            store.by_id[document[kind.id_field].lower()] = document
            if document.get(kind.number_field):
                store.by_number[(kind.key, document.get("Type", ""), document[kind.number_field])] = document
    return out
