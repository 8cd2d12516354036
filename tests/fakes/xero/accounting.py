"""The Accounting API operations the fake serves, over one organisation's ``OrgStore``.

Served: ``GET /Contacts/{ContactNumber|ContactID}``, ``GET /Contacts``, ``PUT``/``POST /Contacts``, and for
Invoices, CreditNotes and PurchaseOrders ``PUT`` (create only), ``POST`` (create or update), ``GET`` of the
collection (filters ``IDs`` and ``InvoiceNumbers``) and ``GET /{Collection}/{id}``. Anything else the spec
allows is answered 501 (the fake does not pretend). ``summarizeErrors=false`` → 200 with every element,
failed ones carrying ``HasErrors``; otherwise (Xero's default) any failed element makes the whole request a
400 ``ValidationException`` and nothing is stored.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.xero.documents import KINDS, ms_date, save_contacts, save_documents
from tests.fakes.xero.store import OrgStore, new_id


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    def encode(self) -> bytes:
        return json.dumps(self.body, default=_number).encode()


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def not_found() -> Answer:
    return Answer(404, {"Type": None, "Title": "NotFound", "Status": 404,
                        "Detail": "The resource you're looking for cannot be found"})


def _envelope(key: str, items: list[dict[str, Any]], *, now: datetime, provider: str) -> dict[str, Any]:
    return {"Id": new_id(), "Status": "OK", "ProviderName": provider, "DateTimeUTC": ms_date(now), key: items}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def handle(store: OrgStore, *, method: str, segments: list[str], query: dict[str, str], body: bytes,
           now: datetime, provider: str) -> Answer:
    """Answer one accounting call; ``segments`` are the path after ``/api.xro/2.0/``."""
    resource = segments[0].lower() if segments else ""
    if resource == "contacts":
        key, kind = "Contacts", None
    elif resource in KINDS:
        kind = KINDS[resource]
        key = kind.key
    else:
        return Answer(501, {"Detail": f"{resource} is not implemented by the fake Xero"})
    if method == "GET":
        return _get(store, kind, key, segments[1:], query, now=now, provider=provider)
    if method not in ("PUT", "POST") or len(segments) != 1:
        return Answer(501, {"Detail": f"{method} {'/'.join(segments)} is not implemented by the fake Xero"})
    elements = json.loads(body, parse_float=Decimal).get(key) or []
    summarize = query.get("summarizeErrors", "true").lower() != "false"
    unitdp = int(query.get("unitdp", "2") or 2)

    def save(commit: bool) -> list[dict[str, Any]]:
        if kind is None:
            return save_contacts(store, elements, create_only=method == "PUT", now=now, commit=commit)
        return save_documents(store, kind, elements, create_only=method == "PUT", unitdp=unitdp, now=now,
                              commit=commit)

    if summarize:
        checked = save(commit=False)
        failed = [element for element in checked if element.get("HasErrors")]
        if failed:
            return Answer(400, {"ErrorNumber": 10, "Type": "ValidationException",
                                "Message": "A validation exception occurred", "Elements": failed})
        saved = [{k: v for k, v in e.items() if k != "StatusAttributeString"} for e in save(commit=True)]
        return Answer(200, _envelope(key, saved, now=now, provider=provider))
    return Answer(200, _envelope(key, save(commit=True), now=now, provider=provider))


def _get(store: OrgStore, kind: Any, key: str, rest: list[str], query: dict[str, str], *, now: datetime,
         provider: str) -> Answer:
    items = store.contacts if kind is None else kind.items(store)
    id_field = "ContactID" if kind is None else kind.id_field
    if len(rest) > 1:
        return Answer(501, {"Detail": "sub-resources are not implemented by the fake Xero"})
    if rest:
        wanted = rest[0]
        found = next((i for i in items if i[id_field].lower() == wanted.lower()), None)
        if found is None and kind is None and not _is_uuid(wanted):
            found = store.contact_by_number(wanted)
        if found is None:
            return not_found()
        return Answer(200, _envelope(key, [found], now=now, provider=provider))
    selected = list(items)
    if query.get("IDs"):
        ids = {i.strip().lower() for i in query["IDs"].split(",")}
        selected = [i for i in selected if i[id_field].lower() in ids]
    if kind is not None and query.get("InvoiceNumbers") and kind.key == "Invoices":
        numbers = {n.strip() for n in query["InvoiceNumbers"].split(",")}
        selected = [i for i in selected if i.get("InvoiceNumber") in numbers]
    return Answer(200, _envelope(key, selected, now=now, provider=provider))
