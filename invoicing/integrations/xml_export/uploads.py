"""The upload outbox: turns committed ``XmlExport`` rows into files that arrived at their destination.

The same state machine as the e-mail outbox (``invoicing.delivery.outbox``)::

    pending ──claim──▶ sending ──upload──▶ sent (location kept)
       ▲                  │ transient (unreachable, timeout, protocol, disk full): back to pending with backoff
       └──────────────────┤ permanent (auth, host key, no directory, permission) or the last allowed
                          │ attempt: failed; a permanent error also blocks the integration
                          └ crash: the lease (``next_attempt_at``) expires and the file is claimed again

**In order, per company.** Only the lowest ``sequence`` of a company that is not ``sent``
may be uploaded: file 18 never arrives before 17 (an import that reads files in name order
never sees a gap). A failed or backing-off file holds the later ones back.

**Claim.** ``pending → sending`` (or an expired ``sending`` → ``sending``) is a conditional
UPDATE committed before the upload; only the worker whose UPDATE changed the row uploads.

**Exactly one final file.** The file's bytes are stored (``body``: gzip, deterministic), and
``destinations.upload`` writes a temporary name then renames atomically (replacing an
existing file). So after a crash mid-upload — or after an upload whose outcome was never
recorded — the same name gets the same bytes again: never a partial file under the final
name, never a second file with the same orders.

**Notices** (the Slack notice outbox, one each, by dedupe key): the first transient failure
of a file (``xml-failing:<id>``), its recovery (``xml-recovered:<id>``, only after a failing
notice), giving up after ``max_attempts`` (``xml-gave-up:<id>``) and a permanent error
(``xml-blocked:<integration id>:<since>``, with the offered host key when there is one:
its notice carries the *Trust this key* button). Blocked integrations upload nothing until
their settings change (``settings.configure`` / ``trust_host_key`` re-queue the files).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from invoicing.backoff import retry_delay
from invoicing.clock import Clock, utc_now
from invoicing.delivery import notices
from invoicing.errors import InvoiceBotError
from invoicing.integrations.xml_export import destinations, endpoint
from invoicing.integrations.xml_export import settings as xml_settings
from invoicing.integrations.xml_export.destinations import Target, Uploaded, UploadError
from invoicing.integrations.xml_export.fields import fingerprint_or_none
from invoicing.integrations.xml_export.run import unpack_to
from invoicing.secrets import SecretBox
from models import Company, Integration, NoticeKind, SlackNotice, XmlExport, XmlExportStatus

log = logging.getLogger(__name__)

Upload = Callable[..., Awaitable[Uploaded]]
#: Not an upload problem but our own configuration (no destination, a secret that does not open): blocks too.
CONFIG = "config"


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one file in one ``upload_due`` call: ``sent``, ``pending`` (retried later) or ``failed``."""

    export_id: int
    file_name: str
    status: XmlExportStatus
    error: str
    attempts: int
    location: str = ""


