"""Request and response bodies of the order feed (pydantic) and its OpenAPI 3.1 description.

Request models check *shape* only — JSON types, required keys, no unknown keys (a typo
such as ``dispatchedAt`` is an error, not silently ignored). They run in strict mode,
so ``"3"`` is not a quantity and ``1`` is not ``true``. *Values* (SKUs, amounts,
currencies, time zones, VAT numbers …) are checked by ``invoicing`` so that Slack,
CSV and HTTP share one set of rules and messages.

The JSON schema of each request field nevertheless states those value rules (lengths,
patterns, bounds, vocabularies), as JSON-schema-only annotations that pydantic does not
enforce: a client generating requests from the document then produces what the server
accepts. Where a rule cannot be written as a schema (a VAT checksum, a reference to
another record) the field's ``description`` says so. ``tests/bot/test_openapi.py`` holds
the schema and the server to each other.

Response models are what ``bot.feed`` serialises every JSON reply from, so the
documented response shapes are the sent ones.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    with_config,
)
from pydantic.json_schema import models_json_schema
from typing_extensions import TypedDict

from invoicing import validation
from invoicing.billing.limits import AMOUNT_PLACES, MAX_QUANTITY, MAX_UNIT_PRICE, UNIT_PRICE_LIMIT
from invoicing.errors import InvalidInput
from invoicing.ingest.batches import UpsertResult
from invoicing.ingest.order_sync import MAX_ITEMS
from invoicing.parties.accounting import normalise_country
from models import OrderStatus

MAX_BATCH_ORDERS = 1000
MAX_PRICES = 1000
#: Error message for a JSON number where a decimal string belongs (floats lie about cents).
MONEY_FIELDS = frozenset({"cost_price", "shipping", "tax_rate"})
MONEY_MESSAGE = 'must be a decimal string such as "12.50", not a JSON number'


# --- value rules as JSON schema ------------------------------------------------------------------
# Patterns are written so that ECMA-262 (the JSON Schema dialect) and Python read them alike:
# explicit classes instead of \s and \d, whose meanings differ between the two.

def _accepted_by(check: Callable[[str], object], candidates: list[str]) -> list[str]:
    """The candidates a validator of ``invoicing`` accepts: the vocabulary stated once, there."""
    accepted = []
    for candidate in candidates:
        try:
            check(candidate)
        except InvalidInput:
            continue
        accepted.append(candidate)
    return accepted


def _letters(n: int) -> list[str]:
    return ["".join(p) for p in itertools.product(string.ascii_uppercase, repeat=n)]


COUNTRIES = _accepted_by(normalise_country, _letters(2))
CURRENCIES = _accepted_by(validation.currency, _letters(3))
#: What ``invoicing.validation.timezone`` accepts (the machine's tz database).
TIMEZONES = sorted(available_timezones())

_CONTROL = validation.CONTROL_CHARACTER_CLASS  # what validation.text refuses: the one definition
# Characters ``str.strip`` removes (Python whitespace) plus U+FEFF, which ECMA-262 counts as space.
_SPACE = r"\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
LINE = rf"^[^{_CONTROL}]*$"
#: One line with at least one visible character: what ``validation.text(required=True)`` accepts.
REQUIRED_LINE = rf"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"
SHORT_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
SKU = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
#: Per-unit amounts: at most ``limits.MAX_UNIT_PRICE`` (9,999,999.9999: 7 integer digits, 4 decimals).
_UNIT_DIGITS = len(str(int(MAX_UNIT_PRICE)))
assert MAX_UNIT_PRICE == Decimal(10) ** _UNIT_DIGITS - Decimal(1).scaleb(-AMOUNT_PLACES)  # what the pattern says
AMOUNT = rf"^[0-9]{{1,{_UNIT_DIGITS}}}(\.[0-9]{{1,{AMOUNT_PLACES}}})?$"
#: Percent, 0 to 100 with at most 3 decimals (numeric(7,3)).
TAX_RATE = r"^(100(\.0{1,3})?|[0-9]{1,2}(\.[0-9]{1,3})?)$"
_YEAR = r"([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999
DATE = rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"
#: RFC 3339 as both pydantic and ``datetime.fromisoformat`` read it: upper-case T and Z, no leap second.
INSTANT = (rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
           r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
#: An exchange rate: at most 9 integer digits and 10 decimals (``invoicing.billing.fx.parse_rate``).
FX_RATE = r"^[0-9]{1,9}(\.[0-9]{1,10})?$"
#: Decimal strings the feed writes (rounded to the currency's minor unit, or as stored).
DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"


def _line(max_length: int, *, required: bool = False, **extra: Any) -> dict[str, Any]:
    """A one-line string of at most ``max_length`` characters (the database column)."""
    bounds = {"minLength": 1} if required else {}
    return {"type": "string", **bounds, "maxLength": max_length, "pattern": REQUIRED_LINE if required else LINE,
            **extra}


def _text(max_length: int, *, required: bool = False, **extra: Any) -> WithJsonSchema:
    return WithJsonSchema(_line(max_length, required=required, **extra))


def _pattern(pattern: str, *, min_length: int = 1, max_length: int, **extra: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "minLength": min_length, "maxLength": max_length, "pattern": pattern,
                           **extra})


SHORT_NAME_SCHEMA: dict[str, Any] = {"type": "string", "pattern": SHORT_NAME, "minLength": 1, "maxLength": 40,
                                     "examples": ["acme"]}
SKU_SCHEMA: dict[str, Any] = {"type": "string", "pattern": SKU, "minLength": 1, "maxLength": 64,
                              "examples": ["MUG-11OZ"]}
REF_SCHEMA = _line(64, required=True, examples=["SO-104233"])
ShortName = Annotated[str, WithJsonSchema(SHORT_NAME_SCHEMA)]
Sku = Annotated[str, WithJsonSchema(SKU_SCHEMA)]
Ref = Annotated[str, WithJsonSchema(REF_SCHEMA)]
Country = Annotated[str, WithJsonSchema({"type": "string", "enum": COUNTRIES, "examples": ["GB"],
                                         "description": "ISO 3166-1 alpha-2"})]
CURRENCY_SCHEMA: dict[str, Any] = {"type": "string", "enum": CURRENCIES, "examples": ["GBP"],
                                   "description": "ISO 4217"}
Currency = Annotated[str, WithJsonSchema(CURRENCY_SCHEMA)]
TimeZone = Annotated[str, WithJsonSchema({"type": "string", "enum": TIMEZONES, "examples": ["Europe/London"],
                                          "description": "IANA time zone"})]
Amount = Annotated[str, _pattern(AMOUNT, max_length=_UNIT_DIGITS + 1 + AMOUNT_PLACES, examples=["12.50"])]
TaxRate = Annotated[str, _pattern(TAX_RATE, max_length=7, examples=["20"])]


def _representable(value: datetime) -> datetime:
    # The calendar's edges (0001-01-01T00:00+01:00 has no UTC datetime; 9999-12-31T23:00Z none in
    # Tokyo) are refused by the one rule, validation.in_utc, as a 422 instead of a 500 downstream.
    try:
        validation.in_utc(value, "instant")
    except InvalidInput as exc:
        raise ValueError(exc.reason) from None
    return value


DATE_SCHEMA: dict[str, Any] = {"type": "string", "format": "date", "pattern": DATE, "examples": ["2026-11-30"]}
INSTANT_SCHEMA: dict[str, Any] = {"type": "string", "format": "date-time", "pattern": INSTANT,
                                  "examples": ["2026-11-20T14:03:00Z"],
                                  "description": "with an offset; in UTC between 0001-01-02 and 9999-12-30"}
Instant = Annotated[AwareDatetime, AfterValidator(_representable), WithJsonSchema(INSTANT_SCHEMA)]


def _integral(value: object) -> object:
    # JSON has one number type: 2.0 is the integer 2 to a JSON Schema "integer" (and to most JSON
    # writers outside JavaScript), so it is one here too; 2.5 and "2" still are not.
    return int(value) if isinstance(value, float) and value.is_integer() else value




# --- request bodies ---------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class AccountingBody(_Body):
    """Accounting keys; only those given are changed. ``null`` or ``""`` clears a key."""

    legal_name: Annotated[str, _text(200)] | None = None
    address_line1: Annotated[str, _text(200)] | None = None
    address_line2: Annotated[str, _text(200)] | None = None
    city: Annotated[str, _text(100)] | None = None
    region: Annotated[str, _text(100)] | None = None
    postcode: Annotated[str, _text(20)] | None = None
    country: Country | None = Field(default=None, description="must be the company's `country` when given")
    vat_number: Annotated[str, _pattern(r"^[A-Za-z0-9 .-]*$", min_length=0, max_length=20)] | None = Field(
        default=None, description="checked for the company's country (format and check digits; python-stdnum)")
    company_number: Annotated[str, _text(40)] | None = None
    email: Annotated[str, _pattern(
        r"^[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$",
        max_length=254, format="email")] | None = Field(
        default=None, description="checked with email-validator; special-use domains (.test, .local …) are refused")
    phone: Annotated[str, _pattern(r"^(\+?[0-9()./-][0-9 ()./-]{3,28}[0-9()./-])?$", min_length=0,
                                   max_length=31, examples=["+44 117 496 0000"])] | None = None
    payment_terms_days: Annotated[int | None, BeforeValidator(_integral),
                                  WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 365})] = None
    iban: Annotated[str, _pattern(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$", max_length=34)] | None = Field(
        default=None, description="compact or with spaces; checked (country format and check digits)")
    bic: Annotated[str, _pattern(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$", min_length=8, max_length=11)] | None = Field(
        default=None, description="letters 5-6 must be a known country code")


class CompanyBody(_Body):
    name: Annotated[str, _text(200, required=True)]
    country: Country
    currency: Currency = Field(description="ISO 4217; cannot change once the company has prices or invoices (409)")
    timezone: TimeZone
    channel: Annotated[str, _text(80)] | None = Field(default=None, description="Slack channel; null leaves it alone")
    accounting: AccountingBody | None = None


class PriceBody(_Body):
    retailer: ShortName | None = Field(
        description="company short name (must exist and be listed once per product); null = the default price")
    cost_price: Amount = Field(description="per unit")
    shipping: Amount = Field(description=f"per unit; {UNIT_PRICE_LIMIT}")
    tax_rate: TaxRate = Field(description="percent")
    currency: Currency | None = Field(
        default=None, description="optional; refused when it contradicts the implied one (default price: the "
                                  "seller's currency, retailer price: the retailer's)")


class FxRateBody(_Body):
    rate: Annotated[str, _pattern(FX_RATE, max_length=20, examples=["0.8523"])] = Field(
        description="units of the quote currency one unit of the base currency buys; above 0")


class ProductBody(_Body):
    name: Annotated[str, _text(200, required=True)]
    prices: list[PriceBody] = Field(max_length=MAX_PRICES)


class ItemBody(_Body):
    sku: Sku
    quantity: Annotated[int, BeforeValidator(_integral),
                        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY})]
    description: Annotated[str, _text(300)] = ""


class ShipToBody(_Body):
    """The ship-to address; empty values are not stored."""

    name: Annotated[str, _text(200)]
    line1: Annotated[str, _text(200)]
    line2: Annotated[str, _text(200)] = ""
    city: Annotated[str, _text(200)]
    region: Annotated[str, _text(200)] = ""
    postcode: Annotated[str, _text(200)]
    country: Annotated[str, WithJsonSchema({"type": "string", "enum": ["", *COUNTRIES], "examples": ["GB"],
                                            "description": "ISO 3166-1 alpha-2"})]


class OrderBody(_Body):
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"status": {"const": OrderStatus.DISPATCHED.value}}, "required": ["status"]},
        "then": {"properties": {"dispatched_at": {"type": "string"}}},
    })

    items: list[ItemBody] = Field(json_schema_extra={"minItems": 1, "maxItems": MAX_ITEMS})
    status: OrderStatus
    dispatched_at: Instant | None = Field(description="required when status is dispatched")
    on_hold: bool
    error: Annotated[str, _text(2000)] | None
    ship_to: ShipToBody
    updated_at: Instant | None = Field(
        default=None, description="when the OMS last changed the order; an update older than the stored one is ignored")
    previous_company: ShortName | None = Field(
        default=None, description="move the order here from this company (refused once invoiced)")


class BatchOrderBody(OrderBody):
    company: ShortName
    ref: Ref


class BatchBody(_Body):
    orders: list[BatchOrderBody] = Field(
        min_length=1, max_length=MAX_BATCH_ORDERS, description="each company and ref at most once")


# --- response bodies ----------------------------------------------------------------------------


#: An instant as the feed writes it: ISO 8601 with ``Z`` for UTC (every instant the feed sends is in
#: UTC), e.g. ``2026-11-20T14:03:00Z``, with microseconds only when not zero. That is pydantic-core's
#: own format for aware datetimes (``isoformat()`` with ``+00:00`` spelled ``Z``), written without
#: calling back into Python for each value; ``tests/bot/test_feed_schemas.py`` pins it.
SentInstant = Annotated[datetime, WithJsonSchema(
    {"type": "string", "format": "date-time", "examples": ["2026-11-20T14:03:00Z"]})]
DecimalText = Annotated[str, WithJsonSchema({"type": "string", "pattern": DECIMAL, "examples": ["24.90"]})]


AppliedResult = Literal[UpsertResult.CREATED, UpsertResult.UPDATED, UpsertResult.UNCHANGED]


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class Error(_Reply):
    error: str = Field(description="written for the person reading it")


class InternalError(_Reply):
    error: Literal["internal error"] = "internal error"
    id: str = Field(description="the request id (X-Request-Id); the traceback is in the server log under it")


class FieldError(_Reply):
    path: str = Field(examples=["items.0.quantity"], description="dotted; list positions are numbers; "
                                                                  "`body` is the body as a whole")
    message: str


class ValidationErrors(_Reply):
    errors: list[FieldError] = Field(min_length=1)


class ConflictingOrder(_Reply):
    index: int = Field(description="position of the order in the request (0 for a single PUT)")
    company: str
    ref: str
    invoice: str
    message: str


class OrderConflict(_Reply):
    """Invoiced orders whose items or company would change; nothing was written."""

    error: str
    invoice: str = Field(description="the invoice of the first conflict")
    conflicts: list[ConflictingOrder] = Field(min_length=1)


class CompanyUpserted(_Reply):
    applied: Literal[True] = True
    result: AppliedResult
    company: str


class FxRateSet(_Reply):
    applied: Literal[True] = True
    result: AppliedResult
    base: str
    quote: str
    day: str = Field(description="YYYY-MM-DD")
    rate: DecimalText
    source: Literal["feed"] = "feed"


class PriceCounts(_Reply):
    created: int
    updated: int
    unchanged: int


class ProductUpserted(_Reply):
    applied: Literal[True] = True
    result: AppliedResult
    sku: str
    prices: PriceCounts


class OrderUpserted(_Reply):
    applied: Literal[True] = True
    result: AppliedResult
    company: str
    ref: str
    invoice_number: str | None = Field(description="set once the order is on an invoice")


class OrderStale(_Reply):
    """An update older than the stored one (``updated_at``): ignored, and not an error to retry."""

    applied: Literal[False] = False
    result: Literal[UpsertResult.STALE] = UpsertResult.STALE
    company: str
    ref: str
    invoice_number: str | None
    reason: Literal["stale update"] = "stale update"


OrderOutcome = OrderUpserted | OrderStale


class BatchResult(_Reply):
    results: list[OrderOutcome] = Field(description="one per order, in request order")
    counts: dict[UpsertResult, int] = Field(description="orders per result; results that did not occur are left out")


# A TypedDict rather than a model (docstrings here would become the OpenAPI description): a page
# of up to 500 orders is then written by pydantic-core alone, with no Python object per order.
@with_config(ConfigDict(extra="forbid"))
class ListedOrder(TypedDict):
    company: str
    ref: str
    status: OrderStatus
    on_hold: bool
    error: str | None
    dispatched_at: SentInstant | None
    invoiced: bool
    invoice_number: str | None


# ``bot.feed`` builds a page from database rows with ``model_construct``: the values already have
# the declared types, so serializing is the only pydantic work per page.
class OrderPage(_Reply):
    orders: list[ListedOrder]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


@with_config(ConfigDict(extra="forbid"))
class IssuedParty(TypedDict, total=False):
    """Seller or buyer as printed on the invoice; empty keys are left out."""

    legal_name: str
    address_line1: str
    address_line2: str
    city: str
    region: str
    postcode: str
    country: str
    vat_number: str
    company_number: str
    email: str
    phone: str
    iban: str
    bic: str


class IssuedTotals(_Reply):
    net: DecimalText
    tax: DecimalText
    gross: DecimalText


class IssuedTaxBand(_Reply):
    rate: DecimalText = Field(description="percent")
    net: DecimalText
    tax: DecimalText


class IssuedLine(_Reply):
    order_ref: str
    dispatched_at: SentInstant
    sku: str
    description: str
    quantity: int
    unit_cost: DecimalText = Field(description="per unit: to the minor unit when exact, else as stored")
    unit_shipping: DecimalText
    tax_rate: DecimalText = Field(description="percent")
    net: DecimalText


class InvoiceCredit(_Reply):
    number: str = Field(description="the credit note's number", examples=["CN-000001"])
    issued_at: SentInstant
    gross: DecimalText = Field(description="what it credits (positive)")


class IssuedInvoice(_Reply):
    """An issued invoice as stored: amounts in ``currency``, rounded as printed."""

    number: str
    company: str
    currency: str
    timezone: str = Field(description="the IANA zone in which the PDF prints dates: the seller's (the buyer's on "
                                      "invoices issued before VAT categories existed)")
    issued_at: SentInstant
    period_start: SentInstant | None
    period_end: SentInstant
    payment_terms_days: int
    seller: IssuedParty
    buyer: IssuedParty
    totals: IssuedTotals
    tax_breakdown: list[IssuedTaxBand]
    lines: list[IssuedLine]
    order_count: int
    order_refs: list[str]
    credit_notes: list[InvoiceCredit] = Field(description="credit notes of this invoice, oldest first "
                                                          "(`GET /credit-notes/{number}`)")
    remaining_gross: DecimalText = Field(description="gross total minus what its credit notes credit")
    pdf: str = Field(description="path of the PDF", examples=["/api/v1/invoices/INK-000001.pdf"])


class CreditedTaxBand(_Reply):
    rate: DecimalText = Field(description="percent")
    category: str = Field(description="EN 16931 VAT category code (S, Z, E, AE, K, G, O)")
    net: DecimalText
    tax: DecimalText


class CreditedLine(_Reply):
    invoice_line: int = Field(description="the credited line's position on the invoice as printed (1-based)")
    order_ref: str
    dispatched_at: SentInstant
    sku: str
    description: str
    quantity: int = Field(description="units credited (at most what remained of the invoice line)")
    unit_cost: DecimalText
    unit_shipping: DecimalText
    tax_rate: DecimalText = Field(description="percent")
    vat_category: str
    net: DecimalText


class IssuedCreditNote(_Reply):
    """An issued credit note as stored: positive amounts that credit ``invoice_number``."""

    number: str
    company: str
    invoice_number: str = Field(description="the invoice it credits")
    invoice_issued_at: SentInstant
    issued_at: SentInstant
    currency: str
    timezone: str
    reason: str
    reinvoice: bool = Field(description="true when the credited orders were made eligible for invoicing again")
    seller: IssuedParty
    buyer: IssuedParty
    totals: IssuedTotals
    tax_breakdown: list[CreditedTaxBand]
    lines: list[CreditedLine]
    pdf: str = Field(description="path of the PDF", examples=["/api/v1/credit-notes/CN-000001.pdf"])


REQUEST_MODELS: tuple[type[BaseModel], ...] = (CompanyBody, ProductBody, OrderBody, BatchBody, FxRateBody)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error, InternalError, ValidationErrors, OrderConflict, CompanyUpserted, ProductUpserted, OrderUpserted,
    OrderStale, BatchResult, OrderPage, IssuedInvoice, FxRateSet, IssuedCreditNote)


# --- OpenAPI -----------------------------------------------------------------------------------

_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(description: str, *models: type[BaseModel]) -> dict[str, Any]:
    schema = _ref(models[0]) if len(models) == 1 else {"anyOf": [_ref(m) for m in models]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_401 = {"401": _json("missing, unknown or revoked token", Error)}
_404 = {"404": _json("no such company/invoice/credit note for this token's tenant", Error)}
_413 = {"413": _json("body larger than the configured limit", Error)}
_422 = {"422": _json("invalid JSON, types or values; nothing was written", ValidationErrors)}
_500 = {"500": _json("unexpected error; quote the id", InternalError)}
_RACE = "or two requests created the same record at once (nothing was written; retry)"
_ORDER_409 = _json(f"items or company of an invoiced order would change, {_RACE}", OrderConflict, Error)

_DAY_OR_INSTANT = {"anyOf": [DATE_SCHEMA, {**INSTANT_SCHEMA, "description": "with an offset"}]}
_QUERY: list[tuple[str, dict[str, Any], str]] = [
    ("company", SHORT_NAME_SCHEMA, "company short name (unknown: 404)"),
    ("invoiced", {"type": "boolean"}, "`true` or `false`"),
    ("from", _DAY_OR_INSTANT, "dispatched on/after: YYYY-MM-DD (UTC day) or ISO 8601 date-time with an offset"),
    ("to", _DAY_OR_INSTANT, "dispatched before the end of this UTC day (YYYY-MM-DD) or before this instant"),
    ("cursor", {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
     "`next_cursor` of the previous page (opaque: any other value is a 422)"),
    ("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "page size"),
]
#: Path segments "." and ".." never reach a route: clients and proxies remove them from URLs.
_NOT_DOT_SEGMENT = {"not": {"enum": [".", ".."]}}


def openapi(server_url: str = "/api/v1") -> dict[str, Any]:
    """The feed's OpenAPI 3.1 document: every body schema generated from the pydantic models above."""
    _, generated = models_json_schema(
        [(m, "validation") for m in REQUEST_MODELS] + [(m, "serialization") for m in RESPONSE_MODELS],
        ref_template=_REF)

    def body(model: type[BaseModel]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}

    def path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}

    co = path_param("co", SHORT_NAME_SCHEMA, "company short name")
    ref = path_param("ref", {**REF_SCHEMA, **_NOT_DOT_SEGMENT}, "the OMS order reference")
    sku = path_param("sku", SKU_SCHEMA, "SKU")
    number = path_param("number", {"type": "string", "minLength": 1, **_NOT_DOT_SEGMENT},
                        "display number, e.g. INK-000001")
    credit_number = path_param("number", {"type": "string", "minLength": 1, **_NOT_DOT_SEGMENT},
                               "display number, e.g. CN-000001")
    return {
        "openapi": "3.1.0",
        "info": {"title": "InvoiceBot order feed", "version": "1",
                 "description": "Push companies, prices and orders; read invoiced orders, invoices and "
                                "credit notes. "
                                "Money is a decimal string; instants are ISO 8601 with an offset (UTC preferred)."},
        "servers": [{"url": server_url}],
        "components": {"schemas": generated.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "`invoicebot token create TENANT`"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/companies/{co}": {"put": {
                "summary": "Create or update a dropship company", "parameters": [co],
                "requestBody": body(CompanyBody), "responses": {
                    "200": _json("updated or unchanged", CompanyUpserted), "201": _json("created", CompanyUpserted),
                    **_401, "409": _json(f"currency change refused, {_RACE}", Error), **_413, **_422, **_500}}},
            "/products/{sku}": {"put": {
                "summary": "Create or update a product and upsert its prices", "parameters": [sku],
                "requestBody": body(ProductBody), "responses": {
                    "200": _json("updated or unchanged", ProductUpserted), "201": _json("created", ProductUpserted),
                    **_401, "409": _json(_RACE, Error), **_413, **_422, **_500}}},
            "/orders/{co}/{ref}": {"put": {
                "summary": "Idempotent order upsert; stale updates are ignored with applied=false",
                "parameters": [co, ref], "requestBody": body(OrderBody), "responses": {
                    "200": _json("updated, unchanged, or ignored as stale (applied=false)", OrderUpserted, OrderStale),
                    "201": _json("created", OrderUpserted), **_401, **_404, "409": _ORDER_409, **_413, **_422,
                    **_500}}},
            "/orders:batch": {"post": {
                "summary": f"Upsert up to {MAX_BATCH_ORDERS} orders atomically (all or nothing)",
                "requestBody": body(BatchBody), "responses": {
                    "200": _json("per-order results in request order", BatchResult), **_401, **_404,
                    "409": _ORDER_409, **_413, **_422, **_500}}},
            "/orders": {"get": {
                "summary": "List orders (keyset pagination by id)",
                "parameters": [{"name": n, "in": "query", "required": False, "schema": s, "description": d}
                               for n, s, d in _QUERY],
                "responses": {"200": _json("one page", OrderPage), **_401, **_404, **_422, **_500}}},
            "/fx-rates/{base}/{quote}/{day}": {"put": {
                "summary": "Record an exchange rate (1 base = rate quote on day); replaces that day's rate",
                "description": "Used to show the VAT of invoices in another currency also in the seller's "
                               "(docs/legal.md, FX rates). Base and quote differ; the day is a calendar date.",
                "parameters": [path_param("base", CURRENCY_SCHEMA, "ISO 4217, e.g. EUR"),
                               path_param("quote", CURRENCY_SCHEMA, "ISO 4217, e.g. GBP"),
                               path_param("day", DATE_SCHEMA, "the day the rate is for (YYYY-MM-DD)")],
                "requestBody": body(FxRateBody), "responses": {
                    "200": _json("updated or unchanged", FxRateSet), "201": _json("created", FxRateSet),
                    **_401, "409": _json(_RACE, Error), **_413, **_422, **_500}}},
            "/invoices/{number}": {"get": {
                "summary": "An issued invoice", "parameters": [number],
                "responses": {"200": _json("the invoice as issued", IssuedInvoice), **_401, **_404, **_500}}},
            "/invoices/{number}.pdf": {"get": {
                "summary": "The invoice PDF", "parameters": [number],
                "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, **_401, **_404,
                              **_500}}},
            "/credit-notes/{number}": {"get": {
                "summary": "An issued credit note", "parameters": [credit_number],
                "responses": {"200": _json("the credit note as issued", IssuedCreditNote), **_401, **_404, **_500}}},
            "/credit-notes/{number}.pdf": {"get": {
                "summary": "The credit note PDF", "parameters": [credit_number],
                "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}, **_401, **_404,
                              **_500}}},
            "/invoices/{number}.xml": {"get": {
                "summary": "The invoice as an EN 16931 e-invoice: UBL 2.1 / Peppol BIS 3.0 or CII (Factur-X)",
                "parameters": [number, {"name": "syntax", "in": "query", "required": False,
                                        "schema": {"enum": ["ubl", "cii"], "default": "ubl"},
                                        "description": "`ubl` (Invoice/CreditNote 2.1) or `cii` (CII D16B)"}],
                "responses": {"200": {"description": "XML", "content": {"application/xml": {}}}, **_401, **_404,
                              "409": _json("the invoice cannot be an EN 16931 e-invoice (e.g. a 3-decimal "
                                           "currency); the PDF is the invoice", Error), **_422, **_500}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": {"application/json": {}}}}}},
        },
    }
