"""The XML export settings of one company: enable, disable, configure, trust a host key (CLI and Slack).

Like the PDF Emailer (``invoicing.integrations.pdf_emailer.settings``): every change parses
all of its input first, then writes in **one transaction holding the integration row
lock** with an ``AuditEntry`` (old → new of what changed); the timing rules
(``schedule= next= starting_from=``, the first run on enable) are the shared ones of
``invoicing.integrations.timing``.

The destination lives in ``Integration.settings`` (JSON; ``fields``): an SFTP server
(``host port username path``, pinned ``host_key``, ``auth=key|password``) or a local
directory (``dir``). The password is sealed with the ``SecretBox`` (purpose
``sftp-password:<integration id>``); it is never shown, logged or audited (the audit
says "changed"). Without ``INVOICEBOT_SECRET_KEY`` storing one is refused.

**Blocked.** A permanent upload error (auth, host key, missing directory, permission)
blocks the integration (``block``: kind + message); nothing is uploaded until a change of
the destination, the host key, ``auth`` or the password clears it, which also puts the
integration's failed files back in the upload queue (in the same transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from invoicing import audit, validation
from invoicing.billing.runs import check_plan
from invoicing.errors import NotEligible
from invoicing.integrations.timing import apply_timing, enable_timing, parse_timing
from invoicing.integrations.xml_export import fields as f
from invoicing.parties.companies import normalise_channel, set_channel
from invoicing.secrets import SecretBox, SecretsUnavailable
from models import Company, Integration, IntegrationKind, Tenant, XmlExport, XmlExportStatus

KIND = IntegrationKind.XML_EXPORT


@dataclass(frozen=True)
class Blocked:
    """Why uploads stopped: ``kind`` (``destinations.UploadError.kind``), the message, the key offered (host key)."""

    kind: str
    message: str
    at: datetime
    offered_key: str | None = None


@dataclass(frozen=True)
class XmlSettings:
    """The integration as ops see it; times are aware UTC (show them in ``timezone``). No secret in it."""

    company: str
    timezone: str
    integration_id: int
    enabled: bool
    include_errors: bool
    starting_from: datetime | None
    schedule: str
    next_run_at: datetime | None
    destination: str            # "sftp://user@host:port/path", "file:///dir" or "" (none yet)
    content: str
    host_key: str | None
    host_key_fingerprint: str | None
    auth: str
    password_set: bool
    blocked: Blocked | None


def view(company: Company, row: Integration) -> XmlSettings:
    s = row.settings or {}
    key = s.get("host_key")
    return XmlSettings(
        company=company.short_name, timezone=company.timezone, integration_id=row.id, enabled=row.enabled,
        include_errors=row.include_errors, starting_from=row.starting_from, schedule=row.schedule,
        next_run_at=row.next_run_at, destination=f.destination_text(s), content=f.content_of(s),
        host_key=key, host_key_fingerprint=f.fingerprint_or_none(key), auth=s.get("auth") or "key",
        password_set=bool(s.get("password")), blocked=blocked_of(row),
    )


def blocked_of(row: Integration) -> Blocked | None:
    raw = (row.settings or {}).get("blocked")
    if not isinstance(raw, dict):
        return None
    return Blocked(kind=str(raw.get("kind", "")), message=str(raw.get("message", "")),
                   at=datetime.fromisoformat(str(raw.get("at"))), offered_key=raw.get("offered_key"))


async def settings(company: Company) -> XmlSettings:
    """The current settings of ``company``'s XML export."""
    return view(company, await Integration.get(company_id=company.id, kind=KIND))


async def enable(company: Company, *, now: datetime, actor: str) -> XmlSettings:
    """Turn the export on; refused (``NotEligible``) on OMS Lite, without a destination, or with an SFTP
    destination whose host key is not pinned (or password auth without a password), saying what to do."""
    check_plan(await Tenant.get(id=company.tenant_id))
    async with in_transaction():
        row = await locked(company)
        check_ready(company, row.settings or {})
        if row.enabled and row.next_run_at is not None:
            return view(company, row)
        old = _snapshot(row)
        enable_timing(row, company.timezone, now)
        await _save_and_audit(company, row, old, actor=actor, action="xml.enable")
    return view(company, row)


