"""The App Home tab: a tenant's state at a glance, as a ``views.publish`` view (transport-free).

``home_view(tenant, page=)`` returns a ``{"type": "home", …}`` dict the adapter publishes
for the user who opened the tab. What a caller may rely on:

* at most ``PAGE_SIZE`` companies per page, ordered by short name, and never more than
  ``MAX_HOME_BLOCKS`` blocks (Slack's limit for a view): each company takes at most
  ``_BLOCKS_PER_COMPANY`` blocks (its state, up to ``APPROVALS_SHOWN`` pending approvals
  with their buttons, a divider), the rest of the page is a fixed frame;
* "◂ Previous" / "Next ▸" buttons (``ib:home_page_back`` / ``ib:home_page``, value = the
  page to show) reach every page; a page past the end shows the last one;
* the page shown is kept in ``private_metadata`` (``page=N``), so a click on another
  button of the Home can re-publish the same page (``page_of``);
* only ``tenant``'s own rows are read; every name, number and error text is escaped by
  the block builders (``commands/replies.py``).

Pending approvals come from ``PendingApprovals`` (a function of the tenant id), so this
module does not depend on how approval mode stores them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tortoise.functions import Count, Max

from commands.approvals import approval_buttons, pending_approvals, pending_line
from commands.clicks import Click, ClickResult, action_id
from commands.formatting import local, money
from commands.replies import Block, Mrkdwn, actions, button, context, divider, header, md, section
from invoicing.errors import InvalidInput
from models import Company, Delivery, DeliveryStatus, Integration, IntegrationKind, Invoice, Tenant

MAX_HOME_BLOCKS = 100
PAGE_SIZE = 15
APPROVALS_SHOWN = 2
_BLOCKS_PER_COMPANY = 1 + 2 * APPROVALS_SHOWN + 1
#: header, summary, navigation, footer
_FRAME_BLOCKS = 4
assert _FRAME_BLOCKS + PAGE_SIZE * _BLOCKS_PER_COMPANY <= MAX_HOME_BLOCKS

NEXT_PAGE = "home_page"
PREVIOUS_PAGE = "home_page_back"  # its own action id: Slack wants them unique within a block
_KIND_LABEL = {IntegrationKind.PDF_EMAILER: "PDF Emailer", IntegrationKind.XML_EXPORT: "XML export",
               IntegrationKind.XERO: "Xero"}
_ERROR_CHARS = 200
_PAGE_META = re.compile(r"page=([0-9]{1,6})")


@dataclass(frozen=True)
class PendingApproval:
    """One prepared run waiting for an admin: a line of text and its buttons (Approve / Skip)."""

    company_id: int
    text: str
    buttons: tuple[Block, ...]


#: The pending approvals of a tenant (by tenant id), oldest first.
PendingApprovals = Callable[[int], Awaitable[Sequence[PendingApproval]]]


async def no_approvals(tenant_id: int) -> Sequence[PendingApproval]:
    return ()


async def approval_mode(tenant_id: int) -> Sequence[PendingApproval]:
    """The tenant's pending approvals of approval mode, each with its Approve / Skip buttons."""
    return [PendingApproval(a.company_id, pending_line(a), tuple(approval_buttons(a.id, a.company)["elements"]))
            for a in await pending_approvals(tenant_id)]


APPROVALS: PendingApprovals = approval_mode


@dataclass(frozen=True)
class _Failing:
    count: int
    newest_error: str


def unlinked_view(hint: str) -> Block:
    """The Home of a workspace that is not linked to a tenant: how to link it."""
    return {"type": "home", "blocks": [header("InvoiceBot"), section(f":link: {hint}")]}


def page_of(private_metadata: str) -> int:
    """The page a published Home showed (from its ``private_metadata``); 1 when unknown."""
    found = _PAGE_META.fullmatch(private_metadata or "")
    return max(1, int(found.group(1))) if found else 1


