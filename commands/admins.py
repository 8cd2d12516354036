"""``admins [add|remove @user]``: who may change configuration besides workspace admins."""

from __future__ import annotations

import re

from commands.context import Args, CommandContext
from commands.replies import Reply, message, section
from invoicing.errors import InvalidInput
from models import AuditEntry, Tenant

_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


async def admins(args: Args, ctx: CommandContext) -> Reply:
    args.only_options(())
    tenant = await Tenant.get(id=ctx.tenant.id)
    if not args.words:
        names = ", ".join(f"<@{u}>" for u in tenant.admin_user_ids) or "nobody yet"
        return message("InvoiceBot admins", section(
            f"Workspace admins and owners can change configuration. InvoiceBot admins of {tenant.name}: {names}."))
    action = args.words[0].lower()
    if action not in {"add", "remove"}:
        raise InvalidInput("admins", f"unknown action {action!r}; use `admins add @user` or `admins remove @user`")
    user = args.word(1, "user (mention them with @)")
    args.no_extra_words(2)
    if not _USER.match(user):
        raise InvalidInput("user", f"{user!r} is not a Slack user; mention them, e.g. `admins add @dana`")
    await ctx.require_admin("manage InvoiceBot admins")
    old = list(tenant.admin_user_ids)
    new = old + [user] if action == "add" and user not in old else [u for u in old if u != user or action == "add"]
    if new != old:
        tenant.admin_user_ids = new
        await tenant.save(update_fields=["admin_user_ids"])
        await AuditEntry.create(tenant_id=tenant.id, actor=ctx.actor, action=f"admins.{action}", target="admins",
                                old={"admins": ",".join(old)}, new={"admins": ",".join(new)})
    verb = "is now" if action == "add" else "is no longer"
    return message(f"<@{user}> {verb} an InvoiceBot admin", section(f"<@{user}> {verb} an InvoiceBot admin."))
