"""Batched scheduled runs (``pdf_emailer.batch``) write exactly what each company's own run writes.

Two tenants get the same companies, prices and orders. One tenant's companies are run one by one
(``run_company``, as the scheduler did before batches); the other's in one ``run_batch``. Every row
either writes — invoices, lines, runs, e-mails, notices, Xero pushes, marked orders, last cutoffs,
superseded approvals — is compared, with ids replaced by what they name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from invoicing.ingest.order_sync import ItemInput
from invoicing.integrations.pdf_emailer.batch import TRANSACTION_SIZE, BatchItem, run_batch
from invoicing.integrations.pdf_emailer.run import run_company
from models import (
    ApprovalState,
    Company,
    Delivery,
    Integration,
    IntegrationKind,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    Order,
    RunApproval,
    RunOutcome,
    RunTrigger,
    SlackNotice,
    Tenant,
    XeroPush,
)
from tests import factories as f
from tests.factories import T0

CUTOFF = T0
NOW = T0 + timedelta(minutes=1)
SHORTS = ("acme", "muller", "usco", "quiet", "appr", "late", "sup")


def at(moment):
    return lambda: moment


async def world(name: str) -> tuple[Tenant, dict[str, Company]]:
    """One tenant with a company for every case the batch must treat as the single run does."""
    t = await f.tenant(name)
    await f.price(t, "MUG", "5.00", shipping="1.50", tax="20")
    await f.price(t, "TEE", "9.99", tax="20")
    await f.price(t, "BOOK", "12.00", tax="0")
    companies = {
        "acme": await f.company(t, "acme"),
        "muller": await f.company(t, "muller", country="DE", currency="EUR", timezone="Europe/Berlin"),
        "usco": await f.company(t, "usco", country="US", currency="USD"),  # no USD rate: refused
        "quiet": await f.company(t, "quiet"),  # nothing eligible
        "appr": await f.company(t, "appr"),  # approval mode: prepared, not issued
        "late": await f.company(t, "late"),  # starting_from leaves older orders out
        "sup": await f.company(t, "sup"),  # a pending approval, superseded by the run
    }
    for sku, cost in (("MUG", "6.00"), ("TEE", "11.00"), ("BOOK", "13.00")):
        await f.price(t, sku, cost, retailer="muller", tax="19")
    await f.fx_rate(t, "EUR", "GBP", "0.85", day=T0.date())
    acme, muller = companies["acme"], companies["muller"]
    acme.slack_channel = "#acme-billing"
    await acme.save()
    await f.emailer(acme, bcc=["books@inkwell.example"])
    await Integration.filter(company_id=muller.id, kind=IntegrationKind.XERO).update(
        enabled=True, settings={"purchase_orders": True})
    for k in range(4):
        await f.order(acme, ref=f"A-{k}", dispatched_at=T0 - timedelta(hours=k + 1),
                      items=[ItemInput("MUG", k + 1), ItemInput("TEE", 1)])
    await f.order(acme, ref="A-hold", on_hold=True)
    await f.order(acme, ref="A-err", error="artwork missing")
    await f.order(acme, ref="A-nosku", sku="NOPE")
    await f.order(acme, ref="A-new", status="received", dispatched_at=None)
    for k in range(3):
        await f.order(muller, ref=f"M-{k}", items=[ItemInput("BOOK", 2), ItemInput("MUG", k + 1)],
                      dispatched_at=T0 - timedelta(days=k + 1))
    await f.order(companies["usco"], ref="U-1")
    await f.order(companies["quiet"], ref="Q-1", on_hold=True)
    await f.order(companies["appr"], ref="P-1")
    await f.emailer(companies["appr"], approval=True)
    await f.order(companies["late"], ref="L-old", dispatched_at=T0 - timedelta(days=10))
    await f.order(companies["late"], ref="L-new", dispatched_at=T0 - timedelta(days=1))
    await f.emailer(companies["late"], starting_from=T0 - timedelta(days=5))
    await f.order(companies["sup"], ref="S-1")
    await f.emailer(companies["sup"], approval=True)
    await run_company(t, companies["sup"], trigger=RunTrigger.SCHEDULE, cutoff=CUTOFF - timedelta(hours=1),
                      clock=at(NOW - timedelta(minutes=30)), actor="scheduler")
    await f.emailer(companies["sup"], approval=False)
    await f.order(companies["sup"], ref="S-2")
    return await Tenant.get(id=t.id), companies


async def snapshot(t: Tenant) -> dict[str, Any]:
    """Every row the runs wrote for ``t``, ids replaced by names (company short name, invoice number, order ref)."""
    companies = {c.id: c.short_name for c in await Company.filter(tenant_id=t.id)}
    invoices = {i.id: i.number for i in await Invoice.filter(tenant_id=t.id)}
    orders = {o.id: o.external_ref for o in await Order.filter(company_id__in=list(companies))}
    integrations = {i.id: companies[i.company_id] for i in await Integration.filter(company_id__in=list(companies))}
    runs = {r.id: integrations[r.integration_id] for r in await InvoiceRun.filter(tenant_id=t.id)}

    def plain(row: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
        values = {k: v for k, v in row.__dict__.items() if not k.startswith("_")}
        for key in ("id", "created_at", "updated_at", *drop):
            values.pop(key, None)
        for key, names in (("tenant_id", {t.id: "T"}), ("company_id", companies), ("invoice_id", invoices),
                           ("integration_id", integrations), ("order_id_ref", orders), ("run_id", runs)):
            if key in values and values[key] is not None:
                values[key] = names[values[key]]
        return values

    def seller(row: dict[str, Any]) -> dict[str, Any]:
        row["seller"] = {k: v for k, v in row["seller"].items() if k != "name"}
        return row

    notices = []
    for n in await SlackNotice.filter(tenant_id=t.id).order_by("dedupe_key"):
        row = plain(n, drop=("dedupe_key",))
        row["payload"] = {k: v for k, v in row["payload"].items() if k not in ("tenant", "run_id", "invoice_id")}
        row["run"] = runs[int(n.dedupe_key.split(":")[1])] if n.dedupe_key.startswith("run:") else n.dedupe_key
        notices.append(row)
    return {
        "invoices": sorted((seller(plain(i)) for i in await Invoice.filter(tenant_id=t.id)),
                           key=lambda r: r["number"]),
        "lines": sorted((plain(li) for li in await InvoiceLine.filter(invoice_id__in=list(invoices))),
                        key=lambda r: (r["invoice_id"], r["position"])),
        "runs": sorted((plain(r, drop=("finished_at",)) for r in await InvoiceRun.filter(tenant_id=t.id)),
                       key=lambda r: (r["integration_id"], r["started_at"])),
        "deliveries": sorted(({**plain(d), "message_id": d.message_id.replace(f".{t.id}.", ".T.")}
                              for d in await Delivery.filter(invoice_id__in=list(invoices))),
                             key=lambda r: r["invoice_id"]),
        "notices": sorted(notices, key=lambda r: (r["run"], r["kind"])),
        "pushes": sorted((plain(p, drop=("dedupe_key",)) for p in await XeroPush.filter(tenant_id=t.id)),
                         key=lambda r: (r["invoice_id"], r["kind"])),
        "orders": sorted((orders[o.id], invoices.get(o.invoice_id)) for o in
                         await Order.filter(company_id__in=list(companies))),
        "cutoffs": sorted((integrations[i.id], i.kind, i.last_cutoff_at) for i in
                          await Integration.filter(company_id__in=list(companies))),
        "approvals": sorted((integrations[a.integration_id], a.state, a.decided_by) for a in
                            await RunApproval.filter(integration_id__in=list(integrations))),
    }


async def test_a_batch_writes_what_each_company_s_own_run_writes(db):
    single, single_companies = await world("single")
    batched, batched_companies = await world("batched")
    reports = {}
    for short in SHORTS:
        try:
            reports[short] = await run_company(single, single_companies[short], trigger=RunTrigger.SCHEDULE,
                                               cutoff=CUTOFF, clock=at(NOW), actor="scheduler")
        except Exception as refusal:  # noqa: BLE001 - the refused company: recorded by its run
            reports[short] = refusal
    items = [BatchItem(batched_companies[s], (await f.emailer_row(batched_companies[s])).id, RunTrigger.SCHEDULE,
                       CUTOFF) for s in SHORTS]
    result = await run_batch(batched, items, actor="scheduler", clock=at(NOW))

    by_short = {s: result.get(item.integration_id, "alone") for s, item in zip(SHORTS, items, strict=True)}
    # The refused company and the one in approval mode are left to their own runs.
    assert by_short["usco"] == "alone" and by_short["appr"] == "alone"
    await run_company(batched, batched_companies["appr"], trigger=RunTrigger.SCHEDULE, cutoff=CUTOFF,
                      clock=at(NOW), actor="scheduler")
    with pytest.raises(Exception, match="exchange rate"):
        await run_company(batched, batched_companies["usco"], trigger=RunTrigger.SCHEDULE, cutoff=CUTOFF,
                          clock=at(NOW), actor="scheduler")
    assert {s: r.outcome for s, r in by_short.items() if not isinstance(r, str)} == {
        "acme": RunOutcome.INVOICED, "muller": RunOutcome.INVOICED, "quiet": RunOutcome.NO_ORDERS,
        "late": RunOutcome.INVOICED, "sup": RunOutcome.INVOICED}
    for short in ("acme", "muller", "quiet", "late", "sup"):
        mine, theirs = by_short[short], reports[short]
        assert not isinstance(mine, str) and not isinstance(theirs, Exception)
        assert (mine.invoice_number, mine.gross, mine.skipped, mine.skipped_by_reason, mine.message) == \
            (theirs.invoice_number, theirs.gross, theirs.skipped, theirs.skipped_by_reason, theirs.message)
    # Sequential single runs took the numbers in SHORTS order, as the batch gives them.
    assert await snapshot(batched) == await snapshot(single)
    assert (await Invoice.filter(tenant_id=batched.id).count()) == 4
    assert [a.state for a in await RunApproval.filter(company_id=batched_companies["sup"].id)] == \
        [ApprovalState.SUPERSEDED]


async def test_a_lease_lost_inside_the_batch_writes_nothing_for_that_company(db):
    t, companies = await world("inkwell")
    items = [BatchItem(companies[s], (await f.emailer_row(companies[s])).id, RunTrigger.SCHEDULE, CUTOFF)
             for s in ("acme", "muller")]
    lost = items[0].integration_id

    async def hold(ids):
        return set(ids) - {lost}

    result = await run_batch(t, items, actor="scheduler", clock=at(NOW), hold=hold)
    assert result[lost] is None and result[items[1].integration_id].outcome == RunOutcome.INVOICED
    assert await Invoice.filter(company_id=companies["acme"].id).count() == 0
    assert await InvoiceRun.filter(company_id=companies["acme"].id).count() == 0
    assert (await Invoice.get(company_id=companies["muller"].id)).display_number == "000001"


async def test_a_failing_batch_rolls_back_whole_and_leaves_every_company_to_its_own_run(db):
    t, companies = await world("inkwell")
    items = [BatchItem(companies[s], (await f.emailer_row(companies[s])).id, RunTrigger.SCHEDULE, CUTOFF)
             for s in ("acme", "muller", "quiet")]

    async def database_gone(ids):
        raise ConnectionError("the database went away")

    assert await run_batch(t, items, actor="scheduler", clock=at(NOW), hold=database_gone) == {}
    assert await Invoice.filter(tenant_id=t.id).count() == 0
    assert await InvoiceRun.filter(tenant_id=t.id, started_at=NOW).count() == 0
    assert (await Tenant.get(id=t.id)).last_invoice_number == 0


async def test_a_batch_larger_than_one_transaction_numbers_every_invoice_once_without_gaps(db):
    t = await f.tenant("inkwell")
    await f.price(t, "MUG", "5.00")
    companies = [await f.company(t, f"shop{k}") for k in range(TRANSACTION_SIZE["postgres"] + 3)]
    for c in companies:
        await f.order(c)
    items = [BatchItem(c, (await f.emailer_row(c)).id, RunTrigger.SCHEDULE, CUTOFF) for c in companies]
    result = await run_batch(await Tenant.get(id=t.id), items, actor="scheduler", clock=at(NOW))
    assert all(r is not None and r.outcome == RunOutcome.INVOICED for r in result.values())
    numbers = sorted(await Invoice.filter(tenant_id=t.id).values_list("number", flat=True))
    assert numbers == list(range(1, len(companies) + 1))
    assert sorted(await Invoice.filter(tenant_id=t.id).values_list("company_id", flat=True)) == \
        sorted(c.id for c in companies)
