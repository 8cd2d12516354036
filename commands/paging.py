"""Numbered pages of a list command: ``page=N``, "1–40 of 53", and a "Next page ▸" button.

Every list reply says which rows it shows out of how many and how to get the rest
(the typed ``page=N`` and a button), so nothing is left out without saying so. The
button's value is the command text of the next page; its handler (``page_handler``,
registered as ``ib:page``) runs that text again as the clicking user — only for the
read-only list commands in ``READ_ONLY``, so a forged value cannot change anything,
and the command itself scopes everything to the clicker's tenant. The answer is
ephemeral, like the typed command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from commands.clicks import Click, ClickHandler, ClickResult, action_id, refusal
from commands.context import Args, CommandContext
from commands.replies import Block, Reply, actions, button, context, md
from commands.tokenizer import tokenize
from invoicing.sql import Statement
from invoicing.validation import whole_number

PAGE_SIZE = 40
MAX_PAGE = 10_000
#: ``page_rows`` counts at most this many rows past the end of the page asked for, then says "or more".
COUNT_AHEAD = 1_000
#: The list commands a page button may run again (they only read).
READ_ONLY = frozenset({"companies", "orders", "invoices", "audit", "deliveries", "schedule"})
PAGE_ACTION = "page"


@dataclass(frozen=True, order=True)
class Total:
    """How many rows a listing holds: exactly ``count``, or, with ``more``, at least ``count``.

    A list whose count would read every row of a large tenant (10,000 enabled emailers, a burst's
    backlog of e-mails) counts only so far ahead of the page shown (``page_rows``); its reply says
    "1–40 of 1040+". Ordered by (count, more): ``max`` of two totals is the longer list.
    """

    count: int
    more: bool = False

    def __str__(self) -> str:
        return f"{self.count}+" if self.more else str(self.count)

    def __bool__(self) -> bool:
        return self.count > 0


def _total(total: int | Total) -> Total:
    return total if isinstance(total, Total) else Total(total)


@dataclass(frozen=True)
class Page:
    """Page ``number`` (from 1) of ``size`` rows."""

    number: int = 1
    size: int = PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def span(self, total: int | Total) -> str:
        """``1–40 of 53`` (en dash); ``0 of 53`` for a page past the end; ``1–40 of 1040+`` when counted in part."""
        known = _total(total)
        first, last = self.offset + 1, min(self.offset + self.size, known.count)
        return f"{first}–{last} of {known}" if first <= last else f"0 of {known}"

    def pages(self, total: int | Total) -> str:
        """How many pages: ``2``, or ``26+`` when the total was counted in part."""
        known = _total(total)
        return f"{max(1, -(-known.count // self.size))}{'+' if known.more else ''}"

    def has_next(self, total: int | Total) -> bool:
        return self.offset + self.size < _total(total).count


def page_of(args: Args, size: int = PAGE_SIZE) -> Page:
    """The ``page=`` option of ``args`` (default 1); ``InvalidInput`` for anything but 1…``MAX_PAGE``."""
    raw = args.options.get("page", "1")
    return Page(whole_number(raw, "page", low=1, high=MAX_PAGE, what="a page number"), size)


#: ``FROM … WHERE …`` of a listing, binding its values into the statement given as its text is placed;
#: ``suffix`` ends each of its table aliases (the total's subquery takes its own) and ``joins`` goes before
#: its ``WHERE`` (tables only the page's columns need).
Scope = Callable[[Statement, str, str], str]


@dataclass(frozen=True)
class Listing:
    """What a hand-written list reads: ``SELECT columns`` over ``scope`` sorted by ``order``; ``joins`` are tables
    only the page's columns need; ``count`` is the same rows written for counting (default ``scope``), where a
    form that stops at the limit differs from the page's."""

    columns: str
    scope: Scope
    joins: str
    order: str
    count: Scope | None = None


