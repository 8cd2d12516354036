"""The PDF Emailer settings of one company: enable, disable, configure (CLI and Slack).

Every change parses all of its input before writing, writes in one transaction
with an ``AuditEntry`` (old → new of the changed fields), and keeps
``next_run_at`` consistent with the settings:

* **enable / schedule= / next= / starting_from= / disable** — the timing rules every kind
  shares (``invoicing.integrations.timing``).
* **einvoice=auto|facturx|none** — whether the e-mailed PDF is a Factur-X
  (``invoicing.delivery.einvoice.choice``; ``auto``, the default: for EU buyers).
* **approval= approval_timeout= on_timeout=** — approval mode (``approval_policy``); a
  change applies to the next prepared run, not to one already waiting.

Callers that host a scheduler wake it after a change (``Scheduler.wake``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.billing.runs import check_plan
from invoicing.delivery.bcc import bcc_of
from invoicing.delivery.einvoice import choice as einvoice_choice
from invoicing.integrations.pdf_emailer import approval_policy, inputs
from invoicing.integrations.pdf_emailer.approval_policy import ApprovalPolicy
from invoicing.integrations.timing import UNSET, TimingChanges, Unset, apply_timing, enable_timing, parse_timing
from invoicing.parties.companies import normalise_channel, set_channel
from models import Company, Integration, IntegrationKind, Tenant


@dataclass(frozen=True)
class EmailerSettings:
    """The integration as ops see it; times are aware UTC (show them in ``timezone``)."""

    company: str
    timezone: str
    enabled: bool
    include_errors: bool
    starting_from: datetime | None
    bcc: tuple[str, ...]
    schedule: str
    next_run_at: datetime | None
    approval: ApprovalPolicy
    #: ``auto``, ``facturx`` or ``none`` (``invoicing.delivery.einvoice.choice``).
    einvoice: str = einvoice_choice.AUTO


@dataclass(frozen=True)
class _Changes:
    """Parsed input of one ``configure`` call: only the fields that were given."""

    timing: TimingChanges
    include_errors: bool | Unset = UNSET
    bcc: tuple[str, ...] | Unset = UNSET
    einvoice: str | Unset = UNSET


KIND = IntegrationKind.PDF_EMAILER


async def settings(company: Company) -> EmailerSettings:
    """The current settings of ``company``'s PDF Emailer."""
    return _view(company, await Integration.get(company_id=company.id, kind=KIND))


async def enable(company: Company, *, now: datetime, actor: str) -> EmailerSettings:
    """Turn the PDF Emailer on; refused (``NotEligible``) on an OMS Lite tenant.

    Only the plan is required: incomplete accounting details do not stop enabling
    (each run is refused and names them until they are complete).
    """
    # Only the plan: incomplete details are checked per run, naming the missing fields.
    check_plan(await Tenant.get(id=company.tenant_id))
    async with in_transaction():
        row = await _locked(company)
        if row.enabled and row.next_run_at is not None:
            return _view(company, row)
        old = _snapshot(row)
        enable_timing(row, company.timezone, now)
        await _save_and_audit(company, row, old, actor=actor, action="emailer.enable")
    return _view(company, row)


async def disable(company: Company, *, now: datetime, actor: str) -> EmailerSettings:
    """Turn the PDF Emailer off: no scheduled run happens until it is enabled again.

    A run already in progress finishes (it holds its own lock and lease).
    """
    del now  # part of the uniform signature; disabling does not depend on the time
    async with in_transaction():
        row = await _locked(company)
        if not row.enabled and row.next_run_at is None:
            return _view(company, row)
        old = _snapshot(row)
        row.enabled = False
        row.next_run_at = None
        await _save_and_audit(company, row, old, actor=actor, action="emailer.disable")
    return _view(company, row)


