"""``xml <co> [enable | disable | set … | test | run [dry-run]]`` and ``xml key``: the company's XML export.

Mutating actions (``enable``, ``disable``, ``set``, ``test``, ``run``) need an admin; showing
the settings, ``run dry-run`` and ``xml key`` do not (the public key is public). ``test``
probes the destination and answers in words; when the server's host key is not pinned (or
changed) the answer shows the offered key's fingerprint with *Trust this key*
(``commands.xml_notices.TRUST``), which pins it only if the server still offers that key.
"""

from __future__ import annotations

from typing import Any

from commands.clicks import Click, ClickResult, refusal
from commands.context import Args, CommandContext
from commands.formatting import local
from commands.invoice_buttons import clock_time, without_buttons
from commands.replies import Mrkdwn, Reply, context, fields_section, header, md, mention, message, section
from commands.runs import DRY_RUN_FLAGS
from commands.xml_notices import TRUST, exported_reply, skipped_lines, trust_button
from invoicing.billing.runs import RunReport
from invoicing.errors import InvalidInput, NotFound
from invoicing.integrations.xml_export import destinations, endpoint, keys
from invoicing.integrations.xml_export import run as xml_run
from invoicing.integrations.xml_export import settings as xml_config
from invoicing.integrations.xml_export.destinations import UploadError
from invoicing.integrations.xml_export.settings import XmlSettings
from invoicing.parties.companies import find_company
from models import Company, Integration, IntegrationKind, RunOutcome, RunTrigger, XmlExport, XmlExportStatus

SET_OPTIONS = ("host", "port", "username", "path", "dir", "schedule", "next", "starting_from", "content", "host_key",
               "auth", "password", "include_errors", "channel")
ACTIONS = ("enable", "disable", "set", "test", "run")


def mutates(args: Args) -> bool:
    """Whether ``xml …`` changes something (``dispatch.Command.mutates``): not the show, ``key`` or dry runs."""
    words = [w.lower() for w in args.words]
    if len(words) < 2 or words[0] == "key":
        return False
    if words[1] == "run":
        return not (len(words) > 2 and all(w in DRY_RUN_FLAGS for w in words[2:]))
    return words[1] in {"enable", "disable", "set", "test"}


async def show(s: XmlSettings, company: Company, note: str = "") -> Reply:
    tz = s.timezone
    state = ":large_green_circle: enabled" if s.enabled else ":white_circle: disabled"
    last = await XmlExport.filter(company_id=company.id).order_by("-sequence").limit(1) \
        .values("file_name", "status", "location", "order_count", "created_at", "last_error")
    pending = await XmlExport.filter(company_id=company.id,
                                     status__in=[XmlExportStatus.PENDING, XmlExportStatus.SENDING]).count()
    last_text = "none yet"
    if last:
        row = last[0]
        last_text = md("{} ({}, {} orders, {})", row["file_name"], row["status"], row["order_count"],
                       local(row["created_at"], tz))
    key = f"{s.host_key_fingerprint}" if s.host_key_fingerprint else ("not needed" if s.destination.startswith(
        "file:") else ":warning: not pinned (run `test`)")
    blocks = [
        header(f"XML export: {s.company}"),
        fields_section([
            ("State", state), ("Next export", local(s.next_run_at, tz)),
            ("Schedule", f"{s.schedule} ({tz})"), ("Starting from", local(s.starting_from, tz)),
            ("Destination", s.destination or ":warning: none (set host= username= path= or dir=)"),
            ("Content", s.content), ("Host key", key),
            ("Authentication", "password (set)" if s.auth == "password" and s.password_set
             else "password (:warning: not set)" if s.auth == "password" else "the tenant's SSH key (`xml key`)"),
            ("Include orders with errors", "yes" if s.include_errors else "no"),
            ("Last file", last_text), ("Waiting to upload", str(pending)),
        ]),
    ]
    if s.blocked is not None:
        blocks.append(section(md(":no_entry: *Blocked* ({}) since {}: {}", s.blocked.kind, local(s.blocked.at, tz),
                                 s.blocked.message)))
    blocks.append(context(md("Change with `/invoicing xml {} set host=… username=… path=… host_key=\"ssh-ed25519 …\"`"
                             " or `set dir=/mnt/share`; `test` checks it.", s.company)))
    if note:
        blocks.insert(0, context(note))
    return message(f"XML export of {s.company}: {'enabled' if s.enabled else 'disabled'}", *blocks)


