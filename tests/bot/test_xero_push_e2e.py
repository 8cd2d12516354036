"""Xero pushes through ``invoicebot serve``: connect, `xero <co> enable/set`, a run, and the invoice in Xero.

The whole service runs (Slack adapter, push worker, notice worker); Slack is the local fake Web API and
Xero the fake Xero, which checks every request against the official OpenAPI spec. Both backends.
"""

from __future__ import annotations

from decimal import Decimal

from models import AuditEntry, Integration, IntegrationKind, XeroPush, XeroPushStatus
from tests import factories as f
from tests.bot.test_e2e import until
from tests.bot.test_xero_connect import _authorize_link, _follow, _tenant_with_app, world
from tests.fakes.slack_api import text_of

__all__ = ["world"]  # the fixture, used by name below


def invoices_in(books, count: int):
    async def check():
        return len(books.invoices) == count or None
    return check


async def _connected(service, xero, h):
    tenant, _ = await _tenant_with_app(xero)
    org = xero.add_organisation("Inkwell Books")
    xero.authorize_as("dana", [org])
    status, page, _ = await _follow(h, await _authorize_link(h))
    assert status == 200, page
    await f.price(tenant, "MUG", "5.00", shipping="1.50")
    acme = await f.company(tenant, "acme")
    acme.slack_channel = "CBILLING"
    await acme.save()
    return tenant, org, acme


async def test_enable_set_run_and_the_invoice_is_in_xero_once(world):
    service, xero, h, clock = world
    tenant, org, acme = await _connected(service, xero, h)

    shown = text_of(await h.reply("xero acme enable"))
    assert "enabled" in shown.lower() and "OUTPUT2" in shown
    shown = text_of(await h.reply("xero acme set status=DRAFT account_code=260"))
    assert "DRAFT" in shown and "260" in shown
    assert await AuditEntry.filter(tenant_id=tenant.id, action="xero.set").count() == 1

    await f.order(acme, quantity=2)
    await h.command("run acme")
    books = xero.store(org)
    await until(invoices_in(books, 1), timeout=20.0)
    (invoice,) = books.invoices
    assert invoice["Status"] == "DRAFT" and invoice["LineItems"][0]["AccountCode"] == "260"
    assert invoice["Total"] == Decimal("15.60")
    push = await until(lambda: XeroPush.get_or_none(status=XeroPushStatus.DONE), timeout=10.0)
    assert push.xero_id == invoice["InvoiceID"]
    shown = text_of(await h.reply("xero acme"))
    assert "Pushed" in shown and "1" in shown


async def test_bad_settings_are_refused_with_the_field_and_change_nothing(world):
    service, xero, h, clock = world
    tenant, org, acme = await _connected(service, xero, h)
    before = (await Integration.get(company_id=acme.id, kind=IntegrationKind.XERO)).settings
    for text, words in (("xero acme set status=PAID", "status"),
                        ("xero acme set tax_types=Q:OUTPUT2", "tax_types"),
                        ("xero acme set tax_types=S:output-2", "tax_types"),
                        ("xero acme set account_code=" + "9" * 11, "account_code"),
                        ("xero acme set purchase_orders=on", "has not connected its own Xero organisation"),
                        ("xero acme set colour=red", "colour"),
                        ("xero acme frobnicate", "unknown action")):
        shown = text_of(await h.reply(text))
        assert words in shown, (text, shown)
    assert (await Integration.get(company_id=acme.id, kind=IntegrationKind.XERO)).settings == before
    assert await AuditEntry.filter(tenant_id=tenant.id, action="xero.set").count() == 0


async def test_a_refused_invoice_reaches_the_channel_and_retry_sends_it(world):
    service, xero, h, clock = world
    tenant, org, acme = await _connected(service, xero, h)
    await h.reply("xero acme enable")
    await h.reply("xero acme set account_code=999")
    await f.order(acme, quantity=1)
    await h.command("run acme")
    await until(lambda: XeroPush.get_or_none(status=XeroPushStatus.FAILED), timeout=20.0)

    async def refusal_posted():
        return [c for c in h.fake.calls if c.method == "chat.postMessage"
                and "Xero did not take" in str(c.params.get("blocks"))] or None

    [posted] = await until(refusal_posted, timeout=10.0)
    assert "999" in str(posted.params["blocks"]) and posted.params["channel"] == "CBILLING"
    await h.reply("xero acme set account_code=200")  # a settings change puts it back
    await until(invoices_in(xero.store(org), 1), timeout=20.0)


async def test_only_admins_change_xero_settings(world):
    service, xero, h, clock = world
    await _connected(service, xero, h)
    shown = text_of(await h.reply("xero acme enable", user="UPLEB"))
    assert "admin" in shown.lower()
    assert not (await Integration.get(kind=IntegrationKind.XERO)).enabled