async def disable(company: Company, *, now: datetime, actor: str) -> XmlSettings:
    """Turn the export off: no scheduled run until enabled again (queued files are still uploaded)."""
    del now
    async with in_transaction():
        row = await locked(company)
        if not row.enabled and row.next_run_at is None:
            return view(company, row)
        old = _snapshot(row)
        row.enabled = False
        row.next_run_at = None
        await _save_and_audit(company, row, old, actor=actor, action="xml.disable")
    return view(company, row)


async def configure(company: Company, *, now: datetime, actor: str, box: SecretBox,
                    host: str | None = None, port: str | int | None = None, username: str | None = None,
                    path: str | None = None, dir: str | None = None, content: str | None = None,
                    host_key: str | None = None, auth: str | None = None, password: str | None = None,
                    include_errors: bool | str | None = None, schedule: str | None = None,
                    next: str | datetime | None = None, starting_from: str | date | datetime | None = None,
                    channel: str | None = None) -> XmlSettings:
    """Change any settings at once (``None`` leaves one as it is); raises ``InvalidInput`` naming the first
    bad field, and then nothing is changed. ``password=`` is refused (``SecretsUnavailable``) without
    ``INVOICEBOT_SECRET_KEY``; ``password=none`` removes it."""
    if channel is not None:
        normalise_channel(channel)
    changes = f.parse_fields(host=host, port=port, username=username, path=path, dir=dir, content=content,
                             host_key=host_key, auth=auth)
    errors = validation.parse_switch(include_errors, "include_errors") if include_errors is not None else None
    timing = parse_timing(company.timezone, now, starting_from=starting_from, schedule=schedule, next=next)
    new_password: str | None = None
    if password is not None:
        new_password = f.parse_password(password)
        if new_password is not None and not box.configured:
            raise SecretsUnavailable("The SFTP password cannot be stored: INVOICEBOT_SECRET_KEY is not set (see "
                                     ".env.example); nothing was changed.")
    async with in_transaction():
        if channel is not None:
            await set_channel(company, channel, actor=actor)
        row = await locked(company)
        old = _snapshot(row)
        stored = {**(row.settings or {}), **changes}
        if "dir" in changes and changes["dir"] is not None:
            stored.update(host=None, username=None, path=None)
        elif any(k in changes for k in ("host", "username", "path", "port")):
            stored["dir"] = None
        if password is not None:
            stored["password"] = box.seal(new_password, purpose=password_purpose(row.id)) if new_password else None
        destination_changed = password is not None or any(
            (row.settings or {}).get(k) != stored.get(k) for k in f.DESTINATION_KEYS)
        if destination_changed:
            stored.pop("blocked", None)
        row.settings = stored
        if errors is not None:
            row.include_errors = errors
        apply_timing(row, company.timezone, timing, now)
        new = _snapshot(row)
        if row.enabled:
            check_ready(company, row.settings)  # an enabled export keeps a usable destination
        if new != old or password is not None:
            await _save(row)
            before, after = audit.changed(old, new)
            if password is not None:
                before["password"], after["password"] = "…", "changed" if new_password else "removed"
            await audit.record(company.tenant_id, actor=actor, action="xml.set", target=f"company:{company.short_name}",
                               old=before, new=after)
        if destination_changed:
            await requeue_blocked(row.id, now)
    return view(company, row)


async def trust_host_key(company: Company, key_line: str, *, now: datetime, actor: str) -> XmlSettings:
    """Pin ``key_line`` (what the server offered, confirmed by an admin); clears a block and re-queues files.

    The caller checks first that the server still offers exactly this key (``destinations.server_host_key``).
    """
    key = f.parse_host_key(key_line)
    async with in_transaction():
        row = await locked(company)
        old = _snapshot(row)
        row.settings = {k: v for k, v in {**(row.settings or {}), "host_key": key}.items() if k != "blocked"}
        await _save(row)
        before, after = audit.changed(old, _snapshot(row))
        await audit.record(company.tenant_id, actor=actor, action="xml.trust_host_key",
                           target=f"company:{company.short_name}", old=before, new=after)
        await requeue_blocked(row.id, now)
    return view(company, row)


