"""``/invoicing deliveries``: what is waiting or failed, listed exactly, tenant by tenant, page by page.

The lists are read by hand-written statements (``commands/paging.page_rows``); these tests pin
every part of a line (number, company, address or channel, status, attempts, time, reason), which
rows count, their order and the page spans, on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from commands.context import CommandContext
from commands.deliveries import mails
from commands.dispatch import dispatch
from commands.paging import Page, page_sql
from commands.replies import Reply
from invoicing.billing.credit_notes import CreditRequest, issue_credit_note
from invoicing.billing.credit_plan import parse_selection
from invoicing.delivery.outbox_resend import queue_credit_note_resend, queue_resend
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.sql import Statement, is_postgres
from models import Company, Delivery, DeliveryStatus, Invoice, NoticeKind, NoticeStatus, SlackNotice, Tenant
from tests import factories as f
from tests.factories import T0
from tests.plans import scans


@dataclass
class World:
    tenant: Tenant
    rival: Tenant


async def _company(tenant: Tenant, short: str, channel: str, timezone: str = "Europe/London") -> Company:
    company = await f.company(tenant, short, timezone=timezone)
    company.slack_channel = channel
    await company.save()
    return company


@pytest.fixture
async def world(db) -> World:
    tenant = await f.tenant(team="T1")
    rival = await f.tenant("rival", team="T2")
    await f.price(tenant, "MUG", "5.00")
    await f.price(rival, "MUG", "5.00")
    acme = await _company(tenant, "acme", "CACME")
    beta = await _company(tenant, "beta", "CBETA", timezone="America/New_York")
    theirs = await _company(rival, "acme", "CRIVAL")
    for company, owner, hours in ((acme, tenant, 1), (acme, tenant, 2), (beta, tenant, 3), (theirs, rival, 1)):
        await f.order(company, dispatched_at=T0 + timedelta(hours=hours - 1))
        await run_by_name(owner, company.short_name, clock=lambda h=hours: T0 + timedelta(hours=h))
    await issue_credit_note(
        await Tenant.get(id=tenant.id),
        CreditRequest("000001", parse_selection("all"), "Broken"),
        actor="slack:U1",
        now=T0 + timedelta(hours=4),
        mail_domain="inkwell.example",
    )
    # E-mails by id: 000001 (acme), 000002 (acme), 000003 (beta), rival's 000001, CN-000001 (crediting 000001).
    mails = await Delivery.all().order_by("id")
    states = [
        (DeliveryStatus.SENT, 1, ""),
        (DeliveryStatus.FAILED, 3, "550 5.1.1 <ap@acme.example> `no`"),
        (DeliveryStatus.PENDING, 0, ""),
        (DeliveryStatus.FAILED, 1, "550 theirs"),
        (DeliveryStatus.SENDING, 2, ""),
    ]
    for n, (mail, (status, attempts, error)) in enumerate(zip(mails, states, strict=True)):
        await Delivery.filter(id=mail.id).update(
            status=status, attempts=attempts, last_error=error, next_attempt_at=T0 + timedelta(days=1, minutes=n)
        )
    # Notices by id: run 000001, run 000002, run 000003 (beta), rival's run, credit CN-000001.
    notices = await SlackNotice.all().order_by("id")
    states = [
        (NoticeStatus.FAILED, 1, "not_in_channel"),
        (NoticeStatus.SENT, 1, ""),
        (NoticeStatus.PENDING, 0, ""),
        (NoticeStatus.FAILED, 1, "theirs"),
        (NoticeStatus.SENDING, 1, ""),
    ]
    for n, (notice, (status, attempts, error)) in enumerate(zip(notices, states, strict=True)):
        await SlackNotice.filter(id=notice.id).update(
            status=status, attempts=attempts, last_error=error, next_attempt_at=T0 + timedelta(days=2, minutes=n)
        )
    # A notice whose company is gone, created (not retried) at a known moment.
    gone = await SlackNotice.create(
        tenant_id=tenant.id,
        company_id=None,
        channel="COLD",
        kind=NoticeKind.RUN_FAILED,
        payload={"invoice_number": 7},
        dedupe_key="gone",
        status=NoticeStatus.FAILED,
        attempts=4,
        last_error="channel_not_found",
    )
    await SlackNotice.filter(id=gone.id).update(created_at=T0 + timedelta(days=3))
    return World(tenant, rival)


async def ask(tenant: Tenant, text: str) -> Reply:
    return await dispatch(text, CommandContext(tenant=tenant, user_id="UOPS"))


def sections(reply: Reply) -> list[str]:
    return [block["text"]["text"] for block in reply.blocks if block["type"] == "section"]


def footer(reply: Reply) -> str:
    """Where the page is in the list (the last context block)."""
    return next(block for block in reversed(reply.blocks) if block["type"] == "context")["elements"][0]["text"]


async def test_waiting_and_failed_rows_are_listed_newest_first_with_every_detail(world: World):
    reply = await ask(world.tenant, "deliveries")
    assert reply.text == "3 e-mail(s), 4 Slack notice(s) waiting or failed"
    mails, notices = sections(reply)
    assert mails.splitlines() == [
        "*E-mails* (1–3 of 3)",
        ":outbox_tray: *CN-000001* (acme) → ap@acme.example · sending · 2 attempt(s) · Tue 03 Nov 2026 09:04 UTC",
        ":hourglass: *000003* (beta) → ap@acme.example · pending · 0 attempt(s) · Tue 03 Nov 2026 09:02 UTC",
        ":x: *000002* (acme) → ap@acme.example · failed · 3 attempt(s) · Tue 03 Nov 2026 09:01 UTC"
        " — `550 5.1.1 &lt;ap@acme.example&gt; 'no'`",
    ]
    assert notices.splitlines() == [
        "*Slack notices* (1–4 of 4)",
        ":x: run failed *7* (?) → COLD · failed · 4 attempt(s) · Thu 05 Nov 2026 09:00 UTC — `channel_not_found`",
        ":outbox_tray: credit issued *000001* (acme) → CACME · sending · 1 attempt(s) · Wed 04 Nov 2026 09:04 UTC",
        ":hourglass: run issued *000003* (beta) → CBETA · pending · 0 attempt(s) · Wed 04 Nov 2026 09:02 UTC",
        ":x: run issued *000001* (acme) → CACME · failed · 1 attempt(s) · Wed 04 Nov 2026 09:00 UTC — `not_in_channel`",
    ]
    assert footer(reply) == "1–4 of 4 · page 1 of 1"


async def test_one_company_is_listed_in_its_time_zone_and_failed_lists_only_what_failed_for_good(world: World):
    reply = await ask(world.tenant, "deliveries beta")
    assert reply.text == "1 e-mail(s), 1 Slack notice(s) waiting or failed for beta"
    assert sections(reply)[0].splitlines()[1] == (
        ":hourglass: *000003* (beta) → ap@acme.example · pending · 0 attempt(s) · Tue 03 Nov 2026 04:02 EST"
    )
    failed = await ask(world.tenant, "deliveries failed")
    assert failed.text == "1 e-mail(s), 2 Slack notice(s) failed"
    assert [line.split(" · ")[0] for line in "\n".join(sections(failed)).splitlines()[1:] if "·" in line] == [
        ":x: *000002* (acme) → ap@acme.example",
        ":x: run failed *7* (?) → COLD",
        ":x: run issued *000001* (acme) → CACME",
    ]
    assert (await ask(world.tenant, "deliveries acme failed")).text == "1 e-mail(s), 1 Slack notice(s) failed for acme"
    nothing = await ask(world.tenant, "deliveries beta failed")
    assert nothing.text == "Nothing failed for beta."


async def test_another_tenants_rows_are_never_counted_or_shown(world: World):
    reply = await ask(world.rival, "deliveries")
    assert reply.text == "1 e-mail(s), 1 Slack notice(s) waiting or failed"
    assert "550 theirs" in sections(reply)[0] and "CRIVAL" in sections(reply)[1]
    assert "theirs" not in str((await ask(world.tenant, "deliveries")).blocks)
    assert (await ask(world.rival, "deliveries beta")).text.startswith("No company 'beta' in rival")


async def test_pages_show_the_same_page_of_both_lists_and_say_how_many_each_has(world: World):
    await SlackNotice.bulk_create(
        [
            SlackNotice(
                tenant_id=world.tenant.id,
                channel="CMORE",
                kind=NoticeKind.XML_FAILING,
                payload={},
                dedupe_key=f"more:{n}",
                status=NoticeStatus.PENDING,
            )
            for n in range(18)
        ]
    )
    first = await ask(world.tenant, "deliveries")
    assert first.text == "3 e-mail(s), 22 Slack notice(s) waiting or failed"
    assert sections(first)[1].startswith("*Slack notices* (1–20 of 22)")
    assert footer(first) == "1–20 of 22 · page 1 of 2 · next: `/invoicing deliveries page=2`"
    second = await ask(world.tenant, "deliveries page=2")
    mails, notices = sections(second)
    assert mails == "*E-mails* (0 of 3)\n"
    assert notices.splitlines()[0] == "*Slack notices* (21–22 of 22)"
    assert [line.split(" · ")[0] for line in notices.splitlines()[1:]] == [
        ":hourglass: run issued *000003* (beta) → CBETA",
        ":x: run issued *000001* (acme) → CACME",
    ]
    beyond = await ask(world.tenant, "deliveries page=3")
    assert beyond.text == "3 e-mail(s), 22 Slack notice(s) waiting or failed"
    assert sections(beyond) == ["*E-mails* (0 of 3)\n", "*Slack notices* (0 of 22)\n"]


async def test_when_nothing_waits_the_reply_says_everything_was_delivered(db):
    tenant = await f.tenant()
    await f.company(tenant)
    reply = await ask(tenant, "deliveries")
    assert reply.text == "Nothing waiting or failed."
    assert (await ask(tenant, "deliveries page=2")).text == "Nothing waiting or failed."
    assert (await ask(tenant, "deliveries acme")).text == "Nothing waiting or failed for acme."


async def test_every_e_mail_names_its_invoices_tenant_whoever_wrote_it(world: World):
    # Written by a run, a credit note (the fixture), an invoice resend and a credit note resend.
    await queue_resend("000001", world.tenant.id, domain="inkwell.example", now=T0 + timedelta(days=1))
    await queue_credit_note_resend("CN-000001", world.tenant.id, domain="inkwell.example", now=T0 + timedelta(days=1))
    rows = await Delivery.all().order_by("id").values_list("tenant_id", "invoice__tenant_id", "kind")
    assert len(rows) == 7 and {kind for _, _, kind in rows} == {"initial", "resend"}
    assert all(tenant_id == invoice_tenant_id for tenant_id, invoice_tenant_id, _ in rows)


#: Indexes that hold open e-mails only (``delivery_open``) or lead with the status (the due-selection's): a scan
#: of either with the list's statuses reads no sent row.
_OPEN_ONLY = {"delivery_open", "idx_delivery_status_bb1bd8"}


@pytest.mark.parametrize("statistics", ["none", "of a history mostly sent", "taken while all was queued"])
async def test_the_e_mail_list_reads_only_open_rows_whatever_the_statistics(world: World, statistics: str):
    """A burst's table grows from empty: PostgreSQL has no statistics of it, or ones taken while everything was
    queued. The page is still read newest first up to its last row, never a join of every open e-mail to every
    invoice sorted afterwards (30 ms a command in a 5,000-company burst), and, unless the statistics say every row
    is open (then the planner walks the primary key and counts by a sequential scan, both bounded by the table),
    page and count read open rows only."""
    if not is_postgres():
        pytest.skip("plans are PostgreSQL's")
    [invoice_id] = await Invoice.filter(tenant_id=world.tenant.id, display_number="000001").values_list("id", flat=True)
    q = Statement()
    await q.execute("ALTER TABLE delivery SET (autovacuum_enabled = false)")
    initial = "pending" if statistics == "taken while all was queued" else "sent"
    await q.execute("INSERT INTO delivery (tenant_id, invoice_id, kind, status, message_id, to_addr, bcc, attempts, "
                    f"last_error, created_at) SELECT {q(world.tenant.id)}, {q(invoice_id)}, 'initial', '{initial}', "
                    "'m' || n, 'buyer@example.com', '[]', 0, '', now() FROM generate_series(1, 5000) AS n")
    if statistics == "none":
        await Statement().execute("DELETE FROM pg_statistic WHERE starelid = 'delivery'::regclass")
    else:
        await Statement().execute("ANALYZE delivery")
    await Statement().execute("UPDATE delivery SET status = CASE WHEN id % 50 = 0 THEN 'pending' ELSE 'sent' END "
                              "WHERE message_id LIKE 'm%'")
    acme = await Company.get(tenant_id=world.tenant.id, short_name="acme")
    for company_id in (None, acme.id):
        for statuses in ([DeliveryStatus.FAILED], [DeliveryStatus.PENDING, DeliveryStatus.SENDING,
                                                   DeliveryStatus.FAILED]):
            q = Statement()
            reads = [scan for scan in await scans(q, page_sql(q, mails(world.tenant.id, company_id, statuses),
                                                                Page(1, 20)))
                     if scan.relation == "delivery"]
            page = [(scan.node, scan.index) for scan in reads if not scan.within("InitPlan")]  # the count's
            count = [(scan.node, scan.index) for scan in reads if scan.within("InitPlan")]
            # An index scan in id order stops at the page's last row; a bitmap or sequential scan reads (and joins)
            # every open row first.
            assert page and all(node in {"Index Scan", "Index Only Scan"} for node, _ in page), reads
            if statistics != "taken while all was queued":
                assert all(index in _OPEN_ONLY for _, index in page), reads
                assert count and all(index in _OPEN_ONLY for _, index in count), reads
