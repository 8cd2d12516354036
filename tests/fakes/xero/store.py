"""What the fake Xero holds: apps, organisations, their documents and contacts, users' connections."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

#: Apps created on or after this day only get the granular scopes (``accounting.invoices`` …).
GRANULAR_SCOPES_SINCE = date(2026, 3, 2)

#: A UK organisation's common tax types → rate in percent (configurable per organisation).
DEFAULT_TAX_RATES: dict[str, Decimal] = {
    "OUTPUT2": Decimal("20"),
    "RROUTPUT": Decimal("5"),
    "ZERORATEDOUTPUT": Decimal("0"),
    "EXEMPTOUTPUT": Decimal("0"),
    "ECZROUTPUT": Decimal("0"),
    "ECZROUTPUTSERVICES": Decimal("0"),
    "INPUT2": Decimal("20"),
    "RRINPUT": Decimal("5"),
    "ZERORATEDINPUT": Decimal("0"),
    "EXEMPTINPUT": Decimal("0"),
    "NONE": Decimal("0"),
}

#: Account code → its default tax type (used when a line names no TaxType).
DEFAULT_ACCOUNTS: dict[str, str] = {
    "200": "OUTPUT2",  # Sales
    "260": "OUTPUT2",  # Other revenue
    "300": "INPUT2",  # Purchases
    "310": "INPUT2",  # Cost of goods sold
    "400": "INPUT2",  # Advertising
    "429": "INPUT2",  # General expenses
}


@dataclass
class FakeApp:
    client_id: str
    client_secret: str
    name: str
    created: date
    #: the scopes the app may request (None = any scope Xero offers an app of its age)
    scopes: frozenset[str] | None
    #: registered redirect URIs (None = any http(s) URI, for tests that do not care)
    redirect_uris: frozenset[str] | None

    @property
    def granular(self) -> bool:
        """Created after 2 Mar 2026: ``accounting.transactions`` is refused, ``accounting.invoices`` needed."""
        return self.created >= GRANULAR_SCOPES_SINCE


@dataclass(frozen=True)
class FakeOrg:
    tenant_id: str
    name: str
    tier: str = "standard"


@dataclass
class Connection:
    id: str
    tenant_id: str
    tenant_name: str
    user: str
    client_id: str
    auth_event_id: str
    created: datetime
    updated: datetime


@dataclass
class Replay:
    """The first answer given for an Idempotency-Key, replayed for the same request."""

    fingerprint: str
    status: int
    body: bytes


@dataclass
class OrgStore:
    """One organisation's books; the lists hold what Xero would answer for each created object."""

    org: FakeOrg
    tax_rates: dict[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_TAX_RATES))
    accounts: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACCOUNTS))
    contacts: list[dict[str, Any]] = field(default_factory=list)
    #: False: the organisation recomputes every line's tax and ignores a given ``TaxAmount`` (tests of a
    #: totals mismatch; Xero itself honours the override)
    honours_tax_amount: bool = True
    invoices: list[dict[str, Any]] = field(default_factory=list)
    credit_notes: list[dict[str, Any]] = field(default_factory=list)
    purchase_orders: list[dict[str, Any]] = field(default_factory=list)
    #: (collection, Type, number) → document, and document id → document: lookups without scanning
    by_number: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, Replay] = field(default_factory=dict)
    idempotency_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: the last automatic number per collection (PO-0001 …, INV-0001 …)
    sequences: dict[str, int] = field(default_factory=dict)

    def contact_by_id(self, contact_id: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts if c["ContactID"].lower() == contact_id.lower()), None)

    def contact_by_number(self, number: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts if c.get("ContactNumber") == number), None)

    def contact_by_name(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts if c["Name"].strip().lower() == name.strip().lower()), None)


def new_id() -> str:
    return str(uuid.uuid4())