async def page_rows(listing: Listing, page: Page) -> tuple[list[tuple[Any, ...]], Total]:
    """``page`` of ``listing`` and how many rows its scope holds.

    Hand-written (``invoicing.sql``) for the lists typed most, where the ORM's query building and model
    objects cost more than the database work: one statement, the total a scalar subquery of it, and a
    second one only for a page past the end. Values are raw (datetimes decoded with ``sql.instant``).

    The total is exact up to ``COUNT_AHEAD`` rows past the page, and "at least" beyond (``Total.more``):
    an exact count reads every row in scope, which at 10,000 companies cost more than the page itself,
    ten times over, and grew with the tenant. The page's rows are always exact.
    """
    limit = _count_limit(page)
    q = Statement()
    rows = await q.rows(page_sql(q, listing, page))
    if rows:
        return [row[:-1] for row in rows], _total_of(int(rows[0][-1]), limit)
    if page.offset == 0:
        return [], Total(0)
    q = Statement()
    [(total,)] = await q.rows(f"SELECT {_counted(q, listing.count or listing.scope, limit)}")
    return [], _total_of(int(total), limit)


def page_sql(q: Statement, listing: Listing, page: Page) -> str:
    """``page_rows``'s statement, its values bound into ``q``: the page's rows, each ending with the capped total
    (tests read its plan too)."""
    counted = _counted(q, listing.count or listing.scope, _count_limit(page))
    return (f"SELECT {listing.columns}, {counted} {listing.scope(q, '', listing.joins)} "
            f"ORDER BY {listing.order} LIMIT {q(page.size)} OFFSET {q(page.offset)}")


def _count_limit(page: Page) -> int:
    """How far ``page_rows`` counts: ``COUNT_AHEAD`` rows past the end of ``page``."""
    return page.offset + page.size + COUNT_AHEAD


def _counted(q: Statement, scope: Scope, limit: int) -> str:
    """A scalar subquery: how many rows ``scope`` holds, counting one row past ``limit`` at most."""
    return f"(SELECT count(*) FROM (SELECT 1 {scope(q, '2', '')} LIMIT {q(limit + 1)}) AS counted)"


def _total_of(counted: int, limit: int) -> Total:
    return Total(limit, more=True) if counted > limit else Total(counted)


def _quoted(value: str) -> str:
    if value and not any(ch.isspace() or ch in "\"'" for ch in value):
        return value
    return f"'{value}'" if '"' in value else f'"{value}"'


def command_text(command: str, words: Sequence[str], options: Mapping[str, str], page: int) -> str:
    """The ``/invoicing`` text (without the slash command) of ``page`` of this listing."""
    parts = [command, *(_quoted(w) for w in words if w),
             *(f"{k}={_quoted(v)}" for k, v in options.items() if k != "page")]
    return " ".join([*parts, f"page={page}"])


def beyond_end(page: Page, total: int | Total, noun: str, command: str) -> str:
    """What a page past the last one says (the rows exist, just not on this page)."""
    return (f"No {noun} on page {page.number}: there are {total} ({page.pages(total)} page(s)). "
            f"Start at `/invoicing {command}`.")


def footer(page: Page, total: int | Total, *, command: str, words: Sequence[str] = (),
           options: Mapping[str, str] | None = None) -> list[Block]:
    """The blocks that end a page: where it is in the list, and the way to the next page."""
    opts = options or {}
    where = f"{page.span(total)} · page {page.number} of {page.pages(total)}"
    if not page.has_next(total):
        return [context(where + ("" if page.number == 1 else " (the last)"))]
    following = command_text(command, words, opts, page.number + 1)
    buttons = [button("Next page ▸", action_id(PAGE_ACTION), following)]
    if page.number > 1:
        buttons.insert(0, button("◂ Previous page", action_id(PAGE_ACTION),
                                 command_text(command, words, opts, page.number - 1)))
    return [context(md("{} · next: `/invoicing {}`", where, following)), actions(*buttons)]


Run = Callable[[str, CommandContext], Awaitable[Reply]]


def page_handler(run: Run) -> ClickHandler:
    """The ``ib:page`` click handler: ``run`` (the dispatcher) answers the button's command text."""

    async def on_page(click: Click) -> ClickResult:
        text = click.value
        words = tokenize(text).words if text else ()
        if not words or words[0].lower() not in READ_ONLY:
            return refusal("This button does not open a list; type the command instead.")
        # The value went out as a plain string; the tokenizer expects Slack's escaping of typed text.
        typed = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return ClickResult(reply=await run(typed, click.ctx))

    return on_page
