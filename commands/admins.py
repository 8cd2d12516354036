"""``admins [add|remove @user]``: who may change configuration besides workspace admins."""

from __future__ import annotations

from commands.context import Args, CommandContext
from commands.replies import Mrkdwn, Reply, md, mention, message, section
from invoicing.errors import InvalidInput
from invoicing.parties.tenants import SLACK_USER_ID, add_admin, remove_admin
from models import Tenant


async def admins(args: Args, ctx: CommandContext) -> Reply:
    args.only_options(())
    tenant = await Tenant.get(id=ctx.tenant.id)
    if not args.words:
        names = Mrkdwn(", ").join(mention(u) for u in tenant.admin_user_ids) or "nobody yet"
        return message("InvoiceBot admins", section(md(
            "Workspace admins and owners can change configuration. InvoiceBot admins of {}: {}.", tenant.name, names)))
    action = args.words[0].lower()
    if action not in {"add", "remove"}:
        raise InvalidInput("admins", f"unknown action {action!r}; use `admins add @user` or `admins remove @user`")
    user = args.word(1, "user (mention them with @)")
    args.no_extra_words(2)
    if not SLACK_USER_ID.match(user):
        raise InvalidInput("user", f"{user!r} is not a Slack user; mention them, e.g. `admins add @dana`")
    await ctx.require_admin("manage InvoiceBot admins")
    if action == "add":
        await add_admin(tenant, user, actor=ctx.actor)
    else:
        await remove_admin(tenant, user, actor=ctx.actor)
    verb = "is now" if action == "add" else "is no longer"
    return message(md("{} {} an InvoiceBot admin", mention(user), verb),
                   section(md("{} {} an InvoiceBot admin.", mention(user), verb)))
