"""Placeholder until the service layer lands (replaced in this session)."""
from commands.context import Args, CommandContext
from commands.replies import Reply
from invoicing.errors import InvoiceBotError


async def orders(args: Args, ctx: CommandContext) -> Reply:
    raise InvoiceBotError("not yet")
