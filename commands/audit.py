"""``audit [<co>]``: who changed what, when, from which value to which."""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.replies import Reply, header, message, section
from invoicing.billing.runs import find_company
from models import AuditEntry

SHOWN = 25


def _change(entry: AuditEntry) -> str:
    keys = list(dict.fromkeys([*entry.old, *entry.new]))
    parts = [f"{k}: {entry.old.get(k, '∅') or '∅'} → {entry.new.get(k, '∅') or '∅'}" for k in keys[:8]]
    more = f" (+{len(keys) - 8} more)" if len(keys) > 8 else ""
    return "; ".join(parts) + more


async def audit(args: Args, ctx: CommandContext) -> Reply:
    args.only_options(())
    args.no_extra_words(1)
    query = AuditEntry.filter(tenant_id=ctx.tenant.id)
    title = f"Audit log of {ctx.tenant.name}"
    if args.words:
        c = await find_company(ctx.tenant, args.words[0])
        query = query.filter(target__startswith=f"company:{c.short_name}")
        title = f"Audit log of {c.short_name}"
    entries = await query.order_by("-id").limit(SHOWN)
    if not entries:
        return message("No changes recorded yet.", section("No changes recorded yet."))
    actor = lambda a: f"<@{a.removeprefix('slack:')}>" if a.startswith("slack:") else a  # noqa: E731
    lines = [f"`{local(e.at, ctx.tenant.timezone)}` {actor(e.actor)} *{e.action}* {e.target} — {_change(e)}"
             for e in entries]
    return message(title, header(title), *(section(line) for line in lines))