async def xml(args: Args, ctx: CommandContext) -> Reply:
    first = args.word(0, "company")
    if first.lower() == "key":
        args.no_extra_words(1)
        args.only_options(())
        return await _key(ctx)
    company = await find_company(ctx.tenant, first)
    action = args.words[1].lower() if len(args.words) > 1 else ""
    now = ctx.clock()
    if action == "":
        args.only_options(())
        return await show(await xml_config.settings(company), company)
    if action not in ACTIONS:
        raise InvalidInput("xml", f"unknown action {action!r}; use {', '.join(ACTIONS)}")
    if action == "run":
        return await _run(args, ctx, company)
    args.no_extra_words(2)
    if action == "set":
        if not args.options:
            raise InvalidInput("xml set", f"give at least one of {', '.join(SET_OPTIONS)}")
        args.only_options(SET_OPTIONS)
    else:
        args.only_options(())
    await ctx.require_admin("change the XML export")
    if action == "test":
        return await _test(ctx, company)
    if action == "enable":
        result = await xml_config.enable(company, now=now, actor=ctx.actor)
        note = md("Enabled by {}. First export: {}.", mention(ctx.user_id), local(result.next_run_at, company.timezone))
    elif action == "disable":
        result = await xml_config.disable(company, now=now, actor=ctx.actor)
        note = md("Disabled by {}. No exports until it is enabled again.", mention(ctx.user_id))
    else:
        result = await xml_config.configure(company, now=now, actor=ctx.actor, box=ctx.services.secret_box,
                                            **dict(args.options))
        note = md("Updated by {}.", mention(ctx.user_id))
        await ctx.services.kick_outbox()  # a cleared block re-queued files
    ctx.services.wake_scheduler()
    return await show(result, company, note)


async def _run(args: Args, ctx: CommandContext, company: Company) -> Reply:
    flags = [w.lower() for w in args.words[2:]]
    args.only_options(())
    if any(flag not in DRY_RUN_FLAGS for flag in flags):
        raise InvalidInput("xml run", f"unexpected {' '.join(args.words[2:])!r}; use `xml {company.short_name} run`"
                                      f" or `xml {company.short_name} run dry-run`")
    dry = bool(flags)
    if not dry:
        await ctx.require_admin("run the XML export")
    report = await xml_run.run_company(ctx.tenant, company, trigger=RunTrigger.MANUAL, actor=ctx.actor, dry_run=dry,
                                       clock=ctx.clock)
    location = ""
    if report.outcome == RunOutcome.EXPORTED:
        row = await Integration.get(company_id=company.id, kind=IntegrationKind.XML_EXPORT)
        name = report.message.split(" ")[2] if dry else report.message.split(":")[0].split(" ")[0]
        location = endpoint.location(row.settings or {}, name)
        if not dry:
            await ctx.services.kick_outbox()
    return run_reply(report, dry=dry, location=location)


def run_reply(report: RunReport, *, dry: bool, location: str = "") -> Reply:
    """The answer to ``xml <co> run [dry-run]`` (the channel also gets the run's notice)."""
    skipped = {"skipped_by_reason": report.skipped_by_reason, "skipped": [{"ref": s.ref} for s in report.skipped]}
    if report.outcome == RunOutcome.NO_ORDERS:
        extra = skipped_lines(skipped)
        title = f"{'Dry run: ' if dry else ''}No XML export for {report.company}: nothing new to export"
        return message(title, section(f":zzz: *{title}*. No file, no sequence number used."),
                       *([section(extra)] if extra else []), ephemeral=dry)
    payload: dict[str, Any] = {"company": report.company, "orders": report.orders_invoiced, "location": location,
                               **skipped}
    reply = exported_reply(payload, dry_run=dry)
    return message(reply.text, *reply.blocks, context(report.message), ephemeral=True)


