"""Issued invoices and credit notes reach the fake Xero once, as Xero validates them. Both backends.

The fake checks every request against Xero's official OpenAPI spec (``world`` asserts no validation
error at the end of each test) and keeps what was created, so "exactly once" is read from its books.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from invoicing.billing.credit_notes import CreditRequest, issue_credit_note
from invoicing.billing.credit_plan import parse_selection
from invoicing.integrations.pdf_emailer.run import run_by_name
from invoicing.integrations.xero import company_settings
from invoicing.integrations.xero.client import XeroClient
from invoicing.integrations.xero.pushes import Pusher
from models import NoticeKind, SlackNotice, Tenant, XeroConnection, XeroConnectionStatus, XeroPush, XeroPushStatus
from tests import factories as f
from tests.factories import T0

INVOICES = "/api.xro/2.0/Invoices"


def pusher(world, attempts: int = 4, **limits) -> Pusher:
    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    client = XeroClient(world.env, world.pacers(**limits), attempts=attempts, backoff=0.0, sleep=no_wait)
    return Pusher(client, world.clock)


async def setup(world, *, companies=("acme",), orders=2, channel="C0BILL", **org_options):
    tenant = await f.tenant()
    org = world.xero.add_organisation("Inkwell Books", **org_options)
    await world.connect(tenant, org)
    await f.price(tenant, "MUG", "5.00", shipping="1.50")
    made = []
    for short in companies:
        c = await f.company(tenant, short)
        c.slack_channel = channel
        await c.save()
        await company_settings.enable(c, now=T0, actor="slack:UADMIN")
        for _ in range(orders):
            await f.order(c, quantity=2)
        made.append(c)
    return tenant, org, made


async def run(tenant, short):
    return await run_by_name(tenant, short, clock=lambda: T0, mail_domain="inkwell.example")


async def test_an_issued_invoice_becomes_one_authorised_accrec_invoice_with_its_contact(world):
    tenant, org, (acme,) = await setup(world)
    report = await run(tenant, "acme")
    push = await XeroPush.get(invoice_id=report.invoice_id)
    assert push.status == XeroPushStatus.PENDING and push.dedupe_key == f"invoice:{report.invoice_id}"
    assert await pusher(world).push_due() == 1
    books = world.xero.store(org)
    (invoice,) = books.invoices
    assert invoice["InvoiceNumber"] == report.invoice_number and invoice["Type"] == "ACCREC"
    assert invoice["Status"] == "AUTHORISED" and invoice["LineAmountTypes"] == "Exclusive"
    assert invoice["Total"] == Decimal(str(report.gross)) and invoice["TotalTax"] == Decimal(str(report.tax))
    assert [line["TaxType"] for line in invoice["LineItems"]] == ["OUTPUT2", "OUTPUT2"]
    assert {line["AccountCode"] for line in invoice["LineItems"]} == {"200"}
    (contact,) = books.contacts
    assert contact["ContactNumber"] == "acme" and contact["Name"] == "Acme Ltd"
    assert invoice["Contact"]["ContactID"] == contact["ContactID"]
    push = await XeroPush.get(id=push.id)
    assert push.status == XeroPushStatus.DONE and push.xero_id == invoice["InvoiceID"] and push.mismatch == ""
    assert await pusher(world).push_due() == 0  # nothing twice


async def test_fifty_invoices_go_in_one_request_and_the_contact_is_written_once(world):
    tenant, org, companies = await setup(world, companies=[f"co{i:02d}" for i in range(60)], orders=1)
    for c in companies:
        await run(tenant, c.short_name)
    assert await pusher(world).push_due() == 60
    calls = [c for c in world.xero.calls(org) if c.path.lower().endswith("/invoices")]
    assert len(calls) == 2  # 50 + 10
    assert len(world.xero.store(org).invoices) == 60
    contact_calls = [c for c in world.xero.calls(org) if c.path.lower().endswith("/contacts")]
    assert len(contact_calls) == 2  # one per batch, each for its batch's new contacts
    for c in companies[:3]:
        await f.order(c, quantity=1, dispatched_at=T0 - timedelta(hours=1))
    # the contacts are unchanged: the next invoices cost one call, not two
    later = T0 + timedelta(days=7)
    for c in companies[:3]:
        await run_by_name(tenant, c.short_name, clock=lambda: later, mail_domain="inkwell.example")
    world.clock.advance(7 * 86400)
    before = len(world.xero.calls(org))
    assert await pusher(world).push_due() == 3
    assert len(world.xero.calls(org)) == before + 1


async def test_a_credit_note_becomes_an_accreccredit_credit_note(world):
    tenant, org, (acme,) = await setup(world)
    await run(tenant, "acme")
    tenant = await Tenant.get(id=tenant.id)
    issued = await issue_credit_note(tenant, CreditRequest("000001", parse_selection("all"), "Damaged"),
                                     actor="slack:U1", now=T0 + timedelta(hours=1), mail_domain="inkwell.example")
    assert await pusher(world).push_due() == 2
    (note,) = world.xero.store(org).credit_notes
    assert note["CreditNoteNumber"] == issued.credit_note.display_number and note["Type"] == "ACCRECCREDIT"
    assert note["Total"] == Decimal(str(issued.plan.gross)) and "000001" in note["Reference"]


async def test_a_crash_after_the_request_left_never_creates_a_second_invoice(world):
    tenant, org, _ = await setup(world)
    await run(tenant, "acme")
    # Xero creates the invoice, but the answer is lost (and the client does not repeat it in place)
    world.xero.fail_next(INVOICES, 500, method="PUT", processed=True)
    first = pusher(world, attempts=1)
    await first.push_due()
    push = await XeroPush.get()
    assert push.status == XeroPushStatus.PENDING and push.attempts == 1 and push.batch_key
    assert len(world.xero.store(org).invoices) == 1
    # another worker, later: the same request under the same Idempotency-Key is replayed, not created again
    world.clock.advance(3600)
    await pusher(world).push_due()
    assert len(world.xero.store(org).invoices) == 1
    assert (await XeroPush.get()).status == XeroPushStatus.DONE
    keys = {c.idempotency_key for c in world.xero.calls(org) if c.path.lower().endswith("/invoices")}
    assert len(keys) == 1


async def test_a_lease_left_by_a_dead_worker_is_taken_over_with_the_same_request(world):
    tenant, org, _ = await setup(world)
    await run(tenant, "acme")
    dead = pusher(world)
    rows = await dead._claim(list(await XeroPush.all()), world.clock())  # claimed, then the process died
    assert len(rows) == 1
    assert await pusher(world).push_due() == 0  # the lease holds
    world.clock.advance(dead.lease.total_seconds() + 1)
    assert await pusher(world).push_due() == 1
    assert len(world.xero.store(org).invoices) == 1


async def test_partial_failures_fail_alone_and_reach_the_channel_with_xeros_words(world):
    tenant, org, (acme, beta) = await setup(world, companies=("acme", "beta"))
    beta_row = await company_settings.configure(beta, now=T0, actor="slack:UADMIN", account_code="999")
    assert beta_row.account_code == "999"
    await run(tenant, "acme")
    await run(tenant, "beta")
    assert await pusher(world).push_due() == 2
    statuses = {p.number: p.status for p in await XeroPush.all()}
    assert sorted(statuses.values()) == [XeroPushStatus.DONE, XeroPushStatus.FAILED]
    failed = await XeroPush.get(status=XeroPushStatus.FAILED)
    assert "Account code '999' is not a valid code" in failed.last_error
    notice = await SlackNotice.get(kind=NoticeKind.XERO_PUSH_FAILED)
    assert notice.payload["number"] == failed.number and "999" in notice.payload["message"]
    assert len(world.xero.store(org).invoices) == 1
    # ops fix the account code: the push is rebuilt and goes
    await company_settings.configure(beta, now=T0, actor="slack:UADMIN", account_code="200")
    assert await pusher(world).push_due() == 1
    assert len(world.xero.store(org).invoices) == 2


async def test_a_vat_category_without_a_tax_type_fails_that_push_and_says_what_to_set(world):
    tenant, org, (acme,) = await setup(world)
    await company_settings.configure(acme, now=T0, actor="slack:UADMIN", tax_types="S20:none")
    await run(tenant, "acme")
    await pusher(world).push_due()
    push = await XeroPush.get()
    assert push.status == XeroPushStatus.FAILED
    assert "No Xero tax type for VAT category S at 20 %" in push.last_error and "tax_types=S:" in push.last_error
    assert world.xero.store(org).invoices == []


async def test_a_totals_difference_is_recorded_and_announced(world):
    # an organisation that recomputes each line's tax: 2 × round(0.33 × 20 %) = 0.14, our band's 0.13
    tenant, org, (acme,) = await setup(world, orders=0, honours_tax_amount=False)
    await f.price(tenant, "PEN", "0.33")
    for _ in range(2):
        await f.order(acme, sku="PEN", quantity=1)
    await run(tenant, "acme")
    await pusher(world).push_due()
    push = await XeroPush.get()
    assert push.status == XeroPushStatus.DONE
    assert push.mismatch == "TotalTax 0.14 in Xero, 0.13 here; Total 0.80 in Xero, 0.79 here"
    notice = await SlackNotice.get(kind=NoticeKind.XERO_MISMATCH)
    assert notice.payload["number"] == push.number


async def test_the_invoice_already_in_xero_by_number_is_recorded_not_duplicated(world):
    tenant, org, _ = await setup(world)
    report = await run(tenant, "acme")
    await pusher(world).push_due()
    # the push is lost on our side (restored backup): it is queued again, with a new request
    await XeroPush.filter(invoice_id=report.invoice_id).update(status=XeroPushStatus.PENDING, payload="",
                                                                batch_key=None)
    await pusher(world).push_due()
    assert len(world.xero.store(org).invoices) == 1
    push = await XeroPush.get()
    assert push.status == XeroPushStatus.DONE and push.xero_id == world.xero.store(org).invoices[0]["InvoiceID"]


async def test_nothing_is_queued_for_a_company_without_xero(world):
    tenant, org, (acme,) = await setup(world)
    await company_settings.disable(acme, now=T0, actor="slack:UADMIN")
    await run(tenant, "acme")
    assert await XeroPush.all().count() == 0


async def test_a_company_with_its_own_organisation_gets_a_matching_purchase_order(world):
    tenant, org, (acme,) = await setup(world)
    theirs = world.xero.add_organisation("Acme Retail")
    await world.connect(tenant, theirs, user="acme-books", company_id=acme.id)
    await company_settings.configure(acme, now=T0, actor="slack:UADMIN", purchase_orders="on",
                                     po_account_code="310")
    report = await run(tenant, "acme")
    assert await pusher(world).push_due() == 2
    (invoice,) = world.xero.store(org).invoices
    (order,) = world.xero.store(theirs).purchase_orders
    assert world.xero.store(org).purchase_orders == [] and world.xero.store(theirs).invoices == []
    assert order["Status"] == "SUBMITTED" and order["Reference"] == report.invoice_number
    assert order["Total"] == invoice["Total"]
    assert {line["TaxType"] for line in order["LineItems"]} == {"INPUT2"}
    assert {line["AccountCode"] for line in order["LineItems"]} == {"310"}
    (supplier,) = world.xero.store(theirs).contacts
    assert supplier["ContactNumber"] == tenant.name and order["Contact"]["ContactID"] == supplier["ContactID"]


async def test_a_429_storm_sends_no_request_beyond_the_limit_and_loses_nothing(world):
    tenant, org, companies = await setup(world, companies=[f"co{i:02d}" for i in range(40)], orders=1)
    for c in companies:
        await run(tenant, c.short_name)
    # Xero also answers 429 on its own (another app of the organisation): three in a row
    for _ in range(3):
        world.xero.fail_next(INVOICES, 429, method="PUT", headers={"Retry-After": "5",
                                                                    "X-Rate-Limit-Problem": "minute"})
    slow = pusher(world, per_minute=30)
    slow.batch_size = 1  # 40 invoice calls and 40 contact calls: more than two minutes' worth
    while await XeroPush.filter(status__not=XeroPushStatus.DONE).exists():
        await slow.push_due()
        world.clock.advance(5)
    assert len(world.xero.store(org).invoices) == 40
    assert len(world.xero.calls(org)) >= 80
    assert [c for c in world.xero.rejections(org) if c.problem not in (None, "injected")] == []
    assert world.xero.max_in_flight(org) <= 5


async def test_a_spent_daily_budget_holds_pushes_until_tomorrow_and_says_so(world):
    tenant, org, (acme,) = await setup(world)
    await run(tenant, "acme")
    connection = await XeroConnection.get(tenant_id=tenant.id)
    connection.calls_day, connection.calls_today = world.clock().date(), connection.daily_limit
    await connection.save()
    assert await pusher(world).push_due() == 0
    push = await XeroPush.get()
    assert push.status == XeroPushStatus.PENDING and push.next_attempt_at.date() > world.clock().date()
    assert "tomorrow" in push.last_error
    notice = await SlackNotice.get(kind=NoticeKind.XERO_WAITING)
    assert notice.payload["waiting"] == 1
    world.clock.advance(86400)
    assert await pusher(world).push_due() == 1


async def test_a_broken_connection_holds_pushes_and_a_reconnect_sends_them(world):
    tenant, org, (acme,) = await setup(world)
    await run(tenant, "acme")
    await XeroConnection.filter(tenant_id=tenant.id).update(status=XeroConnectionStatus.BROKEN)
    assert await pusher(world).push_due() == 0
    assert (await XeroPush.get()).status == XeroPushStatus.PENDING
    await world.connect(tenant, org)  # reconnected: the held push goes at once
    assert await pusher(world).push_due() == 1
    assert len(world.xero.store(org).invoices) == 1


async def test_another_tenants_pushes_go_to_its_own_organisation_only(world):
    tenant, org, _ = await setup(world)
    other = await f.tenant("other")
    their_org = world.xero.add_organisation("Other Books")
    await world.connect(other, their_org, user="olga")
    await f.price(other, "MUG", "9.00")
    beta = await f.company(other, "beta")
    await company_settings.enable(beta, now=T0, actor="slack:UADMIN")
    await f.order(beta, quantity=1)
    await run(tenant, "acme")
    await run(other, "beta")
    assert await pusher(world).push_due() == 2
    assert [i["Contact"]["ContactID"] for i in world.xero.store(org).invoices] == \
        [c["ContactID"] for c in world.xero.store(org).contacts if c["ContactNumber"] == "acme"]
    assert [c["ContactNumber"] for c in world.xero.store(their_org).contacts] == ["beta"]


async def test_batches_sent_at_once_write_a_new_contact_once(world):
    tenant, org, (acme,) = await setup(world, orders=1)
    await run(tenant, "acme")
    for week in (1, 2):
        await f.order(acme, quantity=1, dispatched_at=T0 + timedelta(days=7 * week - 1))
        later = T0 + timedelta(days=7 * week)
        await run_by_name(tenant, "acme", clock=lambda at=later: at, mail_domain="inkwell.example")
    world.clock.advance(21 * 86400)
    one_per_request = pusher(world)
    one_per_request.batch_size = 1
    assert await one_per_request.push_due() == 3  # three requests at once, all naming the new contact
    assert len(world.xero.store(org).invoices) == 3
    contact_calls = [c for c in world.xero.calls(org) if c.path.lower().endswith("/contacts")]
    assert len(contact_calls) == 1