class Uploads:
    """Uploads due files; safe to run in several workers (and replicas) at once.

    ``box`` opens the tenant SSH keys and SFTP passwords; backoff values are seconds;
    ``lease_seconds`` must exceed the longest upload (a 100 MB file on a slow link).
    """

    def __init__(self, box: SecretBox, *, clock: Clock = utc_now, max_attempts: int = 8,
                 base_backoff_seconds: float = 30, max_backoff: float = 3600, lease_seconds: float = 900,
                 timeout: float = 30, upload: Upload = destinations.upload) -> None:
        self._box = box
        self._clock = clock
        self._max_attempts = max_attempts
        self._base = base_backoff_seconds
        self._max_backoff = max_backoff
        self._lease = timedelta(seconds=lease_seconds)
        self._timeout = timeout
        self._upload = upload

    async def upload_due(self, limit: int = 50) -> list[UploadOutcome]:
        """Upload up to ``limit`` due files, each company's in sequence order; one outcome per file tried."""
        outcomes: list[UploadOutcome] = []
        while len(outcomes) < limit:
            progressed = False
            for head in await self._due_heads():
                outcome = await self._one(head)
                if outcome is None:
                    continue
                outcomes.append(outcome)
                progressed = progressed or outcome.status == XmlExportStatus.SENT
                if len(outcomes) >= limit:
                    break
            if not progressed:  # a sent file may have made its company's next one due
                break
        return outcomes

    async def next_due_at(self) -> datetime | None:
        """When the earliest company's next file becomes due (its backoff or lease ends), for the loop's sleep."""
        times = [h["next_attempt_at"] for h in await self._heads()
                 if h["status"] != XmlExportStatus.FAILED and h["next_attempt_at"] is not None]
        return min(times) if times else None

    async def _heads(self) -> list[dict[str, Any]]:
        """The first unsent file of every company (a failed one holds the company's later files back)."""
        rows = await XmlExport.filter(status__in=[XmlExportStatus.PENDING, XmlExportStatus.SENDING,
                                                  XmlExportStatus.FAILED]) \
            .order_by("company_id", "sequence").values("id", "company_id", "status", "next_attempt_at")
        heads: dict[int, dict[str, Any]] = {}
        for row in rows:
            heads.setdefault(row["company_id"], row)
        return list(heads.values())

    async def _due_heads(self) -> list[dict[str, Any]]:
        """The first unsent file of every company, when it is due now."""
        now = self._clock()
        return [h for h in await self._heads() if h["status"] != XmlExportStatus.FAILED
                and (h["next_attempt_at"] is None or h["next_attempt_at"] <= now)]

    async def _claim(self, head: dict[str, Any]) -> bool:
        now = self._clock()
        due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        if head["status"] == XmlExportStatus.SENDING:
            due = Q(next_attempt_at__lte=now)  # the lease expired: its worker stopped mid-upload
        claimed = await XmlExport.filter(due, id=head["id"], status=head["status"]).update(
            status=XmlExportStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + self._lease)
        return claimed == 1

    async def _one(self, head: dict[str, Any]) -> UploadOutcome | None:
        if not await self._claim(head):
            return None
        export = await XmlExport.get(id=head["id"])
        integration = await Integration.get(id=export.integration_id)
        if head["status"] == XmlExportStatus.SENDING:
            log.warning("xml upload outcome unknown, uploading again export=%d file=%s attempts=%d", export.id,
                        export.file_name, export.attempts)
        try:
            target = await endpoint.target(integration, export.tenant_id, self._box)
        except InvoiceBotError as bad:  # no destination, or a secret that does not open: ops must fix settings
            return await self._blocked(export, CONFIG, bad.message, None)
        try:
            uploaded = await self._send(export, target)
        except UploadError as error:
            if error.permanent:
                return await self._blocked(export, error.kind, error.message, error.offered_key)
            return await self._retry_later(export, error.kind, error.message)
        except Exception as exc:  # a bug or an unexpected OS error: retried (bounded), logged with traceback
            log.exception("xml upload failed export=%d file=%s", export.id, export.file_name)
            return await self._retry_later(export, "protocol", f"the upload failed ({type(exc).__name__})")
        return await self._sent(export, uploaded)

    async def _send(self, export: XmlExport, target: Target) -> Uploaded:
        with tempfile.TemporaryDirectory(prefix="invoicebot-upload-") as tmp:
            path = Path(tmp) / export.file_name
            await asyncio.to_thread(unpack_to, export.body, path)
            return await self._upload(target, export.file_name, path, timeout=self._timeout)

    async def _sent(self, export: XmlExport, uploaded: Uploaded) -> UploadOutcome | None:
        now = self._clock()
        async with in_transaction():
            if not await self._move(export, status=XmlExportStatus.SENT, sent_at=now, next_attempt_at=None,
                                    location=uploaded.location, error_kind=""):
                return None
            if await SlackNotice.exists(dedupe_key=f"xml-failing:{export.id}"):
                await self._notice(export, NoticeKind.XML_RECOVERED, f"xml-recovered:{export.id}",
                                   {"location": uploaded.location, "attempts": export.attempts}, now)
        log.info("xml file uploaded export=%d file=%s location=%s attempts=%d", export.id, export.file_name,
                 uploaded.location, export.attempts)
        return UploadOutcome(export.id, export.file_name, XmlExportStatus.SENT, "", export.attempts,
                             uploaded.location)

    async def _retry_later(self, export: XmlExport, kind: str, message: str) -> UploadOutcome | None:
        now = self._clock()
        gave_up = export.attempts >= self._max_attempts
        delay = retry_delay(export.attempts, base=self._base, cap=self._max_backoff)
        async with in_transaction():
            changes: dict[str, Any] = {"last_error": message, "error_kind": kind}
            if gave_up:
                changes.update(status=XmlExportStatus.FAILED, next_attempt_at=None,
                               last_error=f"{message} (gave up after {export.attempts} attempts)")
            else:
                changes.update(status=XmlExportStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay))
            if not await self._move(export, **changes):
                return None
            facts = {"kind": kind, "error": message, "attempts": export.attempts, "gave_up": gave_up,
                     "retry_in": None if gave_up else int(delay)}
            await self._notice(export, NoticeKind.XML_FAILING, f"xml-failing:{export.id}", facts, now)
            if gave_up:
                await self._notice(export, NoticeKind.XML_FAILING, f"xml-gave-up:{export.id}", facts, now)
        log.warning("xml upload failed export=%d file=%s kind=%s attempts=%d action=%s", export.id, export.file_name,
                    kind, export.attempts, "failed" if gave_up else f"retry in {int(delay)}s")
        status = XmlExportStatus.FAILED if gave_up else XmlExportStatus.PENDING
        return UploadOutcome(export.id, export.file_name, status, message, export.attempts)

    async def _blocked(self, export: XmlExport, kind: str, message: str,
                       offered_key: str | None) -> UploadOutcome | None:
        now = self._clock()
        async with in_transaction():
            if not await self._move(export, status=XmlExportStatus.FAILED, next_attempt_at=None, last_error=message,
                                    error_kind=kind):
                return None
            if await xml_settings.block(export.integration_id, kind=kind, message=message, now=now,
                                        offered_key=offered_key):
                await self._notice(export, NoticeKind.XML_BLOCKED,
                                   f"xml-blocked:{export.integration_id}:{now.isoformat()}",
                                   {"kind": kind, "error": message, "offered_key": offered_key,
                                    "fingerprint": fingerprint_or_none(offered_key),
                                    "integration_id": export.integration_id}, now)
        log.warning("xml export blocked export=%d file=%s kind=%s", export.id, export.file_name, kind)
        return UploadOutcome(export.id, export.file_name, XmlExportStatus.FAILED, message, export.attempts)

    async def _move(self, export: XmlExport, **changes: Any) -> bool:
        """Apply ``changes`` if the row is still ours (``sending`` with our attempt count)."""
        updated = await XmlExport.filter(id=export.id, status=XmlExportStatus.SENDING,
                                         attempts=export.attempts).update(**changes)
        if not updated:
            log.warning("xml export changed under us export=%d wanted=%s", export.id, changes.get("status"))
        return bool(updated)

    async def _notice(self, export: XmlExport, kind: NoticeKind, key: str, facts: dict[str, Any],
                      now: datetime) -> None:
        company = await Company.get(id=export.company_id)
        payload = {"company": company.short_name, "file_name": export.file_name, "export_id": export.id,
                   "sequence": export.sequence, "orders": export.order_count, **facts}
        await notices.queue_integration_notice(company, kind, key, payload, now=now)
