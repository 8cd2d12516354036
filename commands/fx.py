"""``fx [list] [page=N]`` and ``fx set <BASE> <QUOTE> <rate> [date=YYYY-MM-DD]``: the exchange rates on record.

An invoice in another currency than the seller's shows its VAT also in the seller's
currency with a rate from this list (``invoicing.billing.fx`` says which); rates are only
ever set by ops, pushed by the feed or imported from the ECB CSV.
"""

from __future__ import annotations

from datetime import date

from commands.context import Args, CommandContext
from commands.paging import beyond_end, footer, page_of
from commands.replies import Reply, context, header, md, mention, message, section
from invoicing.billing.fx import issue_day, set_rate
from invoicing.errors import InvalidInput
from invoicing.ingest.batches import UpsertResult
from models import FxRate, FxSource


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("date", f"{value!r} is not a date; write it like 2026-12-01") from None


async def fx(args: Args, ctx: CommandContext) -> Reply:
    action = args.words[0].lower() if args.words else "list"
    if action == "list":
        args.no_extra_words(1)
        args.only_options(("page",))
        return await _list(args, ctx)
    if action != "set":
        raise InvalidInput("fx", f"unknown action {action!r}; use `fx`, `fx list` or `fx set EUR GBP 0.8523`")
    base, quote, rate = args.word(1, "base currency"), args.word(2, "quote currency"), args.word(3, "rate")
    args.no_extra_words(4)
    args.only_options(("date",))
    day = _date(args.options["date"]) if "date" in args.options else issue_day(ctx.clock(), ctx.tenant.timezone)
    await ctx.require_admin("set exchange rates")
    row, result = await set_rate(ctx.tenant, base, quote, rate, day, source=FxSource.OPS, actor=ctx.actor)
    what = f"1 {row.base} = {row.rate.normalize():f} {row.quote} on {row.day.isoformat()}"
    if result is UpsertResult.UNCHANGED:
        return message(f"Rate unchanged: {what}", section(f"That rate is already on record: {what}."))
    return message(f"Rate set: {what}", section(f":white_check_mark: Rate set: {what} (source ops)."),
                   context(md("Set by {}. Invoices issued from that day on use it; issued invoices keep theirs.",
                              mention(ctx.user_id))))


async def _list(args: Args, ctx: CommandContext) -> Reply:
    page = page_of(args)
    scope = FxRate.filter(tenant_id=ctx.tenant.id)
    total = await scope.count()
    if not total:
        return message("No exchange rates yet.", section(
            "No exchange rates yet. Set one with `/invoicing fx set EUR GBP 0.8523 [date=YYYY-MM-DD]` or import "
            "the ECB reference rates with `invoicebot import fx eurofxref.csv --tenant NAME`."))
    rows = await scope.order_by("-day", "base", "quote").offset(page.offset).limit(page.size)
    if not rows:
        return message("No rates on that page.", section(beyond_end(page, total, "rates", "fx")))
    lines = [f"`{r.day.isoformat()}` 1 {r.base} = {r.rate.normalize():f} {r.quote} · {r.source.value}" for r in rows]
    return message(f"{total} exchange rates", header(f"Exchange rates of {ctx.tenant.name}"),
                   section("\n".join(lines)),
                   context(f"VAT of invoices in another currency is also shown in {ctx.tenant.currency} with the "
                           "latest rate on or before the issue date."),
                   *footer(page, total, command="fx"))
