"""``orders <co> [invoiced|uninvoiced|held|errors] [from=] [to=] [invoice=N] [page=N]``: the "Invoiced" filter.

Pages hold ``PAGE_SIZE`` orders (one section of up to ~2,000 characters each, far
below Slack's 50-block / 3,000-character limits); the reply says which ``page=`` to
ask for next.
"""

from __future__ import annotations

from collections.abc import Iterable

from commands.context import Args, CommandContext
from commands.formatting import local
from commands.replies import Reply, context, header, message, section
from invoicing.billing.queries import OrderFilter, OrderRow, list_orders, parse_bound
from invoicing.errors import InvalidInput
from invoicing.parties.companies import find_company
from invoicing.validation import whole_number

PAGE_SIZE = 25
MAX_PAGE = 400
FILTERS = {
    "": {},
    "all": {},
    "invoiced": {"invoiced": True},
    "uninvoiced": {"invoiced": False},
    "held": {"on_hold": True},
    "errors": {"has_error": True},
}


def _page(value: str) -> int:
    return whole_number(value, "page", low=1, high=MAX_PAGE, what="a page number")


def order_lines(rows: Iterable[OrderRow], tz: str) -> list[str]:
    """One line per order: reference, dispatch day in ``tz``, invoice or status, hold and error flags."""
    lines = []
    for row in rows:
        state = f"on *{row.invoice_number}*" if row.invoice_number else row.status.replace("_", " ")
        flags = "".join([" · :pause_button: on hold" if row.on_hold else "",
                         f" · :warning: {row.error[:60]}" if row.error else ""])
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
    page = _page(args.options.get("page", "1"))
    result = await list_orders(ctx.tenant.id, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    title = f"{which or 'All'} orders of {company.short_name}".capitalize() if which else \
        f"Orders of {company.short_name}"
    if not result.rows:
        return message(f"{title}: none", section(f"No {which + ' ' if which else ''}orders of *{company.short_name}* "
                                                 f"{'on page ' + str(page) if page > 1 else 'match'}."))
    lines = order_lines(result.rows, tz)
    footer = f"Page {page}."
    if result.next_cursor:
        options = " ".join(f"{k}={v}" for k, v in args.options.items() if k != "page")
        following = f"/invoicing orders {company.short_name} {which} {options} page={page + 1}"
        footer += f" Next: `{following}`".replace("  ", " ")
    return message(title, header(title), section("\n".join(lines)), context(footer))
