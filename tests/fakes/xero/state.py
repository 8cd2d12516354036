"""A JSON snapshot of what the fake saw (``GET /_fake/state``), for tests that run it as a separate process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.xero.server import FakeXero


def snapshot(xero: FakeXero) -> dict[str, Any]:
    return {
        "validation_errors": [{"method": v.method, "path": v.path, "errors": v.errors}
                              for v in xero.validation_errors],
        "token_requests": [{"grant_type": t.grant_type, "outcome": t.outcome, "at": t.at.isoformat()}
                           for t in xero.token_requests],
        "connections": [{"id": c.id, "tenantId": c.tenant_id, "user": c.user, "client_id": c.client_id}
                        for c in xero.connections],
        "organisations": {
            tenant_id: {
                "name": books.org.name,
                "calls": len(xero.calls(tenant_id)),
                "rejections": [c.problem for c in xero.rejections(tenant_id)],
                "max_in_flight": xero.max_in_flight(tenant_id),
                "invoices": [i.get("InvoiceNumber") for i in books.invoices],
                "credit_notes": [c.get("CreditNoteNumber") for c in books.credit_notes],
                "purchase_orders": [p.get("PurchaseOrderNumber") for p in books.purchase_orders],
                "contacts": [c.get("ContactNumber") or c.get("Name") for c in books.contacts],
            }
            for tenant_id, books in xero.orgs.items()
        },
    }


def routes(xero: FakeXero) -> list[web.RouteDef]:
    async def state(request: web.Request) -> web.Response:
        return web.json_response(snapshot(xero))

    return [web.get("/_fake/state", state)]