async def block(integration_id: int, *, kind: str, message: str, now: datetime, offered_key: str | None = None) -> bool:
    """Mark the integration blocked (in the caller's transaction); False when it already was (notify once)."""
    row = await Integration.filter(id=integration_id).select_for_update(no_key=True).get()
    if isinstance((row.settings or {}).get("blocked"), dict):
        return False
    row.settings = {**(row.settings or {}), "blocked": {"kind": kind, "message": message, "at": now.isoformat(),
                                                        "offered_key": offered_key}}
    await row.save(update_fields=["settings"])
    return True


async def resume_after_test(company: Company, *, now: datetime, actor: str) -> int:
    """``xml <co> test`` succeeded: the server was fixed, so a block is cleared and failed files go again
    (in one transaction under the row lock, audited when something changed); how many files were re-queued."""
    async with in_transaction():
        row = await locked(company)
        was_blocked = isinstance((row.settings or {}).get("blocked"), dict)
        if was_blocked:
            row.settings = {k: v for k, v in (row.settings or {}).items() if k != "blocked"}
            await row.save(update_fields=["settings"])
        count = await requeue_blocked(row.id, now)
        if was_blocked or count:
            await audit.record(company.tenant_id, actor=actor, action="xml.resume",
                               target=f"company:{company.short_name}",
                               old={"blocked": "yes" if was_blocked else "no"}, new={"requeued": str(count)})
    return count


async def requeue_blocked(integration_id: int, now: datetime) -> int:
    """Failed files of the integration go back to the upload queue (settings changed: worth trying again)."""
    return await XmlExport.filter(integration_id=integration_id, status=XmlExportStatus.FAILED).update(
        status=XmlExportStatus.PENDING, next_attempt_at=now, attempts=0)


def password_purpose(integration_id: int) -> str:
    return f"sftp-password:{integration_id}"


async def locked(company: Company) -> Integration:
    """The XML export row of ``company``, locked for the transaction (serialises changes and runs)."""
    return await Integration.filter(company_id=company.id, kind=KIND).select_for_update(no_key=True).get()


def check_ready(company: Company, s: dict[str, Any]) -> None:
    """Refuse (``NotEligible``, saying what to do) a destination that cannot be uploaded to yet."""
    co = company.short_name
    if not f.destination_text(s):
        raise NotEligible(f"The XML export of {co} has no destination yet: set one with `/invoicing xml {co} set "
                          f"host=… username=… path=…` (SFTP) or `set dir=/mnt/share` (a local directory).")
    if s.get("dir"):
        return
    if not s.get("host_key"):
        raise NotEligible(f"The SFTP server's host key of {co} is not pinned: run `/invoicing xml {co} test` and "
                          f"press *Trust this key* after checking its fingerprint, or set "
                          f"`host_key=\"ssh-ed25519 AAAA…\"`.")
    if (s.get("auth") or "key") == "password" and not s.get("password"):
        raise NotEligible(f"auth=password needs a password: `/invoicing xml {co} set password=…`.")


async def _save(row: Integration) -> None:
    await row.save(update_fields=["enabled", "include_errors", "starting_from", "settings", "schedule",
                                  "next_run_at"])


async def _save_and_audit(company: Company, row: Integration, old: dict[str, str], *, actor: str,
                          action: str) -> None:
    await _save(row)
    before, after = audit.changed(old, _snapshot(row))
    await audit.record(company.tenant_id, actor=actor, action=action, target=f"company:{company.short_name}",
                       old=before, new=after)


def _snapshot(row: Integration) -> dict[str, str]:
    """The audited fields as JSON-safe strings; the password only as set/none, never its value."""
    s = row.settings or {}
    return {
        "enabled": "on" if row.enabled else "off",
        "include_errors": "on" if row.include_errors else "off",
        "starting_from": _iso(row.starting_from),
        "schedule": row.schedule,
        "next_run_at": _iso(row.next_run_at),
        "destination": f.destination_text(s) or "none",
        "content": f.content_of(s),
        "host_key": f.fingerprint_or_none(s.get("host_key")) or "none",
        "auth": s.get("auth") or "key",
        "password": "set" if s.get("password") else "none",
    }


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else "none"


def local_dir(s: dict[str, Any]) -> Path | None:
    """The local directory destination, if that is what is configured."""
    return Path(s["dir"]) if s.get("dir") else None
