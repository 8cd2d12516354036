"""The composition root: everything ``invoicebot serve`` runs, built in one place.

Nothing connects at import time. ``Service.start()`` opens (and migrates) the
database, builds the mail transport (SMTP, or the file outbox when ``SMTP_HOST`` is
empty), the outbox worker, the Slack app (HTTP at ``/slack/events`` or Socket Mode)
with the Slack notice worker, the order feed under ``/api/v1``, ``/healthz`` and the
scheduler loop. Without Slack configured no notice is posted: the rows wait (and
``/invoicing deliveries`` or another replica with Slack sees them).
``Service.stop()`` stops claiming, lets in-flight runs finish (bounded), flushes
nothing half-done (runs are transactions) and closes connections.

**Roles** (``serve --role``): ``all`` (the default) is everything above in one process.
``web`` answers HTTP (Slack, the feed, the Xero callback) and runs no background loop;
``worker`` runs the scheduler and the outbox loops and serves only ``/healthz``. A web
replica's commands wake the workers through ``bot.wakeups`` (PostgreSQL ``NOTIFY``), so a
burst of scheduled runs never queues a Slack ack behind it on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from bot.allocator import HeapTrimmer
from bot.db import database
from bot.http import add_health_route, add_slack_routes
from bot.notifier import SlackNoticeChannel, notice_client
from bot.rendering import RenderPool
from bot.replay_store import ReplayStore, SqliteFileReplayStore
from bot.replays import ReplayGuard
from bot.scheduled_run import ScheduledOutcome
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.slack import create_slack_app
from bot.slack_web import ChannelPoster, web_client
from bot.wakeups import Wakeups
from bot.xero_callback import add_xero_routes
from commands.context import Services
from commands.replies import Reply
from invoicing.billing.runs import RunReport
from invoicing.clock import Clock, utc_now
from invoicing.delivery.mail import mail_domain
from invoicing.delivery.outbox import Outbox
from invoicing.delivery.slack_notices import NoticeOutbox, NoticeOutcome
from invoicing.delivery.transport import FileTransport, SmtpTransport, Transport
from invoicing.integrations.pdf_emailer import approvals
from invoicing.integrations.pdf_emailer.batch import run_batch
from invoicing.integrations.pdf_emailer.run import KIND, run_company
from invoicing.integrations.registry import RUNNERS
from invoicing.integrations.xero.client import XeroClient
from invoicing.integrations.xero.endpoints import XeroEnv, XeroHttp, XeroUrls, redirect_uri
from invoicing.integrations.xero.pacer import Pacers
from invoicing.integrations.xero.pushes import Pusher
from invoicing.integrations.xml_export.uploads import Uploads
from invoicing.secrets import SecretBox
from models import DeliveryStatus, IntegrationKind, NoticeStatus, XmlExportStatus

log = logging.getLogger(__name__)

#: What one ``serve`` process runs (module docstring).
ROLES = ("all", "web", "worker")

OUTBOX_POLL_SECONDS = 30.0
#: The notice worker also polls: rows queued by another process (CLI run, another replica).
NOTICE_POLL_SECONDS = 30.0
OUTBOX_STOP_GRACE = 10.0
#: The XML upload worker polls too (files queued by another process, retries coming due).
UPLOAD_POLL_SECONDS = 30.0
#: And the Xero push worker (pushes queued by another process, held ones coming due).
XERO_POLL_SECONDS = 30.0


def replay_store(database_url: str) -> ReplayStore:
    """The database table on PostgreSQL (replicas share it); on the embedded SQLite a file of its own beside
    the database, so the check before each ack never queues behind the service's writes (``bot.replay_store``)."""
    if not database_url.startswith("sqlite://"):
        return ReplayStore()
    path = database_url.removeprefix("sqlite://").split("?", 1)[0]
    return SqliteFileReplayStore(":memory:" if path in ("", ":memory:") else f"{path}-slack-seen")


def build_transport(settings: Settings) -> Transport:
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpTransport(settings.smtp_host, settings.smtp_port, settings.smtp_username, password,
                             settings.smtp_security)
    return FileTransport(settings.resolved_outbox_dir())


