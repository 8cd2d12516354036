"""Request bodies of the order feed (pydantic) and its OpenAPI 3.1 description.

The models check *shape* only — JSON types, required keys, no unknown keys (a typo
such as ``dispatchedAt`` is an error, not silently ignored). They run in strict mode,
so ``"3"`` is not a quantity and ``1`` is not ``true``. *Values* (SKUs, amounts,
currencies, time zones, VAT numbers …) are checked by ``invoicing`` so that Slack,
CSV and HTTP share one set of rules and messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from models import OrderStatus

MAX_BATCH_ORDERS = 1000
#: Error message for a JSON number where a decimal string belongs (floats lie about cents).
MONEY_FIELDS = frozenset({"cost_price", "shipping", "tax_rate"})
MONEY_MESSAGE = 'must be a decimal string such as "12.50", not a JSON number'



def _money() -> Any:
    return Field(json_schema_extra={"pattern": r"^\d+(\.\d+)?$", "examples": ["12.50"]})


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class AccountingBody(_Body):
    """Accounting keys; only those given are changed."""

    legal_name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    region: str | None = None
    postcode: str | None = None
    country: str | None = None
    vat_number: str | None = None
    company_number: str | None = None
    email: str | None = None
    phone: str | None = None
    payment_terms_days: int | None = None
    iban: str | None = None
    bic: str | None = None


class CompanyBody(_Body):
    name: str
    country: str = Field(examples=["GB"])
    currency: str = Field(examples=["GBP"])
    timezone: str = Field(examples=["Europe/London"])
    channel: str | None = None
    accounting: AccountingBody | None = None


class PriceBody(_Body):
    retailer: str | None = Field(description="company short name; null = the default price")
    cost_price: str = _money()
    shipping: str = _money()
    tax_rate: str = Field(json_schema_extra={"examples": ["20"]}, description="percent")
    currency: str | None = Field(default=None, description="optional; refused when it contradicts the implied one")


class ProductBody(_Body):
    name: str
    prices: list[PriceBody] = Field(max_length=1000)


class ItemBody(_Body):
    sku: str
    quantity: int = Field(description="1 to 100000")
    description: str = ""


class ShipToBody(_Body):
    name: str
    line1: str
    line2: str = ""
    city: str
    region: str = ""
    postcode: str
    country: str = Field(examples=["GB"])


class OrderBody(_Body):
    items: list[ItemBody]
    status: OrderStatus
    dispatched_at: AwareDatetime | None
    on_hold: bool
    error: str | None
    ship_to: ShipToBody
    updated_at: AwareDatetime | None = Field(
        default=None, description="when the OMS last changed the order; an update older than the stored one is ignored")
    previous_company: str | None = Field(
        default=None, description="move the order here from this company (refused once invoiced)")


class BatchOrderBody(OrderBody):
    company: str
    ref: str


class BatchBody(_Body):
    orders: list[BatchOrderBody] = Field(min_length=1, max_length=MAX_BATCH_ORDERS)


def dump_datetime(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the feed writes every instant."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


# --- OpenAPI -----------------------------------------------------------------------------------

_REF = "#/components/schemas/{model}"


def _json(schema: str | dict[str, Any], description: str) -> dict[str, Any]:
    body = {"$ref": _REF.format(model=schema)} if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


_ERRORS: dict[str, Any] = {
    "401": _json("Error", "missing, unknown or revoked token"),
    "413": _json("Error", "body larger than the configured limit"),
    "422": _json("ValidationErrors", "invalid JSON, types or values; nothing was written"),
    "500": _json("InternalError", "unexpected error; quote the id"),
}
_NOT_FOUND = {"404": _json("Error", "no such company/invoice for this token's tenant")}
_UPSERTED = {
    "200": _json("Upserted", "updated, unchanged, or ignored as stale (applied=false)"),
    "201": _json("Upserted", "created"),
}
_QUERY = [
    ("company", "company short name"),
    ("invoiced", "true or false"),
    ("from", "dispatched on/after: YYYY-MM-DD (UTC day) or ISO 8601 date-time"),
    ("to", "dispatched before the end of this UTC day (YYYY-MM-DD) or before this instant"),
    ("cursor", "next_cursor of the previous page"),
    ("limit", "1-500, default 100"),
]

_HAND_WRITTEN: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "InternalError": {"type": "object", "properties": {"error": {"const": "internal error"}, "id": {"type": "string"}}},
    "ValidationErrors": {"type": "object", "properties": {"errors": {"type": "array", "items": {
        "type": "object", "properties": {"path": {"type": "string", "examples": ["items.0.quantity"]},
                                         "message": {"type": "string"}}}}}},
    "Conflict": {"type": "object", "properties": {
        "error": {"type": "string"}, "invoice": {"type": "string"},
        "conflicts": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "company": {"type": "string"}, "ref": {"type": "string"},
            "invoice": {"type": "string"}, "message": {"type": "string"}}}}}},
    "Upserted": {"type": "object", "properties": {
        "applied": {"type": "boolean"}, "result": {"enum": ["created", "updated", "unchanged", "stale"]},
        "reason": {"const": "stale update"}}},
    "BatchResult": {"type": "object", "properties": {
        "results": {"type": "array", "items": {"type": "object", "properties": {
            "company": {"type": "string"}, "ref": {"type": "string"}, "applied": {"type": "boolean"},
            "result": {"enum": ["created", "updated", "unchanged", "stale"]}}}},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}}}},
    "OrderPage": {"type": "object", "properties": {
        "orders": {"type": "array", "items": {"type": "object", "properties": {
            "company": {"type": "string"}, "ref": {"type": "string"}, "status": {"type": "string"},
            "on_hold": {"type": "boolean"}, "error": {"type": ["string", "null"]},
            "dispatched_at": {"type": ["string", "null"], "format": "date-time"},
            "invoiced": {"type": "boolean"}, "invoice_number": {"type": ["string", "null"]}}}},
        "next_cursor": {"type": ["string", "null"]}}},
    "Invoice": {"type": "object", "properties": {
        "number": {"type": "string"}, "company": {"type": "string"}, "currency": {"type": "string"},
        "issued_at": {"type": "string", "format": "date-time"}, "period_start": {"type": ["string", "null"]},
        "period_end": {"type": "string"}, "seller": {"type": "object"}, "buyer": {"type": "object"},
        "totals": {"type": "object", "properties": {"net": {"type": "string"}, "tax": {"type": "string"},
                                                     "gross": {"type": "string"}}},
        "tax_breakdown": {"type": "array", "items": {"type": "object"}},
        "lines": {"type": "array", "items": {"type": "object"}},
        "order_refs": {"type": "array", "items": {"type": "string"}}}},
}


def openapi(server_url: str = "/api/v1") -> dict[str, Any]:
    """The feed's OpenAPI 3.1 document: request schemas from the pydantic models, the rest by hand."""
    _, generated = models_json_schema(
        [(m, "validation") for m in (CompanyBody, ProductBody, OrderBody, BatchBody)], ref_template=_REF)
    schemas = {**generated.get("$defs", {}), **_HAND_WRITTEN}

    def body(model: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}}

    def path_param(name: str, description: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}

    co, ref = path_param("co", "company short name"), path_param("ref", "the OMS order reference")
    return {
        "openapi": "3.1.0",
        "info": {"title": "InvoiceBot order feed", "version": "1",
                 "description": "Push companies, prices and orders; read invoiced orders and invoices. "
                                "Money is a decimal string; instants are ISO 8601 with an offset (UTC preferred)."},
        "servers": [{"url": server_url}],
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "`invoicebot token create TENANT`"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/companies/{co}": {"put": {
                "summary": "Create or update a dropship company", "parameters": [co],
                "requestBody": body("CompanyBody"), "responses": {**_UPSERTED, **_ERRORS,
                                                                  "409": _json("Error", "currency change refused")}}},
            "/products/{sku}": {"put": {
                "summary": "Create or update a product and upsert its prices",
                "parameters": [path_param("sku", "SKU")], "requestBody": body("ProductBody"),
                "responses": {**_UPSERTED, **_ERRORS}}},
            "/orders/{co}/{ref}": {"put": {
                "summary": "Idempotent order upsert; stale updates are ignored with applied=false",
                "parameters": [co, ref], "requestBody": body("OrderBody"),
                "responses": {**_UPSERTED, **_ERRORS, **_NOT_FOUND,
                              "409": _json("Conflict", "items or company of an invoiced order")}}},
            "/orders:batch": {"post": {
                "summary": f"Upsert up to {MAX_BATCH_ORDERS} orders atomically (all or nothing)",
                "requestBody": body("BatchBody"),
                "responses": {"200": _json("BatchResult", "per-order results in request order"), **_ERRORS,
                              **_NOT_FOUND, "409": _json("Conflict", "invoiced orders would change")}}},
            "/orders": {"get": {
                "summary": "List orders (keyset pagination by id)",
                "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": "string"},
                                "description": d} for n, d in _QUERY],
                "responses": {"200": _json("OrderPage", "one page"), **_ERRORS, **_NOT_FOUND}}},
            "/invoices/{number}": {"get": {
                "summary": "An issued invoice", "parameters": [path_param("number", "display number, e.g. INK-000001")],
                "responses": {"200": _json("Invoice", "the invoice as issued"), **_ERRORS, **_NOT_FOUND}}},
            "/invoices/{number}.pdf": {"get": {
                "summary": "The invoice PDF", "parameters": [path_param("number", "display number")],
                "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, **_ERRORS,
                              **_NOT_FOUND}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
    }
