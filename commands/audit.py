"""``audit [<co>]``: who changed what, when, from which value to which."""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.paging import beyond_end, footer, page_of
from commands.replies import Mrkdwn, Reply, escape, header, md, mention, message, section
from invoicing.audit import LogEntry, count, recent
from invoicing.parties.companies import find_company

PAGE_SIZE = 25


def _change(entry: LogEntry) -> str:
    keys = list(dict.fromkeys([*entry.old, *entry.new]))
    parts = [f"{k}: {entry.old.get(k, '∅') or '∅'} → {entry.new.get(k, '∅') or '∅'}" for k in keys[:8]]
    more = f" (+{len(keys) - 8} more)" if len(keys) > 8 else ""
    return "; ".join(parts) + more


def _actor(actor: str) -> Mrkdwn:
    """A Slack actor as a mention (``slack:U1`` → ``<@U1>``); others (``cli``, ``api:…``) as text."""
    return mention(actor.removeprefix("slack:")) if actor.startswith("slack:") else escape(actor)


async def audit(args: Args, ctx: CommandContext) -> Reply:
    args.only_options(("page",))
    args.no_extra_words(1)
    page = page_of(args, PAGE_SIZE)
    target: str | None = None
    title = f"Audit log of {ctx.tenant.name}"
    words: list[str] = []
    if args.words:
        c = await find_company(ctx.tenant, args.words[0])
        target = f"company:{c.short_name}"
        title = f"Audit log of {c.short_name}"
        words = [c.short_name]
    total = await count(ctx.tenant.id, target=target)
    if not total:
        return message("No changes recorded yet.", section("No changes recorded yet."))
    entries = await recent(ctx.tenant.id, target=target, limit=page.size, offset=page.offset)
    if not entries:
        return message("No changes on that page.", section(beyond_end(page, total, "changes",
                                                                      " ".join(["audit", *words]))))
    zone = ctx.tenant.timezone
    lines = [md("`{}` {} *{}* {} — {}", local(e.at, zone), _actor(e.actor), e.action, e.target, _change(e))
             for e in entries]
    return message(f"{title} ({page.span(total)})", header(f"{title} · {page.span(total)}"),
                   section(Mrkdwn("\n").join(lines)), *footer(page, total, command="audit", words=words))