async def configure(
    company: Company,
    *,
    now: datetime,
    actor: str,
    include_errors: bool | str | None = None,
    starting_from: str | date | datetime | None = None,
    bcc: str | Sequence[str] | None = None,
    schedule: str | None = None,
    next: str | datetime | None = None,  # the product's field name
    channel: str | None = None,
    approval: bool | str | None = None,
    approval_timeout: str | None = None,
    on_timeout: str | None = None,
    einvoice: str | None = None,
) -> EmailerSettings:
    """Change any of the settings at once; ``None`` leaves a setting as it is.

    Text values are what ops type: ``include_errors=on|off``, ``starting_from=
    YYYY-MM-DD[ HH:MM]|none`` and ``next=YYYY-MM-DD HH:MM|none`` in the company time
    zone, ``bcc="a@x.com, b@y.com"|none``, ``schedule=hourly|daily|weekly|monthly|<cron>``.
    ``channel=#billing|none`` is the company's notification channel (shared by its
    integrations; changed through ``parties.companies.set_channel`` in the same transaction,
    company row locked before the integration row). ``approval=on|off approval_timeout=30m|24h|2d
    on_timeout=issue|skip`` see ``approval_policy``; ``einvoice=auto|facturx|none``. Raises ``InvalidInput`` naming the
    first bad field; then nothing is changed.
    """
    if channel is not None:
        normalise_channel(channel)  # refuse a bad channel before anything is written
    tz = company.timezone
    given: dict[str, Any] = {}
    if include_errors is not None:
        given["include_errors"] = validation.parse_switch(include_errors, "include_errors")
    if bcc is not None:
        given["bcc"] = inputs.bcc(bcc)
    if einvoice is not None:
        given["einvoice"] = einvoice_choice.parse_choice(einvoice)
    timing = parse_timing(tz, now, starting_from=starting_from, schedule=schedule, next=next)
    changes = _Changes(timing=timing, **given)
    approval_columns = approval_policy.parse_changes(approval, approval_timeout, on_timeout)
    async with in_transaction():
        if channel is not None:
            await set_channel(company, channel, actor=actor)
        row = await _locked(company)
        old = _snapshot(row)
        row.update_from_dict(approval_columns)
        _apply(company, row, changes, now)
        if _snapshot(row) != old:
            await _save_and_audit(company, row, old, actor=actor, action="emailer.set")
    return _view(company, row)


def _apply(company: Company, row: Integration, changes: _Changes, now: datetime) -> None:
    """Write the parsed changes onto ``row`` and recompute ``next_run_at`` (may raise InvalidInput)."""
    if not isinstance(changes.include_errors, Unset):
        row.include_errors = changes.include_errors
    if not isinstance(changes.bcc, Unset):
        row.settings = {**row.settings, "bcc": list(changes.bcc)}
    if not isinstance(changes.einvoice, Unset):
        row.settings = {**row.settings, einvoice_choice.SETTING: changes.einvoice}
    apply_timing(row, company.timezone, changes.timing, now)


async def _locked(company: Company) -> Integration:
    """The integration row, locked for the transaction (serialises concurrent changes)."""
    return await Integration.filter(company_id=company.id, kind=KIND).select_for_update(no_key=True).get()


async def _save_and_audit(
    company: Company, row: Integration, old: dict[str, str], *, actor: str, action: str
) -> None:
    await row.save(update_fields=["enabled", "include_errors", "starting_from", "settings", "schedule", "next_run_at",
                                  *approval_policy.COLUMNS])
    before, after = audit.changed(old, _snapshot(row))
    await audit.record(company.tenant_id, actor=actor, action=action, target=f"company:{company.short_name}",
                       old=before, new=after)


def _snapshot(row: Integration) -> dict[str, str]:
    """The audited fields as JSON-safe strings (times in UTC ISO 8601, ``none`` for unset)."""
    return {
        "enabled": "on" if row.enabled else "off",
        "include_errors": "on" if row.include_errors else "off",
        "starting_from": _iso(row.starting_from),
        "bcc": ",".join(bcc_of(row)) or "none",
        "einvoice": einvoice_choice.stored_choice(row.settings),
        "schedule": row.schedule,
        "next_run_at": _iso(row.next_run_at),
        **approval_policy.snapshot(row),
    }


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else "none"


def _view(company: Company, row: Integration) -> EmailerSettings:
    return EmailerSettings(
        company=company.short_name, timezone=company.timezone, enabled=row.enabled,
        include_errors=row.include_errors, starting_from=row.starting_from, bcc=tuple(bcc_of(row)),
        schedule=row.schedule, next_run_at=row.next_run_at, approval=approval_policy.policy_of(row),
        einvoice=einvoice_choice.stored_choice(row.settings),
    )
