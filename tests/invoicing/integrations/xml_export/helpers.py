"""Shared set-up of the XML export tests: a tenant, a company exporting to a local directory, priced SKUs."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta
from pathlib import Path

from lxml import etree

from invoicing.integrations.xml_export import settings as xml_settings
from invoicing.integrations.xml_export.schema import NAMESPACE
from invoicing.secrets import SecretBox, new_key
from models import Company, Integration, IntegrationKind, Tenant, XmlExport
from tests import factories

NS = {"x": NAMESPACE}
BOX = SecretBox(new_key())


async def setup(tmp: Path, *, channel: str = "#billing") -> tuple[Tenant, Company]:
    tenant = await factories.tenant()
    company = await factories.company(tenant, "zeta")
    if channel:
        company.slack_channel = channel
        await company.save()
    await factories.price(tenant, "MUG", "4.50", shipping="1.25")
    await factories.price(tenant, "TEE", "7.00")
    target = tmp / "share"
    target.mkdir(exist_ok=True)
    await xml_settings.configure(company, now=factories.T0, actor="test", box=BOX, dir=str(target))
    return tenant, company


async def row(company: Company) -> Integration:
    return await Integration.get(company_id=company.id, kind=IntegrationKind.XML_EXPORT)


def xml_of(export: XmlExport) -> bytes:
    return gzip.decompress(export.body)


def refs_in(data: bytes) -> list[str]:
    root = etree.fromstring(data)
    return [str(e.text) for e in root.iterfind(".//x:Order/x:OrderRef", NS)]


def at(hours: float) -> datetime:
    return factories.T0 + timedelta(hours=hours)
