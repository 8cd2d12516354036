"""Per company: whether its documents go to Xero, and how (``/invoicing xero <co> enable | disable | set …``).

Like the other integrations, every change parses all of its input first, then writes in **one
transaction holding the company's ``xero`` integration row lock** with an ``AuditEntry`` (old → new).
The settings live in ``Integration.settings``:

* ``status`` — ``AUTHORISED`` (default: the invoice is issued, so it is approved in Xero too) or ``DRAFT``;
* ``account_code`` — the sales account of every line (default ``200``, Xero's "Sales");
* ``tax_types`` — our VAT category (optionally with its rate: ``S5``) → Xero tax type; a line looks up
  ``<category><rate>`` first, then ``<category>``; ``set tax_types=AE:REVERSECHARGES`` adds or replaces
  keys, ``AE:none`` removes one; a category without a mapping fails that push with a message saying so;
* ``purchase_orders`` — also create the matching purchase order in the company's own organisation
  (needs the company connected: ``xero connect <co>``), with ``po_account_code`` (optional) and
  ``po_tax_types`` (the purchase-side tax types).

The Xero row is never scheduled (``next_run_at`` stays empty): pushes are queued when a document is
issued (``invoicing.delivery.xero_queue``). A settings change puts the company's refused pushes back in
the queue, rebuilt with the new settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.errors import InvalidInput, NotEligible
from invoicing.integrations.xero.connections import usable_connection
from invoicing.integrations.xero.errors import XeroNotSetUp
from models import Company, Integration, IntegrationKind, XeroPush, XeroPushStatus

KIND = IntegrationKind.XERO
STATUSES = ("AUTHORISED", "DRAFT")

#: A UK organisation's standard tax types (Xero's codes), by our VAT category (and rate).
SALES_TAX_TYPES: dict[str, str] = {
    "S20": "OUTPUT2", "S5": "RROUTPUT", "Z": "ZERORATEDOUTPUT", "E": "EXEMPTOUTPUT", "G": "ZERORATEDOUTPUT",
    "K": "ECZROUTPUT", "O": "NONE",
}
PURCHASE_TAX_TYPES: dict[str, str] = {
    "S20": "INPUT2", "S5": "RRINPUT", "Z": "ZERORATEDINPUT", "E": "EXEMPTINPUT", "G": "ZERORATEDINPUT",
    "K": "ZERORATEDINPUT", "O": "NONE",
}
_TAX_KEY = re.compile(r"^(S|Z|E|AE|K|G|O|L|M)(\d{1,2}(\.\d{1,3})?)?$")
_TAX_TYPE = re.compile(r"^[A-Z0-9]{1,50}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9.\-]{1,10}$")


@dataclass(frozen=True)
class XeroCompanySettings:
    company: str
    integration_id: int
    enabled: bool
    status: str
    account_code: str
    tax_types: dict[str, str]
    purchase_orders: bool
    po_account_code: str
    po_tax_types: dict[str, str]


def view(company: Company, row: Integration) -> XeroCompanySettings:
    s = row.settings or {}
    return XeroCompanySettings(
        company=company.short_name, integration_id=row.id, enabled=row.enabled,
        status=str(s.get("status") or "AUTHORISED"), account_code=str(s.get("account_code") or "200"),
        tax_types=dict(s.get("tax_types") or SALES_TAX_TYPES), purchase_orders=bool(s.get("purchase_orders")),
        po_account_code=str(s.get("po_account_code") or ""),
        po_tax_types=dict(s.get("po_tax_types") or PURCHASE_TAX_TYPES))


def tax_type_for(mapping: dict[str, str], category: str, rate: str) -> str | None:
    """The Xero tax type of a line of VAT ``category`` at ``rate`` percent (``"20.000"`` → key ``S20``)."""
    plain = rate.rstrip("0").rstrip(".") if "." in rate else rate
    return mapping.get(f"{category}{plain}") or mapping.get(category)


async def settings(company: Company) -> XeroCompanySettings:
    return view(company, await Integration.get(company_id=company.id, kind=KIND))


async def enable(company: Company, *, now: datetime, actor: str) -> XeroCompanySettings:
    """Push the company's documents from now on; refused without a connected organisation of the tenant."""
    del now
    await usable_connection(company.tenant_id)
    async with in_transaction():
        row = await locked(company)
        if row.enabled:
            return view(company, row)
        old = _snapshot(row)
        row.enabled = True
        await _save_and_audit(company, row, old, actor=actor, action="xero.enable")
    return view(company, row)


async def disable(company: Company, *, now: datetime, actor: str) -> XeroCompanySettings:
    """No new pushes for the company's documents (pushes already queued still go)."""
    del now
    async with in_transaction():
        row = await locked(company)
        if not row.enabled:
            return view(company, row)
        old = _snapshot(row)
        row.enabled = False
        await _save_and_audit(company, row, old, actor=actor, action="xero.disable")
    return view(company, row)


