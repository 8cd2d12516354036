"""The contacts our documents name in Xero, written (created or updated) only when their details changed.

The buyer of a sales invoice is the contact whose ``ContactNumber`` is the company's short name (Xero:
"identifies a contact from an external system", ≤ 50 characters), named and addressed from its accounting
details; the supplier of a purchase order (in the company's organisation) is the seller, with the
tenant's name as ``ContactNumber``. ``ensure`` sends the contacts that are new or changed in one ``POST
/Contacts?summarizeErrors=false`` (create or update; the ``ContactID`` we know is included) and remembers
Xero's id and a fingerprint of what was sent (``XeroContact``), so an unchanged contact costs no call (a
failed call raises, and the documents wait). A contact Xero refuses (e.g. its name is another contact's)
comes back as an error message for the documents that name it; the others go on."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

from invoicing.integrations.xero.client import XeroClient
from invoicing.integrations.xero.payloads import encode
from models import Company, Tenant, XeroConnection, XeroContact

_ADDRESS = (("AddressLine1", "address_line1"), ("AddressLine2", "address_line2"), ("City", "city"),
            ("Region", "region"), ("PostalCode", "postcode"), ("Country", "country"))


@dataclass(frozen=True)
class Party:
    """A contact to have in Xero: its ``ContactNumber`` and the element to write."""

    number: str
    element: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(encode(self.element).encode()).hexdigest()


def _element(number: str, name: str, details: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"Name": name[:255], "ContactNumber": number[:50]}
    if getattr(details, "email", ""):
        element["EmailAddress"] = details.email[:255]
    if getattr(details, "vat_number", ""):
        element["TaxNumber"] = details.vat_number[:50]
    address = {key: str(getattr(details, attr, "") or "")[:500] for key, attr in _ADDRESS
               if getattr(details, attr, "")}
    if address:
        element["Addresses"] = [{"AddressType": "POBOX", **address}]
    return element


def buyer(company: Company) -> Party:
    return Party(company.short_name[:50], _element(company.short_name, company.legal_name or company.name, company))


def supplier(tenant: Tenant) -> Party:
    return Party(tenant.name[:50], _element(tenant.name, tenant.legal_name or tenant.name, tenant))


async def ensure(client: XeroClient, connection: XeroConnection, parties: list[Party], *,
                 lock: asyncio.Lock | None = None) -> dict[str, str | Exception]:
    """Xero's ``ContactID`` of each party's number, or the error that kept it out of Xero.

    ``lock`` (one per connection, held by the caller's process): batches sent at once that name the same
    new contact then write it once — the second reads the first one's ``XeroContact`` row instead of
    spending a call of the organisation's minute on the same contact.
    """
    async with lock or contextlib.nullcontext():
        return await _ensure(client, connection, parties)


async def _ensure(client: XeroClient, connection: XeroConnection, parties: list[Party]) -> dict[str, str | Exception]:
    wanted = {p.number: p for p in parties}
    known = {c.contact_number: c for c in await XeroContact.filter(
        connection_id=connection.id, xero_tenant_id=connection.xero_tenant_id, contact_number__in=list(wanted))}
    result: dict[str, str | Exception] = {}
    send: list[Party] = []
    for number, party in wanted.items():
        row = known.get(number)
        if row is not None and row.fingerprint == party.fingerprint:
            result[number] = row.contact_id
        else:
            send.append(party)
    if not send:
        return result
    elements = []
    for party in send:
        row = known.get(party.number)
        elements.append({**party.element, **({"ContactID": row.contact_id} if row else {})})
    body = '{"Contacts":[' + ",".join(encode(e) for e in elements) + "]}"
    key = "ibc-" + hashlib.sha256(f"{connection.id}:{body}".encode()).hexdigest()[:60]
    # A failed call (Xero unavailable, 429, budget) raises: the documents naming these contacts wait.
    answer = await client.call(connection.tenant_id, connection.id, "POST", "Contacts", body=body,
                               params={"summarizeErrors": "false"}, idempotency_key=key)
    answered = answer.get("Contacts") or [] if isinstance(answer, dict) else []
    for party, element in zip(send, answered, strict=False):
        if element.get("HasErrors") or not element.get("ContactID"):
            messages = [str(e.get("Message")) for e in element.get("ValidationErrors") or [] if e.get("Message")]
            result[party.number] = ContactRefused(f"Xero refused the contact {party.number}: "
                                                  + ("; ".join(messages) or "no reason given"))
            continue
        await XeroContact.update_or_create(
            defaults={"contact_id": str(element["ContactID"]), "fingerprint": party.fingerprint},
            connection_id=connection.id, xero_tenant_id=connection.xero_tenant_id, contact_number=party.number)
        result[party.number] = str(element["ContactID"])
    for party in send[len(answered):]:
        result[party.number] = ContactRefused(f"Xero did not answer for the contact {party.number}.")
    return result


class ContactRefused(Exception):
    """Xero refused (or did not return) a contact: the documents naming it fail with this message."""