async def _test(ctx: CommandContext, company: Company) -> Reply:
    row = await Integration.get(company_id=company.id, kind=IntegrationKind.XML_EXPORT)
    target = await endpoint.target(row, ctx.tenant.id, ctx.services.secret_box)
    try:
        steps = await destinations.probe(target)
    except UploadError as error:
        blocks = [section(md(":x: *Test of the XML export of {} failed* ({}).\n{}", company.short_name, error.kind,
                             error.message))]
        if error.offered_key:
            fingerprint = destinations.fingerprint(error.offered_key)
            blocks.append(section(md("The server offers the host key `{}`. If the server's owner confirms this "
                                     "fingerprint, trust it:", fingerprint)))
            blocks.append(trust_button(row.id, error.offered_key, fingerprint))
        return message(f"Test of the XML export of {company.short_name} failed: {error.message}", *blocks)
    done = Mrkdwn("\n").join(f"• {step}" for step in steps)
    requeued = await xml_config.resume_after_test(company, now=ctx.clock(), actor=ctx.actor)
    blocks = [section(md(":white_check_mark: *The destination of {} works.*\n{}", company.short_name, done))]
    if requeued:
        blocks.append(context(md("{} file(s) that had failed are uploaded again.", requeued)))
        await ctx.services.kick_outbox()
    return message(f"XML export of {company.short_name}: the destination works", *blocks)


async def _key(ctx: CommandContext) -> Reply:
    key = await keys.tenant_key(ctx.tenant.id, ctx.services.secret_box)
    return message(
        f"SSH public key of {ctx.tenant.name}: {key.fingerprint}",
        header(f"SSH key of {ctx.tenant.name}"),
        section(md("Add this line to `~/.ssh/authorized_keys` of the SFTP user on the server:\n```{}```",
                   key.public_line)),
        context(md("Fingerprint {}. Every company of {} uses this key (auth=key, the default).", key.fingerprint,
                   ctx.tenant.name)),
    )


async def trust_click(click: Click) -> ClickResult:
    """*Trust this key*: pin the offered key if the server still offers exactly it (admins only)."""
    ctx = click.ctx
    await ctx.require_admin("trust an SFTP host key")
    raw_id, _, offered = click.value.partition("|")
    row = await Integration.filter(id=int(raw_id) if raw_id.isdigit() and len(raw_id) < 10 else 0,
                                   kind=IntegrationKind.XML_EXPORT, company__tenant_id=ctx.tenant.id).first()
    if row is None or not offered:
        raise NotFound("That XML export is not in this workspace any more.")
    company = await Company.get(id=row.company_id)
    s = row.settings or {}
    if not s.get("host"):
        return refusal(f"The XML export of {company.short_name} is no longer an SFTP server; nothing was pinned.")
    try:
        now_offered = await destinations.server_host_key(str(s["host"]), int(s.get("port") or 22))
    except UploadError as error:
        return refusal(f"Could not ask the server for its key again ({error.message}); nothing was pinned.")
    if now_offered.split()[:2] != offered.split()[:2]:
        return refusal(f"The server now offers another key ({destinations.fingerprint(now_offered)}), not the one "
                       f"shown; nothing was pinned. Run `/invoicing xml {company.short_name} test` again.")
    await xml_config.trust_host_key(company, offered, now=ctx.clock(), actor=ctx.actor)
    await ctx.services.kick_outbox()
    status = md("Host key {} trusted by {} at {}.", destinations.fingerprint(offered), mention(ctx.user_id),
                clock_time(ctx, company.timezone))
    update = without_buttons(click.message_blocks, {TRUST}, status) if click.message_blocks else None
    return ClickResult(reply=message(str(status), section(status)), update=update)


CLICKS = {TRUST: trust_click}