async def configure(company: Company, *, now: datetime, actor: str, status: str | None = None,
                    account_code: str | None = None, tax_types: str | None = None,
                    purchase_orders: str | bool | None = None, po_account_code: str | None = None,
                    po_tax_types: str | None = None) -> XeroCompanySettings:
    """Change any settings at once (``None`` leaves one as it is); ``InvalidInput`` names the first bad
    field and nothing changes. ``purchase_orders=on`` needs the company's own organisation connected."""
    changes: dict[str, Any] = {}
    if status is not None:
        word = status.strip().upper()
        if word not in STATUSES:
            raise InvalidInput("status", f"{status!r} is not AUTHORISED or DRAFT")
        changes["status"] = word
    if account_code is not None:
        changes["account_code"] = _account(account_code, "account_code")
    if po_account_code is not None:
        changes["po_account_code"] = "" if po_account_code.strip().lower() == "none" else \
            _account(po_account_code, "po_account_code")
    if purchase_orders is not None:
        changes["purchase_orders"] = validation.parse_switch(purchase_orders, "purchase_orders")
        if changes["purchase_orders"]:
            try:
                await usable_connection(company.tenant_id, company.id)
            except XeroNotSetUp:
                raise NotEligible(f"{company.short_name} has not connected its own Xero organisation yet: send its "
                                  f"accounting contact the link of `/invoicing xero connect {company.short_name}`."
                                  ) from None
    async with in_transaction():
        row = await locked(company)
        current = view(company, row)
        if tax_types is not None:
            changes["tax_types"] = parse_tax_types(tax_types, current.tax_types, "tax_types")
        if po_tax_types is not None:
            changes["po_tax_types"] = parse_tax_types(po_tax_types, current.po_tax_types, "po_tax_types")
        old = _snapshot(row)
        row.settings = {**(row.settings or {}), **changes}
        if _snapshot(row) != old:
            await _save_and_audit(company, row, old, actor=actor, action="xero.set")
            await requeue_failed(company.id, now)
    return view(company, row)


async def retry(company: Company, *, now: datetime, actor: str) -> int:
    """``xero <co> retry``: the company's refused pushes go again, rebuilt; audited with how many."""
    async with in_transaction():
        await locked(company)
        count = await requeue_failed(company.id, now)
        if count:
            await audit.record(company.tenant_id, actor=actor, action="xero.retry",
                               target=f"company:{company.short_name}", old={}, new={"requeued": str(count)})
    return count


async def requeue_failed(company_id: int, now: datetime) -> int:
    """The company's refused pushes go back to the queue, to be rebuilt (new request, new key)."""
    return await XeroPush.filter(company_id=company_id, status=XeroPushStatus.FAILED).update(
        status=XeroPushStatus.PENDING, next_attempt_at=now, attempts=0, payload="", batch_key=None,
        connection_id=None)


def parse_tax_types(text: str, current: dict[str, str], field: str) -> dict[str, str]:
    """``S:OUTPUT2,Z:ZERORATEDOUTPUT,S5:RROUTPUT`` merged onto ``current``; ``KEY:none`` removes a key,
    ``default`` alone starts from the defaults."""
    words = [w.strip() for w in text.replace(" ", ",").split(",") if w.strip()]
    if words == ["default"]:
        return dict(SALES_TAX_TYPES if field == "tax_types" else PURCHASE_TAX_TYPES)
    if not words:
        raise InvalidInput(field, "is empty; write CATEGORY:TAXTYPE pairs, e.g. S:OUTPUT2,Z:ZERORATEDOUTPUT")
    result = dict(current)
    for word in words:
        key, sep, value = word.partition(":")
        key, value = key.strip().upper(), value.strip()
        if not sep or not _TAX_KEY.match(key):
            raise InvalidInput(field, f"{word!r} is not CATEGORY:TAXTYPE (categories S Z E AE K G O L M, "
                                      "optionally with a rate: S5:RROUTPUT)")
        if value.lower() == "none":
            result.pop(key, None)
        elif _TAX_TYPE.match(value.upper()):
            result[key] = value.upper()
        else:
            raise InvalidInput(field, f"{value!r} is not a Xero tax type (letters and digits, e.g. OUTPUT2)")
    return result


def _account(value: str, field: str) -> str:
    code = value.strip()
    if not _ACCOUNT.match(code):
        raise InvalidInput(field, f"{value!r} is not a Xero account code (1 to 10 letters or digits, e.g. 200)")
    return code


async def locked(company: Company) -> Integration:
    return await Integration.filter(company_id=company.id, kind=KIND).select_for_update(no_key=True).get()


async def _save_and_audit(company: Company, row: Integration, old: dict[str, str], *, actor: str,
                          action: str) -> None:
    await row.save(update_fields=["enabled", "settings"])
    before, after = audit.changed(old, _snapshot(row))
    await audit.record(company.tenant_id, actor=actor, action=action, target=f"company:{company.short_name}",
                       old=before, new=after)


def _snapshot(row: Integration) -> dict[str, str]:
    s = row.settings or {}
    return {"enabled": str(row.enabled).lower(),
            **{key: (",".join(f"{k}:{v}" for k, v in sorted(s[key].items())) if isinstance(s.get(key), dict)
                     else str(s.get(key, ""))) for key in ("status", "account_code", "tax_types",
                                                          "purchase_orders", "po_account_code", "po_tax_types")}}