async def home_view(tenant: Tenant, *, page: int = 1, approvals: PendingApprovals | None = None) -> Block:
    """The Home of ``tenant`` at ``page`` (1-based; clamped to the pages that exist)."""
    total = await Company.filter(tenant_id=tenant.id).count()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = await Company.filter(tenant_id=tenant.id).order_by("short_name", "id").offset(
        (page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ids = [c.id for c in rows]
    integrations = await Integration.filter(company_id__in=ids).order_by("kind")
    last = await _last_invoices(ids)
    failing = await _failing(ids)
    pending = [a for a in await (approvals or APPROVALS)(tenant.id) if a.company_id in set(ids)]

    blocks: list[Block] = [header(f"InvoiceBot — {tenant.name}")]
    first = (page - 1) * PAGE_SIZE + 1
    shown = f"{first}–{first + len(rows) - 1} of {total}" if rows else "0"
    blocks.append(context(f"Companies {shown} · page {page} of {pages} · times in each company's time zone"))
    if not rows:
        blocks.append(section("No companies yet. Add one with `/invoicing company add <co> name=\"…\" "
                              "country=GB currency=GBP timezone=Europe/London`."))
    for c in rows:
        mine = [i for i in integrations if i.company_id == c.id]
        blocks.append(section(_company_text(c, mine, last.get(c.id), failing.get(c.id))))
        waiting = [a for a in pending if a.company_id == c.id]
        for approval in waiting[:APPROVALS_SHOWN]:
            blocks += [section(approval.text), actions(*approval.buttons)]
        if len(waiting) > APPROVALS_SHOWN:
            blocks[-2] = section(approval.text + f"\n… and {len(waiting) - APPROVALS_SHOWN} more waiting")
        blocks.append(divider())
    nav = []
    if page > 1:
        nav.append(button("◂ Previous", action_id(PREVIOUS_PAGE), str(page - 1)))
    if page < pages:
        nav.append(button("Next ▸", action_id(NEXT_PAGE), str(page + 1)))
    if nav:
        blocks.append(actions(*nav, block_id="home_nav"))
    blocks.append(context("Details: `/invoicing companies`, `/invoicing deliveries`, `/invoicing schedule`."))
    return {"type": "home", "private_metadata": f"page={page}", "blocks": blocks[:MAX_HOME_BLOCKS]}


def _company_text(c: Company, integrations: list[Integration], last: Invoice | None,
                  failing: _Failing | None) -> Mrkdwn:
    lines = [md("*{}* — {}", c.short_name, c.name)]
    for i in integrations:
        label = _KIND_LABEL.get(i.kind, str(i.kind))
        if i.enabled:
            lines.append(md(":white_check_mark: {} on · {} · next {}", label, i.schedule,
                            local(i.next_run_at, c.timezone)))
        else:
            lines.append(md(":white_circle: {} off", label))
    if last is not None:
        lines.append(md(":page_facing_up: Last invoice *{}* · {} · {}", last.display_number,
                        local(last.issued_at, c.timezone, with_time=False), money(last.gross_total, last.currency)))
    else:
        lines.append(md(":page_facing_up: No invoice yet"))
    if failing is not None:
        error = " ".join(failing.newest_error.split())[:_ERROR_CHARS].replace("`", "'")
        lines.append(md(":x: {} failing deliver{}{}", failing.count, "y" if failing.count == 1 else "ies",
                        md(" — newest: `{}`", error) if error else ""))
    return Mrkdwn("\n").join(lines)


async def _last_invoices(company_ids: list[int]) -> dict[int, Invoice]:
    newest = await Invoice.filter(company_id__in=company_ids).annotate(newest=Max("id")).group_by(
        "company_id").values_list("company_id", "newest")
    return {i.company_id: i for i in await Invoice.filter(id__in=[n for _, n in newest])}


async def _failing(company_ids: list[int]) -> dict[int, _Failing]:
    """E-mails that failed for good, or that wait for another try after an error, per company."""
    rows = await Delivery.filter(invoice__company_id__in=company_ids).filter(
        status=DeliveryStatus.FAILED).annotate(n=Count("id"), newest=Max("id")).group_by(
        "invoice__company_id").values_list("invoice__company_id", "n", "newest")
    retrying = await Delivery.filter(invoice__company_id__in=company_ids, last_error__not="").filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]).annotate(
        n=Count("id"), newest=Max("id")).group_by("invoice__company_id").values_list(
        "invoice__company_id", "n", "newest")
    counts: dict[int, tuple[int, int]] = {}
    for company_id, n, newest in [*rows, *retrying]:
        seen, top = counts.get(company_id, (0, 0))
        counts[company_id] = (seen + n, max(top, newest))
    errors = dict(await Delivery.filter(id__in=[top for _, top in counts.values()]).values_list("id", "last_error"))
    return {cid: _Failing(n, str(errors.get(top) or "")) for cid, (n, top) in counts.items()}


async def home_page(click: Click) -> ClickResult:
    """``ib:home_page`` / ``ib:home_page_back``: re-publish the clicker's Home at the page in the value."""
    if not click.value.isdigit() or len(click.value) > 6:
        raise InvalidInput("page", f"{click.value[:20]!r} is not a page number")
    return ClickResult(extra={"home_view": await home_view(click.ctx.tenant, page=int(click.value))})
