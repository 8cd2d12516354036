"""``orders <co> [invoiced|uninvoiced|held|errors] [from=] [to=] [invoice=N] [page=N]``: the "Invoiced" filter.

Pages hold ``PAGE_SIZE`` orders; the reply says which of how many it shows
("1–25 of 310") and how to get the next page (``commands.paging``).
"""

from __future__ import annotations

from collections.abc import Iterable

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.paging import beyond_end, footer, page_of
from commands.replies import Reply, header, message, section, shorten
from invoicing.billing.queries import OrderFilter, OrderRow, count_orders, list_orders, parse_bound
from invoicing.errors import InvalidInput
from invoicing.parties.companies import find_company

PAGE_SIZE = 25
FILTERS = {
    "": {},
    "all": {},
    "invoiced": {"invoiced": True},
    "uninvoiced": {"invoiced": False},
    "held": {"on_hold": True},
    "errors": {"has_error": True},
}


def order_lines(rows: Iterable[OrderRow], tz: str) -> list[str]:
    """One line per order: reference, dispatch day in ``tz``, invoice or status, hold and error flags."""
    lines = []
    for row in rows:
        state = f"on *{row.invoice_number}*" if row.invoice_number else row.status.replace("_", " ")
        flags = "".join([" · :pause_button: on hold" if row.on_hold else "",
                         f" · :warning: {shorten(row.error, 200)}" if row.error else ""])
        lines.append(f"`{row.ref}` dispatched {local(row.dispatched_at, tz, with_time=False)} · {state}{flags}")
    return lines


async def orders(args: Args, ctx: CommandContext) -> Reply:
    company = await find_company(ctx.tenant, args.word(0, "company"))
    which = args.words[1].lower() if len(args.words) > 1 else ""
    args.no_extra_words(2)
    args.only_options(("from", "to", "page", "invoice"))
    if which not in FILTERS:
        raise InvalidInput("filter", f"{which!r} is not a filter; use invoiced, uninvoiced, held or errors")
    tz = company.timezone
    flt = OrderFilter(
        company=company.short_name,
        dispatched_from=parse_bound(args.options["from"], "from", end=False, timezone=tz) if "from" in args.options
        else None,
        dispatched_before=parse_bound(args.options["to"], "to", end=True, timezone=tz) if "to" in args.options
        else None,
        invoice=args.options.get("invoice"),
        **FILTERS[which],
    )
    page = page_of(args, PAGE_SIZE)
    total = await count_orders(ctx.tenant.id, flt)
    result = await list_orders(ctx.tenant.id, flt, limit=PAGE_SIZE, offset=page.offset)
    title = f"{which or 'All'} orders of {company.short_name}".capitalize() if which else \
        f"Orders of {company.short_name}"
    if not total:
        return message(f"{title}: none", section(f"No {which + ' ' if which else ''}orders of *{company.short_name}* "
                                                 "match."))
    if not result.rows:
        return message(f"{title}: none on page {page.number}", section(beyond_end(
            page, total, "orders", f"orders {company.short_name} {which}".strip())))
    lines = order_lines(result.rows, tz)
    return message(f"{title} ({page.span(total)})", header(f"{title} · {page.span(total)}"),
                   section("\n".join(lines)),
                   *footer(page, total, command="orders", words=[company.short_name, which], options=args.options))
