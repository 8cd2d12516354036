"""Upgrading a database of the previous release (PDF Emailer rows) to integrations loses nothing.

The database is built with the migrations as released before integrations existed
(up to 0005), filled through plain SQL with the data that release wrote, then
migrated to the newest schema; every setting, schedule, pending run and lease must
be on the company's ``pdf_emailer`` integration, and old runs linked to it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tortoise.context import TortoiseContext
from tortoise.exceptions import IntegrityError
from tortoise.migrations.api import migrate as tortoise_migrate

from bot.db import database, migrate, throwaway_database, tortoise_config
from invoicing.delivery.bcc import bcc_of
from invoicing.parties.companies import create_company
from invoicing.sql import Statement, is_postgres
from models import Delivery, Integration, IntegrationKind, Invoice, InvoiceRun, Tenant
from tests import factories as f
from tests.conftest import BACKENDS, POSTGRES_URL

PREVIOUS_RELEASE = "models.0005_auto_20261125_1236"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

_PARTY = {"legal_name": "", "address_line1": "", "address_line2": "", "city": "", "region": "", "postcode": "",
          "country": "GB", "vat_number": "", "company_number": "", "email": "", "phone": "",
          "payment_terms_days": 30, "iban": "", "bic": ""}

#: What the previous release stored per company: (short name, emailer columns).
EMAILERS = {
    "acme": {"enabled": True, "include_errors": True, "starting_from": datetime(2026, 11, 1, tzinfo=UTC),
             "bcc": ["ops@inkwell.example", "ap@acme.example"], "schedule": "daily",
             "next_run_at": datetime(2026, 11, 21, 0, 0, tzinfo=UTC),
             "last_cutoff_at": datetime(2026, 11, 20, tzinfo=UTC),
             "lease_owner": "host-1234-abcdef", "lease_until": datetime(2026, 11, 21, 0, 15, tzinfo=UTC)},
    "beta": {"enabled": False, "include_errors": False, "starting_from": None, "bcc": [], "schedule": "0 9 * * 1-5",
             "next_run_at": None, "last_cutoff_at": None, "lease_owner": None, "lease_until": None},
    "gamma": {"enabled": True, "include_errors": False, "starting_from": None, "bcc": ["x@y.example"],
              "schedule": "weekly", "next_run_at": datetime(2026, 11, 22, 0, 0, tzinfo=UTC), "last_cutoff_at": None,
              "lease_owner": None, "lease_until": None},
}


@pytest.fixture(params=BACKENDS)
async def empty_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/old.db"
        return
    async with throwaway_database(POSTGRES_URL, "invoicebot_up") as (url, _):
        yield url


async def _insert(table: str, values: dict[str, object]) -> int:
    q = Statement()
    columns = ", ".join(f'"{c}"' for c in values)
    marks = ", ".join(q(v) for v in values.values())
    rows = await q.rows(f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) RETURNING id')
    return int(rows[0][0])


async def _fill_previous_release() -> dict[str, int]:
    tenant_id = await _insert("tenant", {**_PARTY, "name": "inkwell", "slack_team_id": "T0OLD", "plan": "oms",
                                         "currency": "GBP", "timezone": "Europe/London", "invoice_prefix": "INK-",
                                         "number_padding": 6, "last_invoice_number": 7, "created_at": T0,
                                         "admin_user_ids": json.dumps(["U1"])})
    companies = {}
    for short, emailer in EMAILERS.items():
        company_id = await _insert("company", {**_PARTY, "short_name": short, "name": short.title(), "currency": "GBP",
                                               "timezone": "Europe/London", "slack_channel": "", "created_at": T0,
                                               "tenant_id": tenant_id})
        await _insert("emailer_integration", {**emailer, "bcc": json.dumps(emailer["bcc"]), "updated_at": T0,
                                              "company_id": company_id})
        await _insert("invoice_run", {"trigger": "schedule", "actor": "scheduler", "started_at": T0, "finished_at": T0,
                                      "cutoff": T0, "outcome": "no_orders", "orders_invoiced": 0, "orders_skipped": 0,
                                      "skipped": "[]", "skipped_by_reason": "{}", "message": "",
                                      "company_id": company_id,
                                      "tenant_id": tenant_id})
        companies[short] = company_id
    return companies


async def test_every_emailer_setting_schedule_and_lease_survives_the_upgrade(empty_url: str) -> None:
    async with TortoiseContext():
        await tortoise_migrate(config=tortoise_config(empty_url), target=PREVIOUS_RELEASE)
    async with database(empty_url, apply_migrations=False):
        companies = await _fill_previous_release()

    await migrate(empty_url)

    async with database(empty_url, apply_migrations=False):
        for short, before in EMAILERS.items():
            row = await Integration.get(company_id=companies[short], kind=IntegrationKind.PDF_EMAILER)
            after = {key: getattr(row, key) for key in before if key != "bcc"} | {"bcc": bcc_of(row)}
            assert after == before, short
            [run] = await InvoiceRun.filter(company_id=companies[short])
            assert run.integration_id == row.id  # type: ignore[attr-defined]
        assert await Integration.filter(kind=IntegrationKind.PDF_EMAILER).count() == len(EMAILERS)
        # Every existing company also got its (disabled) XML export row (migration 0016).
        xml = await Integration.filter(kind=IntegrationKind.XML_EXPORT).order_by("company_id")
        assert [(r.company_id, r.enabled, r.next_run_at) for r in xml] == [
            (cid, False, None) for cid in sorted(companies.values())]
        # New rows get fresh ids after the copied ones (PostgreSQL's sequence was moved on).
        delta = await create_company(await Tenant.get(name="inkwell"), "delta", name="Delta", country="GB",
                                     currency="GBP")
        assert (await Integration.get(company_id=delta.id, kind=IntegrationKind.PDF_EMAILER)).id > max(
            await Integration.filter(company_id__in=list(companies.values())).values_list("id", flat=True))


async def test_every_e_mail_gets_its_invoices_tenant_and_the_open_ones_their_index(empty_url: str) -> None:
    """Migration 0021 fills ``delivery.tenant_id`` from each row's invoice (two tenants, e-mails of every status)."""
    async with TortoiseContext():
        await tortoise_migrate(config=tortoise_config(empty_url), target="models.0020_open_rows")
    expected: dict[int, int] = {}
    async with database(empty_url, apply_migrations=False):
        for team, name in (("T1", "inkwell"), ("T2", "rival")):
            tenant = await f.tenant(name, team=team)
            company = await f.company(tenant)
            for number, status in enumerate(("sent", "pending", "failed"), start=1):
                invoice = await Invoice.create(
                    tenant_id=tenant.id, company_id=company.id, number=number, display_number=f"{number:06d}",
                    issued_at=T0, period_end=T0, currency="GBP", timezone="Europe/London", seller={}, buyer={},
                    net_total=Decimal("1"), tax_total=Decimal("0"), gross_total=Decimal("1"), tax_breakdown=[],
                    order_count=1, payment_terms_days=30)
                delivery_id = await _insert("delivery", {
                    "invoice_id": invoice.id, "kind": "initial", "status": status, "message_id": f"<{name}{number}>",
                    "to_addr": "ap@acme.example", "bcc": "[]", "attempts": 0, "last_error": "", "created_at": T0})
                expected[delivery_id] = tenant.id

    await migrate(empty_url)

    async with database(empty_url, apply_migrations=False):
        assert dict(await Delivery.all().values_list("id", "tenant_id")) == expected
        inkwell = await Tenant.get(name="inkwell")
        assert await Delivery.filter(tenant_id=inkwell.id, status__in=["pending", "failed"]).count() == 2
        if is_postgres():  # SQLite cannot make an added column NOT NULL (migration 0021)
            with pytest.raises(IntegrityError):
                await _insert("delivery", {"invoice_id": 1, "kind": "initial", "status": "pending",
                                           "message_id": "<none>", "to_addr": "a@b.example", "bcc": "[]",
                                           "attempts": 0, "last_error": "", "created_at": T0})