class Service:
    """One replica of InvoiceBot. ``await start()``, then ``await wait_stopped()`` or ``stop()``."""

    def __init__(self, settings: Settings, *, clock: Clock = utc_now, scheduler_enabled: bool = True,
                 role: str = "all") -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.settings = settings
        self.clock = clock
        self.role = role
        self.scheduler_enabled = scheduler_enabled and role != "web"
        self.wakeups = Wakeups(settings.resolved_database_url())
        self.domain = mail_domain(settings.mail_from)
        self.renderer = RenderPool(settings.render_workers)
        # One outbox per SMTP connection, each sending its share of the deliveries (Outbox ``shard``): a
        # message's round trips to the server overlap another's, and together they keep two renders queued
        # per render worker. ``self.outbox`` (the first) also queues resends.
        connections = settings.smtp_connections if settings.smtp_host else 1  # one writer per outbox folder
        self.transports = [build_transport(settings) for _ in range(connections)]
        self.outboxes = [
            Outbox(transport, self.renderer, settings.mail_from, clock,
                   facturx_renderer=self.renderer.facturx, async_renderer=self.renderer.render,
                   async_facturx_renderer=self.renderer.render_facturx,
                   async_composer=self.renderer.render_and_compose,
                   lanes=max(1, 2 * settings.render_workers // connections), shard=(index, connections))
            for index, transport in enumerate(self.transports)
        ]  # fmt: skip
        self.outbox = self.outboxes[0]
        self.scheduler = Scheduler(
            on_result=self._on_scheduled, after_commit=self.kick_outbox, clock=clock,
            lease=timedelta(seconds=settings.scheduler_lease_seconds),
            runners={**RUNNERS, KIND: functools.partial(run_company, mail_domain=self.domain)},
            batch_runners={KIND: functools.partial(run_batch, mail_domain=self.domain)},
            sweep=functools.partial(approvals.sweep, mail_domain=self.domain),
        )
        key = settings.invoicebot_secret_key
        self.secret_box = SecretBox(key.get_secret_value() if key is not None else None)
        # XML export files are uploaded beside the e-mail outbox (``invoicing.integrations.xml_export.uploads``).
        self.uploads = Uploads(self.secret_box, clock=clock, lease_seconds=settings.xml_upload_lease_seconds)
        self._upload_kick = asyncio.Event()
        self._xero_kick = asyncio.Event()
        self.xero_pusher: Pusher | None = None  # built with ``xero`` in start()
        self.poster: ChannelPoster | None = None
        # Slack notices are posted only when Slack is configured; otherwise the rows wait (``deliveries``).
        self.notices: NoticeOutbox | None = None
        self._notice_kick = asyncio.Event()
        self.web_app = web.Application(client_max_size=settings.feed_max_body_bytes)
        self._kicks = [asyncio.Event() for _ in self.outboxes]
        self.trimmer = HeapTrimmer()  # benchmarks/memory.py turns it off to measure without
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._publishing: set[asyncio.Task[None]] = set()  # wake-ups in flight (web role)
        self._db: contextlib.AbstractAsyncContextManager[Any] | None = None
        self._runner: web.AppRunner | None = None
        self._socket_mode: Any = None
        self.replays = replay_store(settings.resolved_database_url())
        self.port: int | None = None
        self.xero: XeroEnv | None = None  # built in start(): it owns an HTTP session

    # --- hooks the commands and the scheduler call ------------------------------------------

    def services(self) -> Services:
        return Services(wake_scheduler=self._wake_scheduler, after_run=self._after_manual_run,
                        resend_invoice=self._resend, render_pdf=self.renderer.render, mail_domain=self.domain,
                        kick_outbox=self.kick_outbox, resend_credit_note=self._resend_credit_note,
                        secret_box=self.secret_box, xero=self.xero)

    async def kick_outbox(self) -> None:
        if self.role == "web":  # the workers send it
            await self.wakeups.publish("outbox")
            return
        self._kick_loops()

    def _kick_loops(self) -> None:
        for kick in self._kicks:
            kick.set()
        self._notice_kick.set()
        self._upload_kick.set()
        self._xero_kick.set()

    def _wake_scheduler(self) -> None:
        if self.role == "web":  # a schedule changed: the workers' schedulers look again
            task = asyncio.create_task(self.wakeups.publish("scheduler"))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
            return
        self.scheduler.wake()

    def _on_wakeup(self, topic: str) -> None:
        if topic == "scheduler":
            self.scheduler.wake()
        else:
            self._kick_loops()

    async def _after_manual_run(self, _: RunReport) -> None:
        await self.kick_outbox()

    async def _resend(self, number: str, tenant_id: int, /, *, to: str | None = None,
                      dedupe_key: str | None = None) -> object:
        delivery = await self.outbox.resend(number, tenant_id, to=to, dedupe_key=dedupe_key)
        await self.kick_outbox()
        return delivery

    async def _resend_credit_note(self, number: str, tenant_id: int, /, *, to: str | None = None,
                                  dedupe_key: str | None = None) -> object:
        delivery = await self.outbox.resend_credit_note(number, tenant_id, to=to, dedupe_key=dedupe_key)
        await self.kick_outbox()
        return delivery

    async def _on_scheduled(self, outcome: ScheduledOutcome) -> None:
        # The run (or the scheduler, for a slot it could not run) queued its notice in its
        # own transaction; only the posting is left (and, for an XML export, the upload).
        self._notice_kick.set()
        self._xero_kick.set()
        if outcome.kind == IntegrationKind.XML_EXPORT:
            self._upload_kick.set()

    async def _post_notice(self, key: str) -> NoticeOutcome | None:
        return await self.notices.deliver_key(key) if self.notices is not None else None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, *, serve_http: bool = True) -> None:
        """Open the database, wire Slack and HTTP, start the scheduler and outbox loops."""
        self._db = database(self.settings.resolved_database_url())
        await self._db.__aenter__()
        self._build_xero()
        self._build_slack()
        if self.role == "worker":
            add_health_route(self.web_app)  # for the orchestrator; Slack and the feed are the web role's
        else:
            self._build_http()
        if serve_http:
            self._runner = web.AppRunner(self.web_app, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
            await site.start()
            self.port = self._runner.addresses[0][1]
            log.info("http listening host=%s port=%s role=%s", self.settings.host, self.port, self.role)
        if self.role == "web":
            if not self.wakeups.enabled:
                log.warning("role web on SQLite: no wake-ups; the worker finds this replica's work at its next poll")
            if self._socket_mode is not None:
                await self._socket_mode.connect_async()
            return
        self.wakeups.listen(self._on_wakeup)
        for index, (outbox, kick) in enumerate(zip(self.outboxes, self._kicks, strict=True)):
            self._tasks.append(asyncio.create_task(self._outbox_loop(outbox, kick), name=f"outbox-{index}"))
        self._tasks.append(asyncio.create_task(self._upload_loop(), name="uploads"))
        self._tasks.append(asyncio.create_task(self._xero_loop(), name="xero"))
        if self.notices is not None:
            self._tasks.append(asyncio.create_task(self._notice_loop(), name="notices"))
        if self.scheduler_enabled:
            self._tasks.append(asyncio.create_task(self.scheduler.run_forever(), name="scheduler"))
        if self._socket_mode is not None:
            await self._socket_mode.connect_async()

    def _build_slack(self) -> None:
        s = self.settings
        if not (s.slack_bot_token and s.slack_signing_secret):
            log.warning("Slack is not configured (SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET unset): no /invoicing")
            return
        client = web_client(s.slack_bot_token.get_secret_value(), s.slack_api_url)
        bolt, self.poster = create_slack_app(signing_secret=s.slack_signing_secret.get_secret_value(),
                                             client=client, services=self.services(), clock=self.clock,
                                             post_notice=self._post_notice)
        channel = SlackNoticeChannel(notice_client(s.slack_bot_token.get_secret_value(), s.slack_api_url),
                                     self.poster)
        self.notices = NoticeOutbox(channel, self.clock)
        self.bolt = bolt
        if self.role == "worker":
            return  # commands go to the web replicas; a worker only posts notices
        if s.slack_app_token:
            from slack_bolt.adapter.socket_mode.async_handler import (
                AsyncSocketModeHandler,
            )

            # No signatures over the socket; the guard still runs a retried envelope only once.
            bolt.use(ReplayGuard(self.replays))
            self._socket_mode = AsyncSocketModeHandler(bolt, s.slack_app_token.get_secret_value())
        else:
            add_slack_routes(self.web_app, bolt, replays=self.replays)

    def _build_xero(self) -> None:
        s = self.settings
        urls = XeroUrls(login=s.xero_login_url, identity=s.xero_identity_url, api=s.xero_api_url,
                        redirect_uri=redirect_uri(s.public_url))
        session = aiohttp.ClientSession()
        self.xero = XeroEnv(box=self.secret_box, http=XeroHttp(session, urls, s.xero_timeout_seconds),
                            clock=self.clock)
        self.xero_pusher = Pusher(XeroClient(self.xero, Pacers()), self.clock)

    async def _dm(self, user: str, reply: Reply) -> None:
        if self.poster is not None:
            await self.poster.post(user, reply)

    def _build_http(self) -> None:
        from bot.feed import create_feed_app

        add_health_route(self.web_app)
        if self.xero is not None:
            add_xero_routes(self.web_app, self.xero, send_dm=self._dm)
        self.web_app.add_subapp("/api/v1", create_feed_app(max_body_bytes=self.settings.feed_max_body_bytes,
                                                          renderer=self.renderer.render))

    async def _outbox_loop(self, outbox: Outbox, kick: asyncio.Event) -> None:
        while not self._stopping.is_set():
            kick.clear()  # before the pass: a kick during it (a run committed) must start the next one
            sent = False
            try:
                outcomes = await outbox.deliver_due()
                if any(o.status == DeliveryStatus.FAILED for o in outcomes):
                    self._notice_kick.set()  # a failed delivery queued its Slack follow-up
                # A pass takes at most 100 rows: while passes keep sending, more may be due now.
                # (An unreachable server sends nothing, so that case still waits and backs off.)
                sent = any(o.status == DeliveryStatus.SENT for o in outcomes)
            except Exception:  # keep delivering; the rows stay pending
                log.exception("outbox pass failed")
            if sent:
                continue
            self.trimmer.maybe_trim()  # idle now: give freed heap back (bot/allocator.py says why)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kick.wait(), timeout=OUTBOX_POLL_SECONDS)

    async def _upload_loop(self) -> None:
        while not self._stopping.is_set():
            self._upload_kick.clear()
            delay = UPLOAD_POLL_SECONDS
            try:
                outcomes = await self.uploads.upload_due()
                if outcomes:
                    self._notice_kick.set()  # sent / failing / blocked files may have queued notices
                if any(o.status == XmlExportStatus.SENT for o in outcomes):
                    continue  # a pass is bounded: more may be due now
                due_at = await self.uploads.next_due_at()
                if due_at is not None:
                    delay = min(delay, max(0.05, (due_at - self.clock()).total_seconds()))
            except Exception:  # keep uploading; the rows stay pending
                log.exception("upload pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._upload_kick.wait(), timeout=delay)

    async def _xero_loop(self) -> None:
        while not self._stopping.is_set():
            self._xero_kick.clear()
            delay = XERO_POLL_SECONDS
            try:
                if self.xero_pusher is not None:
                    if await self.xero_pusher.push_due():
                        self._notice_kick.set()  # refusals, mismatches and waits queue notices
                        continue  # a pass is bounded: more may be due now
                    due_at = await self.xero_pusher.next_due_at()
                    if due_at is not None:
                        delay = min(delay, max(0.05, (due_at - self.clock()).total_seconds()))
            except Exception:  # keep pushing; the rows stay pending
                log.exception("xero push pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._xero_kick.wait(), timeout=delay)

    async def _notice_loop(self) -> None:
        assert self.notices is not None
        while not self._stopping.is_set():
            self._notice_kick.clear()
            delay = NOTICE_POLL_SECONDS
            try:
                outcomes = await self.notices.deliver_due()
                if any(o.status == NoticeStatus.SENT for o in outcomes):
                    continue  # a pass takes at most 100 rows: more may be due now
                due_at = await self.notices.next_due_at()
                if due_at is not None:
                    delay = min(delay, max(0.05, (due_at - self.clock()).total_seconds()))
            except Exception:  # keep posting; the rows stay pending
                log.exception("notice pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._notice_kick.wait(), timeout=delay)

    async def stop(self) -> None:
        self._stopping.set()
        self.scheduler.stop()
        self._kick_loops()  # every loop sees _stopping now
        if self._socket_mode is not None:
            await self._socket_mode.close_async()
        await self.wakeups.close()
        if self._tasks:
            # Runs get the scheduler's own grace; an outbox pass (up to 100 e-mails to a slow
            # server) is cut short after OUTBOX_STOP_GRACE: a message interrupted in flight
            # stays "sending" and is re-sent with the same Message-ID (at-least-once).
            _, pending = await asyncio.wait(self._tasks, timeout=OUTBOX_STOP_GRACE)
            for task in pending:
                # cut short: what they hold is recoverable
                if task.get_name() in {"outbox", "notices", "uploads", "xero"}:
                    task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        for transport in self.transports:
            await transport.close()
        if self.xero is not None:
            await self.xero.http.session.close()
        await self.replays.close()
        await asyncio.to_thread(self.renderer.close)
        if self._db is not None:
            await self._db.__aexit__(None, None, None)
            self._db = None

    async def wait_stopped(self) -> None:
        await self._stopping.wait()
